"""Where does a model's temporal incoherence come from: the VAE, the transformer's denoising, or sampling?

    python -m bench.coherence_sources [--model wan-tiny] [--n 16] [--seed 0] [--sigmas 0.3,0.5,0.7,0.9]

ToyBench's coherence measure (bench.metrics.coherence) for the same prompt set, at four points of the
chain, each against independent real renders of the same captions:
1. `vae`: real renders encoded and decoded (the ceiling every transformer shares);
2. `x0@σ`: real latents noised to σ and turned into x0 = x − σ·v by the model (denoising, one step);
3. `generated`: the model's own videos from pure noise at its card's schedule.
If (1) already moves little inside 4-frame chunks, the 2-fps look comes from the VAE; if (2) keeps what
(1) has, the transformer's latents do not lose it; whatever (3) loses beyond that is sampling's. Prints
one JSON line per point.
"""

from __future__ import annotations

import argparse
import json

import torch

from bench.metrics import coherence
from bench.toybench import default_prompts, generate_videos, reference_clips
from world import parse

KEYS = ("present_all_frames", "size_stable", "within_chunk_ratio", "boundary_ratio", "score")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="wan-tiny")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sigmas", default="0.3,0.5,0.7,0.9")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from engine.models import load_model
    from engine.sampling import cfg_denoiser

    model = load_model(args.model, device="cpu")
    card = model.card
    prompts = default_prompts(args.n, args.seed)
    attrs = [parse(p) for p in prompts]
    real, again = reference_clips(attrs, args.seed, card.frames, card.height, card.width)

    def show(point: str, videos: torch.Tensor) -> None:
        c = coherence(videos, attrs, again)
        print(json.dumps({"point": point, **{k: round(c[k], 3) for k in KEYS}}), flush=True)

    show("real", real)
    latents = model.encode(real)
    show("vae", model.decode(latents))
    text, _ = model.encode_prompt(prompts, None)
    denoise = cfg_denoiser(model.transformer, text, None, 1.0)  # conditional velocity, no guidance
    g = torch.Generator().manual_seed(args.seed)
    for sigma in (float(s) for s in args.sigmas.split(",")):
        x = (1 - sigma) * latents + sigma * torch.randn(latents.shape, generator=g)
        show(f"x0@{sigma:g}", model.decode(x - sigma * denoise(x, sigma, model.card.num_stages - 1)))
    generation = generate_videos(model, prompts, None, args.seed)
    show(f"generated {generation.request.schedule}", torch.stack(generation.videos))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
