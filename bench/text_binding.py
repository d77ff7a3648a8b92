"""Does a model draw what the caption says, or what it sees? The text-binding test.

    python -m bench.text_binding --model wan-tiny [--n 32] [--sigmas 0.9,0.8,0.7] [--seed 0] [--json]

Real clips of ToyBench's default captions are encoded and noised to σ, and the model's clean estimate
x0 = x − σ·v is decoded and read by ToyBench's probe, three times: with the true caption, with the
caption's shape word swapped for another shape, and with its motion swapped for another motion. A model
that has learned the caption moves the estimate towards the swapped word ("follows caption"); one that
copies what is visible in x keeps the clip's own shape or motion ("follows clip"). Since the training
captions are always true, the ideal denoiser follows the caption at every σ; the clip's shape is hard to
see in x at σ ≥ 0.9, which is where a sample's layout and shape are decided.

Prints per σ and per swap: the share of estimates whose probe reading equals the caption's value and the
share equal to the clip's value (chance: 1/5 for shape, 1/9 for motion).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import torch

from bench.probe import HEADS, load_probe
from bench.toybench import default_prompts
from world import caption, parse, render_batch
from world.attributes import MOTIONS, SHAPES, ClipAttributes

SWAPS = {"shape": SHAPES, "motion": MOTIONS}


def swapped(attrs: ClipAttributes, field: str, rng: np.random.Generator) -> ClipAttributes:
    """The same clip description with the main object's `field` changed to another valid value."""
    main = attrs.main
    others = [v for v in SWAPS[field] if v != getattr(main, field)]
    for value in rng.permutation(others):
        change = {field: str(value)}
        if field == "motion":
            change["speed"] = None if value == "still" else (main.speed or "slow")
        try:
            return dataclasses.replace(
                attrs, objects=(dataclasses.replace(main, **change), *attrs.objects[1:])
            )
        except ValueError:  # e.g. a rotating circle
            continue
    raise ValueError(f"no valid {field} swap for {attrs}")


@torch.no_grad()
def text_binding(model, n: int = 32, sigmas=(0.9, 0.8, 0.7), seed: int = 0) -> dict:
    """{sigma: {caption kind: {"shape"|"motion": {"follows_caption", "follows_clip"}}}} (see module doc)."""
    from engine.sampling import cfg_denoiser

    probe = load_probe()
    attrs = [parse(p) for p in default_prompts(n, seed)]
    rng = np.random.default_rng(seed)
    captions = {"true": attrs, **{f"{f}_swapped": [swapped(a, f, rng) for a in attrs] for f in SWAPS}}
    frames, height, width = model.card.frames, model.card.height, model.card.width
    z = model.encode(render_batch(attrs, seed + 7, frames, height, width))
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
    embeddings = {k: model.encode_prompt([caption(a) for a in v], None)[0] for k, v in captions.items()}
    out: dict = {}
    for sigma in sigmas:
        x = (1 - sigma) * z + sigma * eps
        out[sigma] = {}
        for kind, described in captions.items():
            denoise = cfg_denoiser(model.transformer, embeddings[kind], None, 1.0)  # conditional velocity
            v = denoise(x.to(model.dtype), sigma, model.card.num_stages - 1).float()
            read = probe.predict(model.decode(x - sigma * v))
            out[sigma][kind] = {}
            for field in SWAPS:
                got = np.array([HEADS[field][int(i)] for i in read[field]])
                said = np.array([getattr(a.main, field) for a in described])
                real = np.array([getattr(a.main, field) for a in attrs])
                out[sigma][kind][field] = {
                    "follows_caption": float((got == said).mean()),
                    "follows_clip": float((got == real).mean()),
                }
    return out


def real_clip_test_args(doc: str, argv: list[str] | None, n: int, sigmas: str):
    """The command line shared by the tests on noised real clips (this one, bench.decision_window):
    (args, the model in float32 on the CPU, the noise levels as floats)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--model", default="wan-tiny")
    p.add_argument("--n", type=int, default=n)
    p.add_argument("--sigmas", default=sigmas)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    from engine.models import load_model

    model = load_model(args.model, device="cpu", dtype="float32")
    return args, model, [float(s) for s in args.sigmas.split(",")]


def main(argv: list[str] | None = None) -> int:
    args, model, sigmas = real_clip_test_args(__doc__, argv, 32, "0.9,0.8,0.7")
    result = text_binding(model, args.n, sigmas, args.seed)
    if args.json:
        print(json.dumps({"model": args.model, "n": args.n, "seed": args.seed, "sigmas": result}))
        return 0
    print(f"{args.model}, n = {args.n}: x0 estimates read as the caption says / as the clip is")
    for sigma, kinds in result.items():
        cells = [
            f"{kind} {field} {r['follows_caption']:.2f}/{r['follows_clip']:.2f}"
            for kind, fields in kinds.items()
            for field, r in fields.items()
            if kind == "true" or kind.startswith(field)
        ]
        print(f"σ = {sigma}: " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
