"""Training data for the transformer trainers: clean latents at every pyramid stage, plus captions.

Two sources with one interface (`sample(step) -> (latents per stage low → high, captions)`):
- `LatentCache`: procedural clips rendered once, encoded by the zoo's VAE and kept in memory (rendering
  and encoding every step would cost as much as the transformer step on this CPU). Captions are drawn
  afresh from the stored attributes each time, so the text varies over synonyms and templates.
- `FolderClips`: real-size training from a folder of `name.mp4` + `name.txt`, encoded on the fly.

Stage latents use the *pixel* definition by default (DESIGN §5: downsample the RGB video — R↓ on pixels,
first frame alone in time — then encode); `definition="latent"` applies R↓ to the full latent instead.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.flow import normalise_latents
from engine.pyramid import stage_geometry
from engine.transitions import downsample
from world import ClipAttributes, caption, make_batch, to_tensor, to_uint8

DEFINITIONS = ("pixel", "latent")


@torch.no_grad()
def stage_latents(vae, video: torch.Tensor, num_stages: int, definition: str = "pixel") -> list[torch.Tensor]:
    """Clean normalised latents of video (B, 3, F, H, W) in [−1, 1] at every stage, low → high."""
    if definition not in DEFINITIONS:
        raise ValueError(f"definition must be one of {DEFINITIONS}, got {definition!r}")
    geometry = stage_geometry(video.shape[2], video.shape[3], video.shape[4], num_stages)

    def encode(v: torch.Tensor) -> torch.Tensor:
        return normalise_latents(
            vae.encode(v.to(vae.device, vae.dtype)).latent_dist.mode().float(), vae.config
        )

    full = encode(video)
    out = [full]
    videos = [video]
    for stage in reversed(geometry.stages[:-1]):
        if definition == "pixel":
            videos.insert(0, downsample(videos[0], temporal=stage.temporal_halved))
            out.insert(0, encode(videos[0]))
        else:
            out.insert(0, downsample(out[0], temporal=stage.temporal_halved))
    return out


@dataclass
class LatentCache:
    """Procedural clips as latents at every stage (float16, CPU) with their attributes."""

    latents: list[torch.Tensor]  # per stage, low → high: (N, C, T_k, H_k, W_k)
    attributes: list[ClipAttributes]
    definition: str
    caption_dropout: float = 0.1
    seed: int = 0

    def __len__(self) -> int:
        return len(self.attributes)

    def sample(
        self, step: int, batch_size: int, pool: np.ndarray | None = None
    ) -> tuple[list[torch.Tensor], list[str]]:
        """A batch determined by (seed, step): stage latents (float32) and freshly drawn captions.
        pool: the clip indices to draw from (default: all)."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, step]))
        idx = (
            rng.integers(0, len(self), batch_size)
            if pool is None
            else pool[rng.integers(0, len(pool), batch_size)]
        )
        captions = [
            "" if rng.random() < self.caption_dropout else caption(self.attributes[i], rng) for i in idx
        ]
        index = torch.as_tensor(idx)
        return [lat[index].float() for lat in self.latents], captions

    def single_object(self) -> np.ndarray:
        """Indices of the clips with one object."""
        return np.flatnonzero([len(a.objects) == 1 for a in self.attributes])

    def save(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "latents": self.latents,
                "attributes": [a.to_dict() for a in self.attributes],
                "definition": self.definition,
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path, caption_dropout: float = 0.1, seed: int = 0) -> LatentCache:
        data = torch.load(path, weights_only=False)
        attrs = [ClipAttributes.from_dict(d) for d in data["attributes"]]
        return cls(data["latents"], attrs, data["definition"], caption_dropout, seed)


_ENCODER = None  # the VAE a build_cache worker encodes with (inherited through fork)


def _render_chunk(job: tuple) -> tuple[np.ndarray, list[ClipAttributes]]:
    """A chunk of build_cache rendered with the chunk's own seed: uint8 (B, F, H, W, 3), as the world
    draws it (so the uint8 round trip is exact)."""
    seed, n, frames, height, width, _, _ = job
    batch = make_batch(seed, n, frames, height, width, split="train")
    return to_uint8(batch.videos), batch.attributes


@torch.no_grad()
def _encode_rendered(vae, num_stages: int, definition: str, videos: np.ndarray, attributes: list):
    """Rendered clips encoded at every stage on the VAE's device, stored as float16 on the CPU."""
    latents = stage_latents(vae, to_tensor(videos).to(vae.device), num_stages, definition)
    return [lat.to(torch.float16).cpu() for lat in latents], attributes


def _encode_chunk(job: tuple) -> tuple[list[torch.Tensor], list[ClipAttributes]]:
    """One chunk of build_cache, rendered and encoded in this (worker) process."""
    *_, num_stages, definition = job
    return _encode_rendered(_ENCODER, num_stages, definition, *_render_chunk(job))


