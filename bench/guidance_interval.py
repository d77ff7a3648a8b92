"""ToyBench with classifier-free guidance only inside a noise interval: a sampling experiment.

    python -m bench.guidance_interval --max-sigma 0.9 --model wan-tiny --schedule 0-0-50 --n 64 --json

Kynkäänniemi et al. (2024) apply guidance only in the middle of the noise range: at high noise it pushes
every sample toward the prompt's average layout, at low noise it adds little. Here the question was
whether guidance at high noise draws wan-tiny's spurious copies of the object. Inside [--min-sigma,
--max-sigma] the sampler uses the card's guidance (or --guidance); outside it the conditional velocity
alone (one pass, so those steps cost half). Every other argument is bench.toybench's.

The engine does not offer this: it did not pay on the tiny zoo (trainers/README.md, "Thirteenth
session"). This module swaps engine.pipeline's denoiser factory for the duration of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

import engine.pipeline
from engine.sampling import Denoiser, cfg_denoiser


def interval_denoiser(min_sigma: float, max_sigma: float):
    """A factory like engine.sampling.cfg_denoiser whose guidance acts only for σ in [min, max]."""

    def factory(transformer, cond, uncond, guidance: float) -> Denoiser:
        guided = cfg_denoiser(transformer, cond, uncond, guidance)
        plain = cfg_denoiser(transformer, cond, None, 1.0)

        def denoise(x, sigma: float, stage: int):
            return (guided if min_sigma <= sigma <= max_sigma else plain)(x, sigma, stage)

        denoise.invariants = guided.invariants
        return denoise

    return factory


def interval_problem(min_sigma: float, max_sigma: float) -> str:
    """Why [min_sigma, max_sigma] is not a noise interval, or "" when it is."""
    if 0.0 <= min_sigma <= max_sigma <= 1.0:
        return ""
    return f"need 0 <= min sigma <= max sigma <= 1, got {min_sigma:g} and {max_sigma:g}"


@contextlib.contextmanager
def guidance_interval(min_sigma: float, max_sigma: float) -> Iterator[None]:
    """engine.pipeline.run samples with guidance only for σ in [min_sigma, max_sigma] inside this block."""
    problem = interval_problem(min_sigma, max_sigma)
    if problem:
        raise ValueError(problem)
    saved = engine.pipeline.cfg_denoiser
    engine.pipeline.cfg_denoiser = interval_denoiser(min_sigma, max_sigma)
    try:
        yield
    finally:
        engine.pipeline.cfg_denoiser = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Other arguments go to bench.toybench."
    )
    parser.add_argument("--min-sigma", type=float, default=0.0)
    parser.add_argument("--max-sigma", type=float, default=1.0)
    args, rest = parser.parse_known_args(argv)
    from bench import toybench

    problem = interval_problem(args.min_sigma, args.max_sigma)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    with guidance_interval(args.min_sigma, args.max_sigma):
        return toybench.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
