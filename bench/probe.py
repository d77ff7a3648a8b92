"""The attribute probe: a small 3D CNN that reads shape, color, background, motion and speed of a clip's
main object, and gives a feature vector for the Fréchet distance.

It is trained on procedural clips (`bench/train_probe.py`) with augmentations that imitate what a
generator does wrong (blur, noise, color shifts, compression blocks, quantisation, flicker), so that it
reads generated videos fairly rather than only pixel-perfect renders. Shipped as
`assets/probe/probe.safetensors` + `assets/probe/config.json`.

Any clip size is accepted: the probe resamples its input to (frames, size, size) = (17, 64, 64) first.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from world.attributes import BACKGROUNDS, COLORS, MOTIONS, SHAPES, SPEEDS, ClipAttributes

HEADS: dict[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "color": COLORS,
    "background": BACKGROUNDS,
    "motion": MOTIONS,
    "speed": SPEEDS,
}
IGNORE = -100  # label of an attribute that does not apply (the speed of a still object)
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "assets" / "probe"


@dataclass
class ProbeConfig:
    frames: int = 17
    size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 96)
    frame_widths: tuple[int, ...] = (16, 32, 48, 64)
    shape_frames: int = 3
    feature_dim: int = 64
    heads: dict[str, list[str]] = field(default_factory=lambda: {k: list(v) for k, v in HEADS.items()})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["frame_widths"] = list(self.frame_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ProbeConfig:
        keys = {"frames", "size", "widths", "frame_widths", "shape_frames", "feature_dim", "heads"}
        kw = {k: v for k, v in d.items() if k in keys}
        for key in ("widths", "frame_widths"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)


def labels_for(
    attributes: list[ClipAttributes], device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Integer labels (B,) per head for the main object of each clip; IGNORE where a head does not apply."""
    out = {}
    for head, names in HEADS.items():
        values = [getattr(a.main, head, None) if head != "background" else a.background for a in attributes]
        out[head] = torch.tensor([names.index(v) if v is not None else IGNORE for v in values], device=device)
    return out


def resample(videos: torch.Tensor, frames: int, size: int) -> torch.Tensor:
    """(B, 3, F, H, W) -> (B, 3, frames, size, size): antialiased bilinear in space, linear in time."""
    b, c, f, h, w = videos.shape
    x = videos.float()
    if (h, w) != (size, size):
        x = x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        x = x.reshape(b, f, c, size, size).permute(0, 2, 1, 3, 4)
    if f != frames:
        x = F.interpolate(x, size=(frames, size, size), mode="trilinear", align_corners=True)
    return x.contiguous()


