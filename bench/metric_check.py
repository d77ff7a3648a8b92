"""Can the metrics fail? Score real clips and three corruptions of them against the same captions.

    python -m bench.metric_check [--n 256] [--seed 4242] [--frames 17] [--size 128] [--vae DIR] [--threads 1]

"real" is a second, independent render of the captions (other positions, sizes, jitter), so its
Fréchet distance to the reference renders is the real-vs-real floor at this n. The corruptions:
- wrong_color: the same captions rendered with the object's color moved three places along COLORS;
- reversed: the real clips played backwards (left<->right, up<->down, grow<->shrink);
- noisy: the real clips plus Gaussian noise of std 0.5 (in [-1, 1] units), clamped.
With --vae DIR (a diffusers VAE folder, e.g. assets/zoo/shared/vae) a fifth variant, vae_reconstruction,
scores the real clips after an encode/decode round trip: the ceiling of any generator in that latent space.
Prints one JSON object: per variant the metrics of `bench.metrics.evaluate_videos`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from bench.metrics import evaluate_videos
from bench.probe import AttributeProbe, load_probe
from world import COLORS, ClipAttributes, make_batch, render_batch

REFERENCE_SEED_OFFSET = 99_991


def recolor(attrs: ClipAttributes, shift: int = 3) -> ClipAttributes:
    """The same clip description with the main object's color moved `shift` places along COLORS."""
    main = attrs.main
    new_main = dataclasses.replace(main, color=COLORS[(COLORS.index(main.color) + shift) % len(COLORS)])
    return dataclasses.replace(attrs, objects=(new_main, *attrs.objects[1:]))


def corrupted_sets(
    n: int, seed: int, frames: int = 17, height: int = 128, width: int = 128
) -> tuple[list[ClipAttributes], torch.Tensor, dict[str, torch.Tensor]]:
    """Single-object captions (attributes), reference real clips for them, and the variants to score.

    Returns (attributes, reference (n, 3, F, H, W), {"real", "wrong_color", "reversed", "noisy"}: videos).
    """
    batch = make_batch(seed, n, frames, height, width, split="all", n_objects=1)
    attrs = batch.attributes
    reference = render_batch(attrs, seed + REFERENCE_SEED_OFFSET, frames, height, width)
    noise = torch.randn(batch.videos.shape, generator=torch.Generator().manual_seed(seed))
    variants = {
        "real": batch.videos,
        "wrong_color": render_batch([recolor(a) for a in attrs], seed, frames, height, width),
        "reversed": batch.videos.flip(2),
        "noisy": (batch.videos + 0.5 * noise).clamp(-1, 1),
    }
    return attrs, reference, variants


def load_vae(folder: str | Path) -> torch.nn.Module:
    """The VAE saved in `folder`: the zoo's TinyWanVAE or diffusers' AutoencoderKLWan, by its config."""
    name = json.loads((Path(folder) / "config.json").read_text()).get("_class_name")
    if name == "TinyWanVAE":
        from engine.tiny_vae import TinyWanVAE

        return TinyWanVAE.from_pretrained(str(folder)).eval()
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan.from_pretrained(str(folder)).eval()


@torch.no_grad()
def reconstruct(vae: torch.nn.Module, videos: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Encode (posterior mode) and decode (B, 3, F, H, W) videos in [-1, 1]; same shape back."""
    out = [
        vae.decode(vae.encode(videos[i : i + batch_size]).latent_dist.mode()).sample.clamp(-1, 1)
        for i in range(0, len(videos), batch_size)
    ]
    return torch.cat(out)


def metric_check(
    probe: AttributeProbe,
    n: int,
    seed: int,
    frames: int = 17,
    height: int = 128,
    width: int = 128,
    vae: torch.nn.Module | None = None,
) -> dict[str, dict]:
    """`evaluate_videos` of every variant of `corrupted_sets` (and of VAE reconstructions of the real
    clips when `vae` is given) against the reference renders."""
    attrs, reference, variants = corrupted_sets(n, seed, frames, height, width)
    if vae is not None:
        variants["vae_reconstruction"] = reconstruct(vae, variants["real"])
    return {name: evaluate_videos(videos, attrs, probe, reference) for name, videos in variants.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--seed", type=int, default=4242)
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--probe", default=None, help="checkpoint folder (default assets/probe)")
    parser.add_argument("--vae", default=None, help="also score VAE reconstructions (a VAE folder)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    probe = load_probe(args.probe) if args.probe else load_probe()
    vae = load_vae(args.vae) if args.vae else None
    result = metric_check(probe, args.n, args.seed, args.frames, args.size, args.size, vae=vae)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
