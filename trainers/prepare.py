"""Encode a folder of clips once: stage latents and text embeddings in safetensors shards.

    .venv/bin/python -m trainers.prepare --model wan-tiny --data-dir clips --out shards --frames 17

`--data-dir` holds `name.mp4` + `name.txt` pairs (as `trainers/data.py: FolderClips` reads them). Every
clip is cut and resized exactly as `FolderClips` does, encoded by the target model's VAE at every pyramid
stage (`stage_latents`, pixel definition by default) and its caption by the model's text encoder (the
trainers' `tokenize` + `masked_text`). The trainers then read the shards (`shards_dir=` in
`trainers/pyramidalize.py`) with no VAE or text-encoder forward per step.

Layout of `--out`:
- `index.json`: model, size, stages, definition, text length and width, the shards and their clip counts;
- `shard-00000.safetensors`, …: `stage0` … `stage{S−1}` (N, C, T_k, H_k, W_k) float32 normalised latents,
  `text_len` (N,) and `text_{i}` (text_len_i, D): clip i's caption states up to its length (the rest are
  zeros in training, as `masked_text` makes them), captions in the file's metadata;
- `empty.safetensors`: `text` (L, D), the empty caption's states (caption dropout).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from engine.flow import masked_text
from engine.models import load_model
from trainers.data import DEFINITIONS, FolderClips, stage_latents
from trainers.zoo import tokenize

INDEX = "index.json"
EMPTY = "empty.safetensors"


@torch.no_grad()
def encode_text(tokenizer, text_encoder, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L, D) caption states zeroed past each caption's length, and the lengths (B,)."""
    device = next(text_encoder.parameters()).device
    ids, mask = tokenize(tokenizer, captions, device)
    return masked_text(text_encoder(ids, mask).last_hidden_state, mask).float().cpu(), mask.sum(1).cpu()


def prepare(
    model_name: str,
    data_dir: str | Path,
    out: str | Path,
    frames: int,
    height: int,
    width: int,
    num_stages: int = 3,
    definition: str = "pixel",
    shard_size: int = 64,
    batch_size: int = 4,
    device: str = "cpu",
) -> dict:
    """Encode every clip of data_dir into shards under out; returns the index."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_model(model_name, device=device, dtype="float32")
    clips = FolderClips(data_dir, model.vae, frames, height, width, num_stages, definition)
    tokenizer, text_encoder = model.tokenizer, model.pipe.text_encoder.eval()
    empty, _ = encode_text(tokenizer, text_encoder, [""])
    save_file({"text": empty[0].contiguous()}, out / EMPTY)
    shards = []
    items = clips.items
    for s, start in enumerate(range(0, len(items), shard_size)):
        chunk = items[start : start + shard_size]
        per_stage: list[list[torch.Tensor]] = [[] for _ in range(num_stages)]
        tensors: dict[str, torch.Tensor] = {}
        captions = [p.with_suffix(".txt").read_text().strip() for p in chunk]
        lengths = []
        for b in range(0, len(chunk), batch_size):
            video = torch.stack([clips._video(p) for p in chunk[b : b + batch_size]])
            for k, lat in enumerate(stage_latents(model.vae, video, num_stages, definition)):
                per_stage[k].append(lat.float().cpu())
            text, length = encode_text(tokenizer, text_encoder, captions[b : b + batch_size])
            for i, (t, n) in enumerate(zip(text, length.tolist())):
                tensors[f"text_{b + i}"] = t[:n].contiguous()
                lengths.append(n)
        for k in range(num_stages):
            tensors[f"stage{k}"] = torch.cat(per_stage[k]).contiguous()
        tensors["text_len"] = torch.tensor(lengths, dtype=torch.int64)
        name = f"shard-{s:05d}.safetensors"
        meta = {"captions": json.dumps(captions), "files": json.dumps([p.name for p in chunk])}
        save_file(tensors, out / name, metadata=meta)
        shards.append({"file": name, "clips": len(chunk)})
        print(f"prepare: {start + len(chunk)}/{len(items)} clips", flush=True)
    index = {
        "model": model_name,
        "frames": frames,
        "height": height,
        "width": width,
        "num_stages": num_stages,
        "definition": definition,
        "text_len": int(empty.shape[1]),
        "text_dim": int(empty.shape[2]),
        "shards": shards,
    }
    (out / INDEX).write_text(json.dumps(index, indent=2))
    return index


class ShardClips:
    """Training data from `trainers.prepare` shards: the same draws as `FolderClips` for the same seed and
    step (clips and caption dropout), returned already encoded; tensors are read lazily per batch."""

    def __init__(self, folder: str | Path, caption_dropout: float = 0.1, seed: int = 0):
        self.folder = Path(folder)
        if not (self.folder / INDEX).is_file():
            raise ValueError(f"{folder} has no {INDEX}; write it with `python -m trainers.prepare`")
        self.index = json.loads((self.folder / INDEX).read_text())
        self.locations = [(sh["file"], i) for sh in self.index["shards"] for i in range(sh["clips"])]
        self.caption_dropout, self.seed = caption_dropout, seed
        with safe_open(self.folder / EMPTY, "pt") as f:
            self.empty = f.get_tensor("text")

    def __len__(self) -> int:
        return len(self.locations)

    def check(self, frames: int, height: int, width: int, num_stages: int, definition: str) -> None:
        want = {"frames": frames, "height": height, "width": width, "num_stages": num_stages}
        want["definition"] = definition
        have = {k: self.index[k] for k in want}
        if have != want:
            raise ValueError(f"shards in {self.folder} were prepared for {have}, the run wants {want}")

    def clip(self, i: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Clip i: latents per stage (1, C, T_k, H_k, W_k) and caption states (L, D) zero-padded."""
        file, row = self.locations[i]
        with safe_open(self.folder / file, "pt") as f:
            latents = [f.get_slice(f"stage{k}")[row : row + 1] for k in range(self.index["num_stages"])]
            states = f.get_tensor(f"text_{row}")
        text = torch.zeros(self.index["text_len"], self.index["text_dim"], dtype=states.dtype)
        text[: len(states)] = states
        return latents, text

    def sample(self, step: int, batch_size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Latents per stage (B, …) and caption states (B, L, D) for (seed, step)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, step]))
        picks = rng.integers(0, len(self), batch_size)
        dropped = [rng.random() < self.caption_dropout for _ in picks]
        clips = [self.clip(int(i)) for i in picks]
        latents = [torch.cat([c[0][k] for c in clips]).float() for k in range(self.index["num_stages"])]
        text = torch.stack([self.empty if d else c[1] for c, d in zip(clips, dropped)])
        return latents, text


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the model to train: zoo name, folder or hub id")
    p.add_argument("--data-dir", required=True, help="folder of name.mp4 + name.txt pairs")
    p.add_argument("--out", required=True, help="folder for index.json and the shards")
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--height", type=int, default=448)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--num-stages", type=int, default=3)
    p.add_argument("--definition", default="pixel", choices=DEFINITIONS)
    p.add_argument("--shard-size", type=int, default=64, help="clips per shard file")
    p.add_argument("--batch-size", type=int, default=4, help="clips encoded at once")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    return prepare(
        a.model,
        a.data_dir,
        a.out,
        a.frames,
        a.height,
        a.width,
        a.num_stages,
        a.definition,
        a.shard_size,
        a.batch_size,
        a.device,
    )


if __name__ == "__main__":
    main()
