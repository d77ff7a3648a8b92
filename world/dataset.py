"""Clips on the fly: one seed -> (video, caption, attributes); batches as torch tensors.

Clip i of `make_batch(seed, ...)` is drawn from `np.random.SeedSequence([seed, i])`, so a clip does not
depend on the batch size it was drawn in, and two seeds never share clips by accident.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from world.attributes import ClipAttributes
from world.captions import caption
from world.render import background_image, render_tracks, sample_layout
from world.split import sample_attributes


@dataclass(frozen=True)
class Clip:
    """video: uint8 (F, H, W, 3); caption: str; attributes: what the caption says."""

    video: np.ndarray
    caption: str
    attributes: ClipAttributes


@dataclass(frozen=True)
class Batch:
    """videos: float32 (B, 3, F, H, W) in [-1, 1]; captions and attributes: B entries each."""

    videos: torch.Tensor
    captions: list[str]
    attributes: list[ClipAttributes]


def clip_rng(seed: int, index: int = 0) -> np.random.Generator:
    """The generator of clip `index` under `seed`."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def sample_clip(
    rng: np.random.Generator,
    frames: int = 17,
    height: int = 128,
    width: int = 128,
    split: str = "train",
    n_objects: int | None = None,
    p_two: float = 0.2,
    attributes: ClipAttributes | None = None,
) -> Clip:
    """Draw attributes (unless given), a caption for them and the rendered video, all from `rng`."""
    attrs = attributes if attributes is not None else sample_attributes(rng, split, n_objects, p_two)
    text = caption(attrs, rng)
    tracks = sample_layout(attrs, rng, frames, height, width)
    video = render_tracks(tracks, background_image(attrs.background, height, width, rng), frames)
    return Clip(video=video, caption=text, attributes=attrs)


def to_tensor(videos: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 (B, F, H, W, 3) (or a list of (F, H, W, 3)) -> float32 (B, 3, F, H, W) in [-1, 1]."""
    arr = np.stack(list(videos)) if not isinstance(videos, np.ndarray) else videos
    return torch.from_numpy(arr).permute(0, 4, 1, 2, 3).float().div_(127.5).sub_(1.0)


def to_uint8(videos: torch.Tensor) -> np.ndarray:
    """float (B, 3, F, H, W) in [-1, 1] -> uint8 (B, F, H, W, 3)."""
    x = ((videos.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 4, 1).cpu().numpy()


def make_batch(
    seed: int,
    batch_size: int,
    frames: int = 17,
    height: int = 128,
    width: int = 128,
    split: str = "train",
    n_objects: int | None = None,
    p_two: float = 0.2,
) -> Batch:
    """`batch_size` clips; clip i from `clip_rng(seed, i)`. Videos are float32 (B, 3, F, H, W) in [-1, 1]."""
    clips = [
        sample_clip(clip_rng(seed, i), frames, height, width, split, n_objects, p_two)
        for i in range(batch_size)
    ]
    return Batch(
        videos=to_tensor([c.video for c in clips]),
        captions=[c.caption for c in clips],
        attributes=[c.attributes for c in clips],
    )


def render_batch(
    attributes: Sequence[ClipAttributes], seed: int, frames: int = 17, height: int = 128, width: int = 128
) -> torch.Tensor:
    """Real clips for given attributes (e.g. parsed from prompts): clip i laid out by `clip_rng(seed, i)`.

    Returns float32 (B, 3, F, H, W) in [-1, 1].
    """
    videos = [
        sample_clip(clip_rng(seed, i), frames, height, width, attributes=a).video
        for i, a in enumerate(attributes)
    ]
    return to_tensor(videos)


class ProceduralVideoDataset(torch.utils.data.IterableDataset):
    """An endless stream of (video (3, F, H, W) float in [-1, 1], caption) pairs.

    Each DataLoader worker draws from its own seed stream `clip_rng(seed, worker_id + k * num_workers)`,
    so workers never repeat each other's clips and a run is reproducible for a fixed worker count.
    """

    def __init__(
        self,
        seed: int = 0,
        frames: int = 17,
        height: int = 128,
        width: int = 128,
        split: str = "train",
        p_two: float = 0.2,
    ) -> None:
        super().__init__()
        self.seed, self.frames, self.height, self.width = seed, frames, height, width
        self.split, self.p_two = split, p_two

    def __iter__(self) -> Iterator[tuple[torch.Tensor, str]]:
        info = torch.utils.data.get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        k = worker
        while True:
            clip = sample_clip(
                clip_rng(self.seed, k), self.frames, self.height, self.width, self.split, p_two=self.p_two
            )
            yield to_tensor([clip.video])[0], clip.caption
            k += n_workers
