"""At which noise level does a model lose what the caption says? The decision-window test.

    python -m bench.decision_window --model wan-tiny --n 64 --sigmas 1,0.95,0.9,0.8,0.6 --seed 0

Real clips of ToyBench's default captions are encoded, noised to σ0 and sampled from there to σ = 0 with
the model's own sampler settings (Euler, the card's guidance and negative prompt, a linear grid of
round(50·σ0) steps), then decoded and read by ToyBench's probe. σ0 = 1 is generation from pure noise; σ0 = 0
would be the VAE round trip. Where a rate stays at the round trip's level down from some σ0 and falls above
it, the model keeps what the noisy clip still shows but cannot decide it itself: that σ0 is where the
attribute is decided in sampling (the text-binding test, bench.text_binding, asks the same of one step).

Prints, per σ0: shape and motion rates, and the motion rate split into translations (left, right, up,
down) and motions in place (grow, shrink, rotate, bounce, still); --json adds the per-class rates.
"""

from __future__ import annotations

import json

import torch

from bench.metrics import adherence, per_class
from bench.probe import load_probe
from bench.text_binding import real_clip_test_args
from bench.toybench import default_prompts
from world import parse, render_batch

TRANSLATIONS = ("left", "right", "up", "down")


def group_rate(classes: dict[str, dict], values) -> float | None:
    """The rate over the clips whose caption's value is in `values` (None if there are none)."""
    rows = [r for v, r in classes.items() if v in values]
    n = sum(r["n"] for r in rows)
    return sum(r["rate"] * r["n"] for r in rows) / n if n else None


@torch.no_grad()
def decision_window(model, n: int = 64, sigmas=(1.0, 0.95, 0.9, 0.8, 0.6), seed: int = 0, batch: int = 16):
    """{σ0: {"shape", "motion", "translation", "in_place", "per_class"}} (see the module doc)."""
    from engine.sampling import cfg_denoiser

    probe = load_probe()
    prompts = default_prompts(n, seed)
    attrs = [parse(p) for p in prompts]
    card = model.card
    guidance = card.guidance
    negative = [card.negative_prompt] if guidance != 1.0 else None
    chunks = []  # per batch of clips: (clean latents, denoiser with their captions), shared by every σ0
    for i in range(0, n, batch):
        clips = render_batch(attrs[i : i + batch], seed + 7 + i, card.frames, card.height, card.width)
        negatives = negative * len(clips) if negative else None
        cond, uncond = model.encode_prompt(prompts[i : i + batch], negatives)
        z = model.encode(clips)
        chunks.append((z, cfg_denoiser(model.transformer, cond, uncond, guidance)))
    out = {}
    for sigma0 in sigmas:
        if not 0.0 < sigma0 <= 1.0:
            raise ValueError(f"σ0 must be in (0, 1], got {sigma0}")
        steps = max(1, round(50 * sigma0))
        grid = torch.linspace(sigma0, 0.0, steps + 1).tolist()
        noise = torch.Generator().manual_seed(seed + 1)
        videos = []
        for z, denoise in chunks:
            x = (1 - sigma0) * z + sigma0 * torch.randn(z.shape, generator=noise)
            for s, s_next in zip(grid, grid[1:], strict=False):
                v = denoise(x.to(model.dtype), s, card.num_stages - 1).float()
                x = x + (s_next - s) * v
            videos.append(model.decode(x))
        read = probe.predict(torch.cat(videos))
        motion = per_class(read, attrs, "motion")
        rates = adherence(read, attrs)
        out[sigma0] = {
            "shape": rates["shape"],
            "motion": rates["motion"],
            "translation": group_rate(motion, TRANSLATIONS),
            "in_place": group_rate(motion, set(motion) - set(TRANSLATIONS)),
            "per_class": {"shape": per_class(read, attrs, "shape"), "motion": motion},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    args, model, sigmas = real_clip_test_args(__doc__, argv, 64, "1,0.95,0.9,0.8,0.6")
    result = decision_window(model, args.n, sigmas, args.seed)
    if args.json:
        print(json.dumps({"model": args.model, "n": args.n, "seed": args.seed, "sigmas": result}))
        return 0
    print(f"{args.model}, n = {args.n}, seed {args.seed}: sampled from a real clip noised to σ0")
    for sigma0, r in result.items():
        keys = [k for k in ("shape", "motion", "translation", "in_place") if r[k] is not None]
        cells = [f"{k} {100 * r[k]:5.1f}" for k in keys]
        print(f"σ0 = {sigma0:4.2f}: " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
