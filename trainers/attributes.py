"""A latent-space attribute classifier: reads the main object's shape, colour and motion and the
background from a clip's full-resolution latents. A training aid for the base model, not a metric.

    python -m trainers.attributes --max-minutes 10     # CPU, on the base trainer's latent cache

Why it exists (trainers/README, "Text binding"): wan-tiny's x0 estimate follows the shape and motion it
sees in x_σ and ignores the caption's shape and motion words, even where the caption is all there is to go
on. With a caption whose shape word is swapped, the x0 estimate of a real clip noised to σ = 0.9 still
shows the clip's own shape. The flow-matching loss rewards using those words only through a small,
noisy difference between two blurry means. With `attribute_weight > 0` the base trainer adds this
classifier's cross-entropy on its x0 estimate (x − σ·v, gradient into the transformer only) for every
captioned clip: a direct, low-variance signal that the estimate must show what the caption says.

ToyBench scores with its own probe (bench/probe.py: a 3D CNN on decoded pixels, trained separately on
rendered clips). This classifier never sees pixels and is never used to score, so a model that learns to
fool it rather than to draw the shape gains nothing on ToyBench.

Trained on clean latents with small Gaussian noise and random box blur (an x0 estimate at high σ is a
blurred clip), exported to `trainers/checkpoints/latent-attributes/` (config.json + model.safetensors).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from engine.transitions import upsample
from trainers.common import Run, TrainConfig, parse_config, unwrap
from trainers.data import cached
from trainers.zoo import SHARED_DIR, load_vae
from world import parse
from world.attributes import BACKGROUNDS, COLORS, MOTIONS, SHAPES, ClipAttributes

HEADS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "color": COLORS,
    "motion": MOTIONS,
    "background": BACKGROUNDS,
}
DEFAULT_DIR = Path(__file__).resolve().parent / "checkpoints" / "latent-attributes"


class LatentAttributes(nn.Module):
    """(B, C, T, H, W) normalised latents → logits per head. Convolutions over space (time kept apart
    until the last layer, so that motion is read from the order of frames), then linear heads."""

    def __init__(self, in_channels: int = 16, frames: int = 5, width: int = 48, stage: int | None = None):
        super().__init__()
        # stage: the pyramid stage whose latents it was trained on (None: full resolution)
        self.config = {"in_channels": in_channels, "frames": frames, "width": width, "stage": stage}
        self.stage = stage
        self.body = nn.Sequential(
            nn.Conv3d(in_channels, width, (1, 3, 3), padding=(0, 1, 1)),
            nn.GELU(),
            nn.Conv3d(width, width, (1, 4, 4), stride=(1, 2, 2), padding=(0, 1, 1)),
            nn.GELU(),
            nn.Conv3d(width, width, (3, 3, 3), padding=1),
            nn.GELU(),
            nn.Conv3d(width, width, (3, 3, 3), padding=1),
            nn.GELU(),
        )
        features = width * frames
        self.heads = nn.ModuleDict({name: nn.Linear(2 * features, len(v)) for name, v in HEADS.items()})

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.body(z)  # (B, W, T, H', W')
        pooled = torch.cat([h.mean((-2, -1)), h.amax((-2, -1))], 1).flatten(1)  # (B, 2·W·T)
        return {name: head(pooled) for name, head in self.heads.items()}


def labels(attributes: list[ClipAttributes], device=None) -> dict[str, torch.Tensor]:
    """Class indices per head for the main object (and the background)."""
    values = {
        "shape": [SHAPES.index(a.main.shape) for a in attributes],
        "color": [COLORS.index(a.main.color) for a in attributes],
        "motion": [MOTIONS.index(a.main.motion) for a in attributes],
        "background": [BACKGROUNDS.index(a.background) for a in attributes],
    }
    return {k: torch.tensor(v, device=device) for k, v in values.items()}


def cross_entropy(logits: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean over heads of each head's cross-entropy (one number per clip: (B,))."""
    per_head = [F.cross_entropy(logits[k], target[k], reduction="none") for k in HEADS]
    return torch.stack(per_head).mean(0)


def caption_loss(classifier: LatentAttributes, x0: torch.Tensor, captions: list[str]) -> torch.Tensor | None:
    """The classifier's cross-entropy between clean full-resolution latents x0 (B, C, T, H, W) and what
    their captions say, mean over the captioned clips (an empty caption is a dropped one); None if none.
    The trainers' attribute loss: a direct signal that a clean estimate must show what the caption says."""
    captioned = [i for i, c in enumerate(captions) if c]
    if not captioned:
        return None
    target = labels([parse(captions[i]) for i in captioned], x0.device)
    return cross_entropy(classifier(x0[captioned].float()), target).mean()


def full_resolution(y: torch.Tensor, k: int, geometry) -> torch.Tensor:
    """Stage k's latent brought to the full resolution by R↑ through every stage above it (the classifier
    reads full-resolution latents only)."""
    for j in range(k, geometry.num_stages - 1):
        y = upsample(y, temporal=geometry.stages[j].temporal_halved)
    return y


