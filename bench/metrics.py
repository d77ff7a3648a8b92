"""ToyBench metrics for generated videos scored against the attributes of their captions.

- `adherence`: per-attribute rate at which the probe reads the caption's value (main object), and the
  rate at which shape, color, background and motion are all right at once ("all").
- `per_class`: the same rate for each value of the caption (which shapes or motions fail) and what the
  probe read instead most often.
- `frechet_distance`: FVD-style distance between probe features of generated clips and of real clips
  rendered for the same captions. It is biased upwards for small n, so always compare it with the
  real-vs-real floor at the same n (two independent renders of the same captions).
- `temporal_consistency`: mean frame-to-frame change and flicker (second temporal difference) of the
  generated clips relative to real clips of the same captions; 1.0 means "as steady as real".
- `coherence`: is the main object one steady thing: present in every frame, of stable size unless the
  caption says grow/shrink, moving inside each 4-frame latent chunk as real renders do and not jumping
  between chunks.
- `centroid_motion`: an interpretable motion reading that needs no network: the main object's mask is
  the difference to a background estimated from the border columns, its centroid and area are tracked,
  and a few rules name the motion. Meant for single-object clips.

All video arguments are float tensors (B, 3, F, H, W) in [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from bench.probe import HEADS, AttributeProbe
from world.attributes import ClipAttributes

ADHERENCE_KEYS = ("shape", "color", "background", "motion")

# --------------------------------------------------------------------------------------------- adherence


def _truth_and_reading(
    predictions: dict[str, torch.Tensor], attributes: Sequence[ClipAttributes], head: str
) -> tuple[list, list[str]]:
    """What each caption says of `head` (main object; None where it says nothing) and what the probe read."""
    truth = [a.background if head == "background" else getattr(a.main, head) for a in attributes]
    return truth, [HEADS[head][int(i)] for i in predictions[head]]


def adherence(predictions: dict[str, torch.Tensor], attributes: Sequence[ClipAttributes]) -> dict[str, float]:
    """Rates in [0, 1] per attribute (main object) and "all" (shape, color, background, motion all right).

    predictions: probe class indices (B,) per head. "speed" counts only clips whose caption names a speed.
    """
    n = len(attributes)
    if n == 0:
        raise ValueError("adherence needs at least one clip")
    all_ok = np.ones(n, dtype=bool)
    out: dict[str, float] = {}
    for head in (*ADHERENCE_KEYS, "speed"):
        truth, pred = _truth_and_reading(predictions, attributes, head)
        ok = np.array([t == p for t, p in zip(truth, pred, strict=True)])
        if head == "speed":
            named = np.array([t is not None for t in truth])
            out["speed"] = float(ok[named].mean()) if named.any() else float("nan")
        else:
            out[head] = float(ok.mean())
            all_ok &= ok
    out["all"] = float(all_ok.mean())
    return out


def per_class(
    predictions: dict[str, torch.Tensor], attributes: Sequence[ClipAttributes], head: str
) -> dict[str, dict]:
    """For each value the captions give `head` (main object): how many clips, the share the probe reads
    as that value, and the value it reads most often when it is wrong (None if it never is)."""
    truth, pred = _truth_and_reading(predictions, attributes, head)
    out: dict[str, dict] = {}
    for value in sorted({t for t in truth if t is not None}):
        read = [p for t, p in zip(truth, pred, strict=True) if t == value]
        wrong = [p for p in read if p != value]
        out[value] = {
            "n": len(read),
            "rate": sum(p == value for p in read) / len(read),
            "mistaken_for": max(sorted(set(wrong)), key=wrong.count) if wrong else None,
        }
    return out


# ------------------------------------------------------------------------------------------------- Fréchet


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to (N, D) and (M, D) feature sets:
    |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr((S_a^1/2 S_b S_a^1/2)^1/2).

    The matrix square roots use symmetric eigendecompositions in float64 (no scipy); that form of the
    cross term is equal to tr((S_a S_b)^1/2) and stays real and stable for rank-deficient covariances.
    """
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"expected (N, D) and (M, D) features, got {tuple(features_a.shape)} and "
            f"{tuple(features_b.shape)}"
        )
    if len(features_a) < 2 or len(features_b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 clips on each side")
    a, b = features_a.double(), features_b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eval_a, evec_a = torch.linalg.eigh(cov_a)
    sqrt_a = evec_a @ torch.diag(eval_a.clamp_min(0).sqrt()) @ evec_a.T
    middle = sqrt_a @ cov_b @ sqrt_a
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    fd = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    return float(fd.clamp_min(0))


# ---------------------------------------------------------------------------------------------- temporal


def temporal_statistics(videos: torch.Tensor) -> dict[str, float]:
    """Mean |x[t+1] - x[t]| ("frame_change") and mean |x[t+1] - 2 x[t] + x[t-1]| ("flicker") over
    (B, 3, F, H, W) videos in [-1, 1]. Smooth motion has small flicker; noise and popping raise it."""
    x = videos.float()
    d1 = x[:, :, 1:] - x[:, :, :-1]
    d2 = d1[:, :, 1:] - d1[:, :, :-1]
    return {"frame_change": float(d1.abs().mean()), "flicker": float(d2.abs().mean())}


def temporal_consistency(videos: torch.Tensor, real_videos: torch.Tensor) -> dict[str, float]:
    """Temporal statistics of `videos` next to those of `real_videos` (same captions), and
    score = exp(-|log(flicker / flicker_real)|) in (0, 1]: 1 when as steady as real, lower when the
    clips flicker (or freeze) more than real ones do."""
    gen, real = temporal_statistics(videos), temporal_statistics(real_videos)
    eps = 1e-6
    ratio = (gen["flicker"] + eps) / (real["flicker"] + eps)
    return {
        "frame_change": gen["frame_change"],
        "frame_change_real": real["frame_change"],
        "flicker": gen["flicker"],
        "flicker_real": real["flicker"],
        "flicker_ratio": ratio,
        "score": math.exp(-abs(math.log(ratio))),
    }


# ------------------------------------------------------------------------------------- centroid motion


def object_masks(videos: torch.Tensor, threshold: float = 0.25, border: float = 1 / 16) -> torch.Tensor:
    """(B, 3, F, H, W) -> (B, F, H, W) bool: where a frame differs from the background estimate.

    The background of each row is the median over all frames of the row's `border` fraction of pixels at
    the left and right edges: objects keep off the border columns or cross them only briefly, and the
    world's backgrounds vary only from top to bottom.
    """
    b, c, f, h, w = videos.shape
    k = max(1, round(w * border))
    edges = torch.cat([videos[..., :k], videos[..., w - k :]], dim=-1)  # (B, C, F, H, 2k)
    bg = edges.permute(0, 1, 3, 2, 4).reshape(b, c, h, f * 2 * k).median(dim=-1).values  # (B, C, H)
    diff = (videos - bg[:, :, None, :, None]).abs().amax(dim=1)  # (B, F, H, W)
    return diff > threshold


def centroid_tracks(videos: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame mask area (fraction of the frame) and centroid (x, y as fractions of W, H): each (B, F).
    Frames without a mask get NaN centroids. Also returns the masks (B, F, H, W)."""
    masks = object_masks(videos)
    b, f, h, w = masks.shape
    m = masks.float()
    area = m.sum(dim=(2, 3))
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w
    cx = (m.sum(dim=2) * xs).sum(dim=-1) / area
    cy = (m.sum(dim=3) * ys).sum(dim=-1) / area
    return {"area": area / (h * w), "cx": cx, "cy": cy, "masks": masks}


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union > 0 else 1.0


def classify_track(area: np.ndarray, cx: np.ndarray, cy: np.ndarray, masks: torch.Tensor) -> str:
    """Name the motion of one object track (arrays (F,), masks (F, H, W)) with interpretable rules, in order:
    bounce (vertical path much longer than its net displacement), translation (net centroid move above 8%
    of the frame; the dominant axis names it), grow/shrink (area ratio of last to first frames beyond
    1.5x), rotate (the mask changes shape: IoU with the first frame below 0.85), else still.
    Returns "none" when the object is invisible in most frames."""
    valid = area > 2e-3
    if valid.sum() < max(3, len(area) // 2):
        return "none"
    idx = np.flatnonzero(valid)
    cx, cy, area = cx[idx], cy[idx], area[idx]
    head, tail = slice(0, 2), slice(-2, None)
    dx, dy = cx[tail].mean() - cx[head].mean(), cy[tail].mean() - cy[head].mean()
    path_y = np.abs(np.diff(cy)).sum()
    if path_y > 0.3 and path_y > 1.8 * abs(dy) + 0.1:
        return "bounce"
    if max(abs(dx), abs(dy)) > 0.08:
        if abs(dx) >= abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"
    ratio = area[tail].mean() / area[head].mean()
    if ratio > 1.5:
        return "grow"
    if ratio < 1 / 1.5:
        return "shrink"
    first = masks[idx[0]]
    if min(_iou(first, masks[i]) for i in idx[1:]) < 0.85:
        return "rotate"
    return "still"


def centroid_motion(videos: torch.Tensor, tracks: dict[str, torch.Tensor] | None = None) -> list[str]:
    """Rule-based motion name per clip (see `classify_track`), from the centroid/area track."""
    tracks = tracks if tracks is not None else centroid_tracks(videos)
    area, cx, cy = (tracks[k].numpy() for k in ("area", "cx", "cy"))
    return [classify_track(area[i], cx[i], cy[i], tracks["masks"][i]) for i in range(len(videos))]


# ------------------------------------------------------------------------------------ temporal coherence

PRESENT_AREA = 2e-3  # a frame shows the object when its mask covers more than this share of the frame
SIZE_STABLE_RATIO = 1.5  # largest / smallest mask area over a clip that still counts as "the same size"
SIZE_CHANGING_MOTIONS = ("grow", "shrink")


def latent_frame_index(frames: int, temporal_factor: int = 4) -> np.ndarray:
    """Which latent frame each pixel frame is encoded in: Wan's VAE keeps frame 0 alone and packs every
    following `temporal_factor` frames into one latent frame (17 frames -> 0,1,1,1,1,2,2,2,2,...)."""
    f = np.arange(frames)
    return np.where(f == 0, 0, (f - 1) // temporal_factor + 1)


def chunk_changes(videos: torch.Tensor, temporal_factor: int = 4) -> dict[str, float]:
    """Mean |x[t+1] − x[t]| over frame pairs inside one latent frame ("within") and across a latent frame
    boundary ("boundary"), for (B, 3, F, H, W) videos. Real renders move evenly: the two are alike. A
    generator whose latent frames decode to repeated pictures has within ≈ 0; one whose objects jump from
    one latent frame to the next has boundary ≫ within."""
    change = (videos[:, :, 1:] - videos[:, :, :-1]).float().abs().mean(dim=(0, 1, 3, 4))  # (F − 1,)
    index = latent_frame_index(videos.shape[2], temporal_factor)
    inside = torch.from_numpy(index[1:] == index[:-1])
    if not inside.any() or inside.all():
        raise ValueError(f"{videos.shape[2]} frames have no pairs both inside and across latent frames")
    return {"within": float(change[inside].mean()), "boundary": float(change[~inside].mean())}


def coherence(
    videos: torch.Tensor,
    attributes: Sequence[ClipAttributes],
    real_videos: torch.Tensor,
    tracks: dict[str, torch.Tensor] | None = None,
) -> dict[str, float]:
    """Is the main object one steady thing over the clip? (ToyBench's temporal-coherence measure.)

    - "present_all_frames": share of clips whose object mask (`object_masks`) is non-empty in every frame;
    - "size_stable": share, among clips whose caption does not say grow/shrink, whose mask area varies by
      at most SIZE_STABLE_RATIO over the clip (frames without the object count as unstable);
    - "within_chunk_ratio": mean frame-to-frame change inside latent frames, generated / real (1 = moves
      like real renders inside every 4-frame chunk; 0 = each latent frame decodes to one repeated picture);
    - "boundary_ratio", "boundary_ratio_real": change across latent-frame boundaries / change inside them,
      for the generated and the real clips (real ≈ 1; jumps between latent frames raise it);
    - "score": exp(−|log within_chunk_ratio|) · exp(−|log(boundary_ratio / boundary_ratio_real)|) in (0, 1].
    Meant for single-object clips (ToyBench's default prompt set).
    """
    if len(videos) != len(attributes):
        raise ValueError(f"{len(videos)} videos but {len(attributes)} attribute sets")
    area = (tracks if tracks is not None else centroid_tracks(videos))["area"].numpy()  # (B, F)
    present = area > PRESENT_AREA
    steady = np.array([a.main.motion not in SIZE_CHANGING_MOTIONS for a in attributes])
    ratio = np.where(present.all(axis=1), area.max(axis=1) / np.maximum(area.min(axis=1), 1e-9), np.inf)
    size_stable = float((ratio[steady] <= SIZE_STABLE_RATIO).mean()) if steady.any() else float("nan")
    gen, real = chunk_changes(videos), chunk_changes(real_videos)
    eps = 1e-6
    within_ratio = (gen["within"] + eps) / (real["within"] + eps)
    boundary, boundary_real = (
        (gen["boundary"] + eps) / (gen["within"] + eps),
        (real["boundary"] + eps) / (real["within"] + eps),
    )
    score = math.exp(-abs(math.log(within_ratio))) * math.exp(-abs(math.log(boundary / boundary_real)))
    return {
        "present_all_frames": float(present.all(axis=1).mean()),
        "size_stable": size_stable,
        "within_chunk_ratio": within_ratio,
        "boundary_ratio": boundary,
        "boundary_ratio_real": boundary_real,
        "score": score,
    }


# ---------------------------------------------------------------------------------------------- combined


def evaluate_videos(
    videos: torch.Tensor,
    attributes: Sequence[ClipAttributes],
    probe: AttributeProbe,
    real_videos: torch.Tensor,
) -> dict:
    """All ToyBench metrics for generated `videos` (B, 3, F, H, W) in [-1, 1] against the attributes of
    their captions, with `real_videos` (M, 3, F', H', W') rendered for the same captions as reference.

    Returns {"n", "adherence", "fd", "temporal", "coherence", "centroid_motion"}: centroid_motion holds the
    rate at which the rule-based motion agrees with the caption ("vs_caption") and with the probe
    ("vs_probe").
    """
    if len(videos) != len(attributes):
        raise ValueError(f"{len(videos)} videos but {len(attributes)} attribute sets")
    pred = probe.predict(videos)
    real_pred = probe.predict(real_videos)
    tracks = centroid_tracks(videos)  # object masks once, for the motion rules and for coherence
    rule = centroid_motion(videos, tracks)
    truth_motion = [a.main.motion for a in attributes]
    probe_motion = [HEADS["motion"][int(i)] for i in pred["motion"]]
    return {
        "n": len(videos),
        "n_real": len(real_videos),
        "adherence": adherence(pred, attributes),
        "fd": frechet_distance(pred["features"], real_pred["features"]),
        "temporal": temporal_consistency(videos, real_videos),
        "coherence": coherence(videos, attributes, real_videos, tracks),
        "centroid_motion": {
            "vs_caption": float(np.mean([r == t for r, t in zip(rule, truth_motion, strict=True)])),
            "vs_probe": float(np.mean([r == p for r, p in zip(rule, probe_motion, strict=True)])),
        },
    }
