"""Which stages of a pyramid lose what: one model's transformer at some stages, another's at the rest.

    python -m bench.stage_swap --low pyramidal-wan-tiny --high wan-tiny [--stages LLH] [--schedule 20-20-10]
                               [--own-guidance] [--step-rule x0] [--n 32] [--seed 0] [--json]

Samples ToyBench's default prompt set with the pyramid of `--low`'s card (geometry, schedule, guidance,
shift, step rule, frame-shared noise), running at stage k the transformer that the k-th letter of
`--stages` names (`L`: `--low`'s, `H`: `--high`'s; the default `LLH` is `--low` below full resolution,
`--high` at it), and scores it as ToyBench does. With `--low` = `--high` it is exactly ToyBench. Swapping
one stage against the shipped pyramid says where a property is decided: if the base at the top stage keeps
the pyramid's motion score, the motion was decided (or lost) below it; if a distilled generator's lower
stages under its teacher's top stage score as the teacher does, its loss is at the top stage. A plain
model is allowed at any stage: the engine's schedules run any Wan transformer at any stage's resolution.

`--own-guidance`: each transformer samples at its own card's guidance (a distilled generator at 1, its
teacher at 3) instead of all at `--low`'s. `--step-rule` overrides `--low`'s rule for every stage (the
engine has one rule per run).

Prints the model pair, the stage assignment, the schedule and ToyBench's JSON fields (adherence, fd,
coherence, ...).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from collections.abc import Sequence

import torch

from bench.toybench import default_prompts, evaluate
from engine.flow import guidance_mix


class StageSwap(torch.nn.Module):
    """A transformer that runs, at each stage of a pyramid, the transformer assigned to that stage, each at
    its own guidance scale.

    The denoiser calls it like a diffusers WanTransformer3DModel (keyword arguments, hidden_states of shape
    (B, C, T, H, W)); the latent's (T, H, W) is the only thing a call says about its stage, so `shapes` (one
    per stage) must differ. `config` is the full-resolution stage's transformer's, so the engine reads the
    channels and patch size from it.

    Guidance: the sampler mixes the batch [cond, uncond] as lerp(v_u, v_c, G) with G = `sampler_guidance`.
    A stage whose own scale g differs returns (lerp(v_u, v_c, g/G), v_u), which the sampler's mix turns
    into v_u + g·(v_c − v_u); at g = 1 only the conditional half runs and it returns (v_c, v_c). With
    G = 1 the sampler passes no unconditional half, so every stage must be unguided.
    """

    def __init__(
        self,
        nets: Sequence[torch.nn.Module],
        shapes: Sequence[tuple[int, int, int]],
        guidances: Sequence[float] | None = None,
        sampler_guidance: float = 1.0,
    ):
        super().__init__()
        guidances = list(guidances) if guidances is not None else [sampler_guidance] * len(nets)
        if not len(nets) == len(shapes) == len(guidances):
            raise ValueError(
                f"need one shape and guidance per transformer, got {len(shapes)} and {len(guidances)}"
            )
        if len(set(map(tuple, shapes))) != len(shapes):
            raise ValueError(f"stages of equal latent size cannot be told apart: {list(shapes)}")
        if len({n.config.in_channels for n in nets}) != 1:
            raise ValueError("the transformers take latents of different channel counts")
        if sampler_guidance == 1.0 and any(g != 1.0 for g in guidances):
            raise ValueError("a guided stage needs a guided sampler (sampler_guidance ≠ 1)")
        self.nets = torch.nn.ModuleList(nets)
        self.shapes = [tuple(s) for s in shapes]
        self.guidances, self.sampler_guidance = guidances, sampler_guidance
        self.config = nets[-1].config

    def forward(self, hidden_states: torch.Tensor, **kwargs):
        shape = tuple(hidden_states.shape[2:])
        if shape not in self.shapes:
            raise ValueError(f"latent of size {shape} matches no stage ({self.shapes})")
        k = self.shapes.index(shape)
        net, g, big_g = self.nets[k], self.guidances[k], self.sampler_guidance
        if big_g == 1.0 or g == big_g:
            return net(hidden_states=hidden_states, **kwargs)
        b = hidden_states.shape[0] // 2  # the sampler's batch is [x, x] with contexts [cond, uncond]
        if g == 1.0:
            half = dict(kwargs, timestep=kwargs["timestep"][:b])
            half["encoder_hidden_states"] = kwargs["encoder_hidden_states"][:b]
            v = net(hidden_states=hidden_states[:b], **half)[0]
            return (torch.cat([v, v]),)
        v = net(hidden_states=hidden_states, **kwargs)[0]
        v_cond, v_uncond = v[:b], v[b:]
        return (torch.cat([guidance_mix(v_cond, v_uncond, g / big_g), v_uncond]),)


def swapped_model(
    low_name: str, high_name: str, stages: str = "LLH", own_guidance: bool = False, device: str = "cpu"
):
    """`low_name`'s model (card, VAE, text encoder) with its transformer replaced by a StageSwap that runs
    `low_name`'s transformer where `stages` says L and `high_name`'s where it says H; with `own_guidance`
    each at its own card's guidance and the card's guidance set to the largest of them.

    A shallow copy: the cached model that engine.models.load_model returns is left as it is."""
    from engine.models import load_model

    low = load_model(low_name, device=device)
    high = load_model(high_name, device=device)
    if (high.card.height, high.card.width) != (low.card.height, low.card.width):
        raise ValueError(f"{low_name} and {high_name} sample different sizes")
    card = low.card
    if len(stages) != card.num_stages or set(stages) - {"L", "H"}:
        raise ValueError(f"stages must be {card.num_stages} letters L or H, got {stages!r}")
    models = [low if c == "L" else high for c in stages]
    guidances = [m.card.guidance if own_guidance else card.guidance for m in models]
    sampler_guidance = max(guidances) if own_guidance else card.guidance
    pipe = copy.copy(low.pipe)
    pipe.transformer = StageSwap(
        [m.transformer for m in models],
        [s.latent_shape[1:] for s in low.geometry.stages],
        guidances,
        sampler_guidance,
    )
    return dataclasses.replace(low, pipe=pipe, card=dataclasses.replace(card, guidance=sampler_guidance))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--low", default="pyramidal-wan-tiny", help="the L transformer (and the card)")
    parser.add_argument("--high", default="wan-tiny", help="the H transformer")
    parser.add_argument("--stages", default="LLH", help="which transformer runs at each stage, low → high")
    parser.add_argument("--schedule", default="20-20-10")
    parser.add_argument("--own-guidance", action="store_true", help="each model at its card's guidance")
    parser.add_argument("--step-rule", default=None, choices=["euler", "x0"], help="default: --low's")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    try:
        model = swapped_model(args.low, args.high, args.stages, args.own_guidance)
    except ValueError as e:
        parser.error(str(e))
    prompts = default_prompts(args.n, args.seed)
    result = evaluate(model, args.schedule, prompts, args.seed, step_rule=args.step_rule)
    result.update(low=args.low, high=args.high, stages=args.stages, own_guidance=args.own_guidance)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
