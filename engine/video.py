"""Video export: browser-playable H.264 mp4 through imageio-ffmpeg, and contact sheets of frames."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
from PIL import Image


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) or (1, 3, F, H, W) float in [-1, 1] → (F, H, W, 3) uint8."""
    if video.ndim == 5:
        if video.shape[0] != 1:
            raise ValueError(f"expected one video, got a batch of {video.shape[0]}")
        video = video[0]
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"expected a (3, F, H, W) video, got shape {tuple(video.shape)}")
    frames = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return frames.permute(1, 2, 3, 0).cpu().numpy()


def write_mp4(frames: np.ndarray, path: str | Path, fps: int = 16) -> Path:
    """Write (F, H, W, 3) uint8 frames as H.264/yuv420p mp4 with faststart (plays in every browser).

    H.264 in yuv420p needs even sizes; odd sizes are rejected rather than silently resized.
    """
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (F, H, W, 3) uint8 frames, got {frames.shape} {frames.dtype}")
    f, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 needs even frame sizes, got {w}×{h}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".partial" + path.suffix)
    try:
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (w, h),
            fps=fps,
            codec="libx264",
            pix_fmt_out="yuv420p",
            quality=None,
            macro_block_size=1,
            output_params=["-crf", "18", "-movflags", "+faststart"],
            ffmpeg_log_level="quiet",  # a failure is reported once, below, not as ffmpeg's many lines
        )
        writer.send(None)
        for frame in frames:
            writer.send(frame)
        writer.close()
        if not tmp.is_file() or tmp.stat().st_size == 0:  # ffmpeg exits quietly when it cannot write
            raise OSError("no output")
    except (OSError, RuntimeError) as err:  # ffmpeg's own message is many lines; say what failed, once
        _remove_file(tmp)
        raise OSError(
            f"could not write the video {str(path)!r}: ffmpeg failed; is the folder writable and the disk "
            f"not full?"
        ) from err
    except BaseException:  # interrupted: leave no partial file behind
        _remove_file(tmp)
        raise
    tmp.replace(path)  # only a complete file ever carries the final name
    return path


def _remove_file(path: Path) -> None:
    if path.is_file():
        path.unlink(missing_ok=True)


def read_mp4(path: str | Path) -> np.ndarray:
    """Read an mp4 back as (F, H, W, 3) uint8 (used by tests and the benchmark)."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = reader.__next__()
    w, h = meta["size"]
    frames = [np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3) for buf in reader]
    return np.stack(frames)


def contact_sheet(
    frames: np.ndarray, columns: int = 0, max_frames: int = 9, min_height: int = 96
) -> np.ndarray:
    """A grid image (H', W', 3) of evenly spaced frames; small frames are enlarged (nearest) for viewing."""
    f = frames.shape[0]
    idx = np.linspace(0, f - 1, min(f, max_frames)).round().astype(int)
    picked = frames[idx]
    scale = max(1, int(np.ceil(min_height / picked.shape[1])))
    if scale > 1:
        picked = picked.repeat(scale, axis=1).repeat(scale, axis=2)
    n = len(picked)
    columns = columns or n
    rows = -(-n // columns)
    _, h, w, _ = picked.shape
    gap = 2
    sheet = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), 255, np.uint8)
    for i, frame in enumerate(picked):
        r, c = divmod(i, columns)
        sheet[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = frame
    return sheet


def save_png(image: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path
