"""How good and how fast is a VAE: held-out reconstruction PSNR and the decode time of one default clip.

    python -m bench.vae [--vae DIR ...] [--clips 64] [--repeats 20] [--threads 1]

PSNR is measured as trainers.vae measures it at export (engine.tiny_vae.measure_vae on the same held-out
clips, full size, decoded output clamped to [−1, 1]); `round_trip_coherence` is ToyBench's
temporal-coherence measure of the default prompt set's real renders after the round trip (1 = moves
inside each 4-frame chunk as the real clip does; 0 = each chunk decodes to 4 identical frames); the decode
time is the median over `repeats`
decodes of one 17×128×128 clip's latent (16×5×16×16) after a warm-up, in this process, at `threads` CPU
threads. Several `--vae` folders are measured one after the other in the same process, so their times
compare. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from bench.metric_check import load_vae
from bench.metrics import coherence
from bench.toybench import default_prompts, reference_clips
from engine.tiny_vae import HELD_OUT_SEED, measure_vae
from world import make_batch, parse


@torch.no_grad()
def decode_seconds(vae, repeats: int, frames: int = 17, size: int = 128) -> float:
    """Median wall time of decoding one clip's latent, after two untimed decodes."""
    z = torch.randn(1, vae.config.z_dim, (frames - 1) // 4 + 1, size // 8, size // 8)
    for _ in range(2):
        vae.decode(z)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        vae.decode(z)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def round_trip_coherence(vae, clips: int, seed: int = 0) -> dict:
    """ToyBench's temporal-coherence measure (bench.metrics.coherence) of real renders of the default
    prompt set after encoding and decoding: how much of the motion inside each 4-frame chunk survives."""
    attrs = [parse(p) for p in default_prompts(clips, seed)]
    real, again = reference_clips(attrs, seed, 17, 128, 128)
    recon = vae.decode(vae.encode(real).latent_dist.mode()).sample.clamp(-1, 1)
    c = coherence(recon, attrs, again)
    return {
        k: round(c[k], 3) for k in ("within_chunk_ratio", "boundary_ratio", "boundary_ratio_real", "score")
    }


def measure(folder: str, clips: int, repeats: int) -> dict:
    vae = load_vae(folder)
    decoder = [m for name, m in vae.named_children() if not name.startswith("encoder")]
    return {
        "round_trip_coherence": round_trip_coherence(vae, clips),
        "psnr_db": round(
            measure_vae(vae, make_batch(HELD_OUT_SEED, clips, split="all").videos)["psnr_db"], 2
        ),
        "clips": clips,
        "decode_ms": round(1000 * decode_seconds(vae, repeats), 1),
        "decoder_params": sum(p.numel() for m in decoder for p in m.parameters()),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vae", action="append", default=None, help="VAE folder (repeatable)")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    folders = args.vae or ["assets/zoo/shared/vae"]
    result = {"threads": args.threads, **{f: measure(f, args.clips, args.repeats) for f in folders}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