def stage_caption_loss(
    classifier, y: torch.Tensor, k: int, geometry, captions: list[str]
) -> torch.Tensor | None:
    """`caption_loss` on stage k's clean estimate y. A classifier trained on stage k's own latents
    (`stage=k`) reads y as it is. A full-resolution one reads it upsampled, but only for the top two
    stages: it reads an upsampled middle stage's motion and colour (shape poorly), the lowest stage's not
    at all (trainers/README.md). Otherwise None, as for uncaptioned clips."""
    if not reads_stage(classifier, k, geometry):
        return None
    if _trained_stage(classifier, geometry) != k:
        y = full_resolution(y, k, geometry)
    return caption_loss(classifier, y, captions)


def _trained_stage(classifier, geometry) -> int:
    return geometry.num_stages - 1 if classifier.stage is None else classifier.stage


def reads_stage(classifier, k: int, geometry) -> bool:
    """Whether `stage_caption_loss` applies the classifier to stage k (see there)."""
    stage, top = _trained_stage(classifier, geometry), geometry.num_stages - 1
    return stage == k or (stage == top and k >= top - 1)


def degrade(z: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Training augmentation: per clip a random spatial box blur (none, 3 or 5 latent pixels, at most the
    latents' size) and Gaussian noise of standard deviation up to 0.3."""
    out = torch.empty_like(z)
    kernels = torch.randint(0, 3, (z.shape[0],), generator=generator)
    largest = (min(z.shape[-2:]) - 1) // 2  # a lower stage's latents are too small for the 5-wide box
    for i, k in enumerate(kernels.tolist()):
        x = z[i : i + 1]
        k = min(k, largest)
        if k:
            size = 2 * k + 1
            x = F.avg_pool3d(x, (1, size, size), stride=1, padding=(0, k, k), count_include_pad=False)
        out[i : i + 1] = x
    std = 0.3 * torch.rand(z.shape[0], 1, 1, 1, 1, generator=generator)
    return out + std * torch.randn(z.shape, generator=generator)


def save(model: LatentAttributes, folder: str | Path = DEFAULT_DIR, metrics: dict | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
    (folder / "config.json").write_text(
        json.dumps({**model.config, "heads": HEADS, "eval": metrics or {}}, indent=2)
    )
    return folder


def load(folder: str | Path = DEFAULT_DIR) -> LatentAttributes:
    """The exported classifier, frozen, in eval mode."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    model = LatentAttributes(config["in_channels"], config["frames"], config["width"], config.get("stage"))
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model.eval().requires_grad_(False)


@dataclasses.dataclass
class AttributesConfig(TrainConfig):
    out_dir: str = "runs/latent-attributes"
    export_dir: str = str(DEFAULT_DIR)
    cache: str = "runs/cache/train-17x128x128.pt"  # the base trainer's cache (built there if missing)
    cache_clips: int = 12000
    held_out: int = 1000  # the last this many clips of the cache are the accuracy check, never trained on
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.01
    max_steps: int = 1500
    warmup_steps: int = 50
    use_ema: bool = False
    num_threads: int = 1
    width: int = 48
    stage: int = -1  # which pyramid stage's clean latents it reads (-1: full resolution; 0: the lowest)


@torch.no_grad()
def accuracy(
    model: LatentAttributes, latents: torch.Tensor, attributes: list[ClipAttributes]
) -> dict[str, float]:
    target = labels(attributes)
    hits = {k: 0 for k in HEADS}
    for start in range(0, len(attributes), 256):
        logits = model(latents[start : start + 256].float())
        for k in HEADS:
            hits[k] += int((logits[k].argmax(1) == target[k][start : start + 256]).sum())
    return {k: hits[k] / len(attributes) for k in HEADS}


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(AttributesConfig, argv, __doc__.splitlines()[0])
    data = cached(load_vae(SHARED_DIR), cfg.cache, clips=cfg.cache_clips, seed=0)
    full = data.latents[cfg.stage]
    n_train = len(data) - cfg.held_out
    stage = cfg.stage % len(data.latents)
    model = LatentAttributes(full.shape[1], full.shape[2], cfg.width, stage=stage)
    run = Run(cfg, model)
    generator = torch.Generator().manual_seed(cfg.seed)

    def loss_fn(step: int):
        idx = torch.randint(0, n_train, (cfg.batch_size,), generator=generator)
        z = degrade(full[idx].float(), generator)
        target = labels([data.attributes[i] for i in idx.tolist()])
        return cross_entropy(run.model(z), target).mean(), {}

    run.train(loss_fn)
    trained = unwrap(run).eval()
    held = accuracy(trained, full[n_train:], data.attributes[n_train:])
    print(f"held-out accuracy: {held}")
    print(f"exported {save(trained, cfg.export_dir, {'held_out_accuracy': held, 'steps': run.step})}")


if __name__ == "__main__":
    main()