class AttributeProbe(nn.Module):
    """videos (B, 3, F, H, W) in [-1, 1] -> {"features": (B, feature_dim), head: logits (B, n_classes)}.

    Two streams feed one feature vector:
    - motion stream: the frames plus their temporal differences (motion is cheap to see that way) through
      four strided 3x3x3 conv blocks, then per-time-step spatial mean and max pooling, flattened over time
      (so the order of events, e.g. growing vs shrinking, survives);
    - frame stream: a 2D CNN on `shape_frames` evenly spaced single frames at full probe resolution (the
      first conv keeps the resolution), spatially mean/max pooled, then mean/max pooled over those frames.
      Shape is a per-frame property that the strided 3D stream learns only slowly (measured: 35% shape
      accuracy after 10 minutes of training with the motion stream alone).
    """

    def __init__(self, config: ProbeConfig | None = None) -> None:
        super().__init__()
        self.config = config or ProbeConfig()
        cfg = self.config
        layers: list[nn.Module] = []
        c_in = 6
        for i, c_out in enumerate(cfg.widths):
            stride = (1, 2, 2) if i == 0 else (2, 2, 2)
            layers += [nn.Conv3d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(4, c_out), nn.SiLU()]
            c_in = c_out
        self.encoder = nn.Sequential(*layers)
        t_out = cfg.frames
        for _ in range(len(cfg.widths) - 1):
            t_out = (t_out - 1) // 2 + 1
        frame_layers: list[nn.Module] = []
        f_in = 3
        for i, f_out in enumerate(cfg.frame_widths):
            frame_layers += [
                nn.Conv2d(f_in, f_out, 3, stride=1 if i == 0 else 2, padding=1),
                nn.GroupNorm(4, f_out),
                nn.SiLU(),
            ]
            f_in = f_out
        self.frame_encoder = nn.Sequential(*frame_layers)
        pooled_dim = 2 * c_in * t_out + 4 * f_in
        self.to_features = nn.Sequential(nn.Linear(pooled_dim, cfg.feature_dim), nn.SiLU())
        self.heads = nn.ModuleDict({k: nn.Linear(cfg.feature_dim, len(v)) for k, v in cfg.heads.items()})

    def preprocess(self, videos: torch.Tensor) -> torch.Tensor:
        """(B, 3, F, H, W) any size -> (B, 3, 17, 64, 64) (the config's frames and size)."""
        return resample(videos, self.config.frames, self.config.size)

    def forward_preprocessed(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        diff = torch.cat([torch.zeros_like(x[:, :, :1]), x[:, :, 1:] - x[:, :, :-1]], dim=2)
        h = self.encoder(torch.cat([x, diff], dim=1))  # (B, C, T', H', W')
        pooled = torch.cat([h.mean(dim=(3, 4)), h.amax(dim=(3, 4))], dim=1).flatten(1)
        b, c, t = x.shape[:3]
        idx = torch.linspace(0, t - 1, self.config.shape_frames).round().long()
        frames = x[:, :, idx].transpose(1, 2).reshape(b * len(idx), c, *x.shape[3:])
        g = self.frame_encoder(frames)
        g = torch.cat([g.mean(dim=(2, 3)), g.amax(dim=(2, 3))], dim=1).reshape(b, len(idx), -1)
        per_clip = torch.cat([g.mean(dim=1), g.amax(dim=1)], dim=1)
        feats = self.to_features(torch.cat([pooled, per_clip], dim=1))
        out = {k: head(feats) for k, head in self.heads.items()}
        out["features"] = feats
        return out

    def forward(self, videos: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.forward_preprocessed(self.preprocess(videos))

    @torch.no_grad()
    def predict(self, videos: torch.Tensor, batch_size: int = 32) -> dict[str, torch.Tensor]:
        """Class indices (B,) per head and "features" (B, feature_dim), in eval mode, batched."""
        self.eval()
        chunks = [
            self(videos[i : i + batch_size].to(next(self.parameters()).device))
            for i in range(0, len(videos), batch_size)
        ]
        out = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        return {k: (v if k == "features" else v.argmax(dim=1)).cpu() for k, v in out.items()}

    def save(self, directory: str | Path, extra: dict | None = None, half: bool = True) -> None:
        """Write probe.safetensors (float16 unless half=False) and config.json (config + `extra`)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        dtype = torch.float16 if half else torch.float32
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(directory / "probe.safetensors"))
        (directory / "config.json").write_text(
            json.dumps({**self.config.to_dict(), **(extra or {})}, indent=2)
        )


def load_probe(directory: str | Path = DEFAULT_DIR) -> AttributeProbe:
    """The probe saved in `directory` (default: the shipped assets/probe), float32, eval mode."""
    directory = Path(directory)
    if not (directory / "probe.safetensors").exists():
        raise FileNotFoundError(
            f"no probe checkpoint in {directory}; train one with `python -m bench.train_probe`"
        )
    config = ProbeConfig.from_dict(json.loads((directory / "config.json").read_text()))
    probe = AttributeProbe(config)
    state = {k: v.float() for k, v in load_file(str(directory / "probe.safetensors")).items()}
    probe.load_state_dict(state)
    return probe.eval()


# ---------------------------------------------------------------------------------------------- augmentation


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-clip spatial Gaussian blur of (B, C, T, H, W); sigma (B,) in pixels."""
    radius = 3
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (offsets[None] / sigma[:, None].clamp_min(1e-3)) ** 2)
    k = k / k.sum(dim=1, keepdim=True)  # (B, 2r+1)
    b, c, t, h, w = x.shape
    y = F.pad(x.reshape(b, c * t, h, w), (radius, radius, radius, radius), mode="replicate")
    # Separable blur with a different kernel per clip: grouped conv over the batch folded into channels.
    y = y.reshape(1, b * c * t, h + 2 * radius, w + 2 * radius)
    kh = k.repeat_interleave(c * t, dim=0)
    y = F.conv2d(y, kh[:, None, None, :], groups=b * c * t)
    y = F.conv2d(y, kh[:, None, :, None], groups=b * c * t)
    return y.reshape(b, c, t, h, w)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random generator-like corruptions of preprocessed clips (B, 3, T, H, W) in [-1, 1], per clip.

    Color jitter (brightness, contrast, saturation, channel gain), Gaussian blur, down-up resampling,
    4x4-block averaging (compression-like), quantisation, per-frame flicker, temporal blur and noise.
    Each is applied to a random subset of the batch; strengths stay small enough that the attributes
    remain readable by a person.
    """
    x = x.clone()

    def u(n: int, lo: float, hi: float) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(n, generator=generator)).view(n, 1, 1, 1, 1)

    def apply(p: float, fn: Callable[[torch.Tensor, int], torch.Tensor]) -> None:
        idx = (torch.rand(x.shape[0], generator=generator) < p).nonzero().flatten()
        if len(idx):
            x[idx] = fn(x[idx], len(idx))

    def contrast(y: torch.Tensor, n: int) -> torch.Tensor:
        mean = y.mean(dim=(1, 2, 3, 4), keepdim=True)
        return (y - mean) * u(n, 0.8, 1.2) + mean + u(n, -0.1, 0.1)

    def saturation(y: torch.Tensor, n: int) -> torch.Tensor:
        gray = y.mean(dim=1, keepdim=True)
        return gray + (y - gray) * u(n, 0.75, 1.25)

    def gain(y: torch.Tensor, n: int) -> torch.Tensor:
        return (y + 1) * (1 + 0.06 * (2 * torch.rand(n, 3, 1, 1, 1, generator=generator) - 1)) - 1

    def down_up(y: torch.Tensor, n: int) -> torch.Tensor:
        t, h, w = y.shape[2:]
        down = F.interpolate(y, size=(t, h // 2, w // 2), mode="trilinear", align_corners=False)
        return F.interpolate(down, size=(t, h, w), mode="trilinear", align_corners=False)

    def blocks(y: torch.Tensor, n: int) -> torch.Tensor:
        means = F.interpolate(F.avg_pool3d(y, (1, 4, 4)), size=y.shape[2:], mode="nearest")
        return y + u(n, 0.2, 0.6) * (means - y)

    def quantise(y: torch.Tensor, n: int) -> torch.Tensor:
        levels = 2 ** u(n, 3.0, 6.0)
        return torch.round((y + 1) / 2 * levels) / levels * 2 - 1

    def flicker(y: torch.Tensor, n: int) -> torch.Tensor:
        return y + 0.04 * torch.randn(n, 1, y.shape[2], 1, 1, generator=generator)

    def temporal_blur(y: torch.Tensor, n: int) -> torch.Tensor:
        smoothed = torch.cat([y[:, :, :1], (y[:, :, :-1] + y[:, :, 1:]) / 2], dim=2)
        return y + u(n, 0.0, 0.5) * (smoothed - y)

    def noise(y: torch.Tensor, n: int) -> torch.Tensor:
        return y + u(n, 0.0, 0.12) * torch.randn(y.shape, generator=generator)

    apply(0.8, contrast)
    apply(0.6, saturation)
    apply(0.5, gain)
    apply(0.4, lambda y, n: _gaussian_blur(y, u(n, 0.3, 1.3).flatten()))
    apply(0.25, down_up)
    apply(0.3, blocks)
    apply(0.3, quantise)
    apply(0.3, flicker)
    apply(0.15, temporal_blur)
    apply(0.5, noise)
    return x.clamp(-1.5, 1.5)