def _one_thread() -> None:
    torch.set_num_threads(1)


def build_cache(
    vae,
    clips: int,
    seed: int,
    frames: int = 17,
    height: int = 128,
    width: int = 128,
    num_stages: int = 3,
    definition: str = "pixel",
    chunk: int = 32,
    log_every: int = 20,
    workers: int = 1,
    encode_on: str = "",
) -> LatentCache:
    """Render `clips` training-split clips and encode them at every stage (minutes on a CPU). Chunk c of
    `chunk` clips is drawn with seed `seed · 7919 + c`, so `workers` > 1 (forked processes of one thread
    each, the VAE on the CPU) builds the same cache in about 1/workers of the time. With `encode_on` (a
    device: "cuda" on a GPU machine) the workers only render (a tenth of the work) and this process
    encodes on that device."""
    global _ENCODER
    _ENCODER = vae
    jobs = [
        (seed * 7_919 + c, min(chunk, clips - c * chunk), frames, height, width, num_stages, definition)
        for c in range(math.ceil(clips / chunk))
    ]
    work = _render_chunk if encode_on else _encode_chunk
    per_stage: list[list[torch.Tensor]] = [[] for _ in range(num_stages)]
    attributes: list[ClipAttributes] = []
    with contextlib.ExitStack() as stack:
        if workers > 1:  # forked before this process touches the device (the workers never do)
            fork = multiprocessing.get_context("fork")
            pool = stack.enter_context(ProcessPoolExecutor(workers, fork, _one_thread))
            results = pool.map(work, jobs)
        else:
            results = map(work, jobs)
        if encode_on:
            vae = vae.to(encode_on)
            results = (_encode_rendered(vae, num_stages, definition, *r) for r in results)
        for c, (latents, attrs) in enumerate(results):
            for k, lat in enumerate(latents):
                per_stage[k].append(lat)
            attributes.extend(attrs)
            if log_every and (c + 1) % log_every == 0:
                print(f"cache: {len(attributes)}/{clips} clips", flush=True)
    return LatentCache([torch.cat(p) for p in per_stage], attributes, definition, seed=seed)


def cached(vae, path: str | Path, **kwargs) -> LatentCache:
    """Load the cache at path, or build and save it (keyword arguments as for build_cache)."""
    path = Path(path)
    if path.is_file():
        cache = LatentCache.load(path, seed=kwargs.get("seed", 0))
        definition = kwargs.get("definition", "pixel")
        if cache.definition != definition:  # never overwrite another definition's cache (minutes to build)
            raise ValueError(
                f"{path} holds {cache.definition}-definition latents, this run needs {definition}: "
                f"give it its own file with cache=<path>"
            )
        if len(cache) >= kwargs.get("clips", 0):
            return cache
    cache = build_cache(vae, **kwargs)
    cache.save(path)
    return cache


class FolderClips:
    """Real-size data: `name.mp4` + `name.txt` pairs in a folder, decoded and encoded on the fly."""

    def __init__(
        self,
        folder: str | Path,
        vae,
        frames: int,
        height: int,
        width: int,
        num_stages: int = 3,
        definition: str = "pixel",
        caption_dropout: float = 0.1,
        seed: int = 0,
    ):
        self.items = sorted(p for p in Path(folder).glob("*.mp4") if p.with_suffix(".txt").is_file())
        if not self.items:
            raise ValueError(f"no name.mp4 + name.txt pairs in {folder}")
        self.vae, self.frames, self.height, self.width = vae, frames, height, width
        self.num_stages, self.definition = num_stages, definition
        self.caption_dropout, self.seed = caption_dropout, seed
        stage_geometry(frames, height, width, num_stages)  # validates the size up front

    def _video(self, path: Path) -> torch.Tensor:
        from PIL import Image

        from engine.video import read_mp4

        frames = read_mp4(path)
        if len(frames) < self.frames:
            raise ValueError(f"{path} has {len(frames)} frames, need {self.frames}")
        frames = frames[: self.frames]
        resized = np.stack([np.asarray(Image.fromarray(f).resize((self.width, self.height))) for f in frames])
        return torch.from_numpy(resized).permute(3, 0, 1, 2).float() / 127.5 - 1.0

    def sample(self, step: int, batch_size: int) -> tuple[list[torch.Tensor], list[str]]:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, step]))
        picks = [self.items[i] for i in rng.integers(0, len(self.items), batch_size)]
        video = torch.stack([self._video(p) for p in picks])
        captions = [
            "" if rng.random() < self.caption_dropout else p.with_suffix(".txt").read_text().strip()
            for p in picks
        ]
        return [
            lat.float().cpu() for lat in stage_latents(self.vae, video, self.num_stages, self.definition)
        ], captions
