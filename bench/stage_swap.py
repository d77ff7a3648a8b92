"""Which stages of a pyramid lose what: one model's transformer below full resolution, another's at it.

    python -m bench.stage_swap --low pyramidal-wan-tiny --high wan-tiny [--schedule 20-20-10] [--n 32]
                               [--seed 0] [--json]

Samples ToyBench's default prompt set with the pyramid of `--low`'s card (geometry, schedule, guidance,
shift, step rule), running `--low`'s transformer at every stage below full resolution and `--high`'s at
full resolution, and scores it as ToyBench does. With `--low` = `--high` it is exactly ToyBench. Swapping
one side against the shipped pyramid says where a property is decided: if the base at the top stage keeps
the pyramid's motion score, the motion was decided (or lost) below it. A plain model is allowed on either
side: the engine's schedules run any Wan transformer at any stage's resolution.

Prints the model pair, the schedule and ToyBench's JSON fields (adherence, fd, coherence, ...).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json

import torch

from bench.toybench import default_prompts, evaluate
from engine.pyramid import VAE_SPATIAL_STRIDE


class StageSwap(torch.nn.Module):
    """A transformer that runs `high` on latents of full spatial size and `low` on anything smaller.

    The denoiser calls it like a diffusers WanTransformer3DModel (keyword arguments, hidden_states of shape
    (B, C, T, H, W)); the latent's width is the only thing a call says about its stage, and a pyramid's
    lower stages are all narrower than the full one. `config` is `high`'s, so the engine reads the full
    model's channels and patch size from it.
    """

    def __init__(self, low: torch.nn.Module, high: torch.nn.Module, full_width: int):
        super().__init__()
        if low.config.in_channels != high.config.in_channels:
            raise ValueError(
                f"the two transformers take different latents ({low.config.in_channels} and "
                f"{high.config.in_channels} channels)"
            )
        self.low, self.high, self.full_width = low, high, full_width
        self.config = high.config

    def forward(self, hidden_states: torch.Tensor, **kwargs):
        net = self.high if hidden_states.shape[-1] == self.full_width else self.low
        return net(hidden_states=hidden_states, **kwargs)


def swapped_model(low_name: str, high_name: str, device: str = "cpu"):
    """`low_name`'s model (card, VAE, text encoder) with its transformer replaced by a StageSwap.

    A shallow copy: the cached model that engine.models.load_model returns is left as it is."""
    from engine.models import load_model

    low = load_model(low_name, device=device)
    high = load_model(high_name, device=device)
    if (high.card.height, high.card.width) != (low.card.height, low.card.width):
        raise ValueError(f"{low_name} and {high_name} sample different sizes")
    pipe = copy.copy(low.pipe)
    pipe.transformer = StageSwap(low.transformer, high.transformer, low.card.width // VAE_SPATIAL_STRIDE)
    return dataclasses.replace(low, pipe=pipe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--low", default="pyramidal-wan-tiny", help="transformer of the lower stages")
    parser.add_argument("--high", default="wan-tiny", help="transformer of the full-resolution stage")
    parser.add_argument("--schedule", default="20-20-10")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    model = swapped_model(args.low, args.high)
    result = evaluate(model, args.schedule, default_prompts(args.n, args.seed), args.seed)
    result.update(low=args.low, high=args.high)
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
