"""How much of a sampling run is *not* transformer forwards (the pyramid machinery's overhead).

    python -m bench.engine_overhead [--model random-tiny] [--schedule 20-20-10] [--repeats 5]

Times the transformer's forward calls with hooks and reports, over repeated runs after one warm-up,
the share of sampling wall time spent outside them (noise draws, jumps, Euler updates, CFG mixing,
events). Decoding and prompt encoding are outside the sampler and not counted.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from engine.models import load_model
from engine.pipeline import make_request
from engine.sampling import cfg_denoiser, sample
from engine.schedule import schedule_sigmas


def measure(model_name: str, schedule: str, repeats: int, seed: int = 0) -> dict:
    model = load_model(model_name, device="cpu")
    prompt = "a red circle moving left on a black background"
    request = make_request(model, prompt, schedule=schedule, seed=seed)
    sigmas = schedule_sigmas(request.geometry, request.counts, request.shift)
    cond, uncond = model.encode_prompt([request.prompt], [request.negative_prompt])
    forward_time = [0.0]
    started = [0.0]

    def pre(module, args, kwargs):
        started[0] = time.perf_counter()

    def post(module, args, kwargs, output):
        forward_time[0] += time.perf_counter() - started[0]

    h1 = model.transformer.register_forward_pre_hook(pre, with_kwargs=True)
    h2 = model.transformer.register_forward_hook(post, with_kwargs=True)
    runs = []
    try:
        for i in range(repeats + 1):
            forward_time[0] = 0.0
            den = cfg_denoiser(model.transformer, cond, uncond, request.guidance)
            gen = torch.Generator().manual_seed(seed)
            t0 = time.perf_counter()
            for _ in sample(den, request.geometry, sigmas, gen):
                pass
            total = time.perf_counter() - t0
            if i:  # the first run warms up allocators and kernels
                runs.append((total, forward_time[0]))
    finally:
        h1.remove()
        h2.remove()
    total = sum(r[0] for r in runs) / len(runs)
    fwd = sum(r[1] for r in runs) / len(runs)
    return {
        "model": model.name,
        "schedule": request.schedule,
        "repeats": repeats,
        "sampling_seconds": round(total, 4),
        "forward_seconds": round(fwd, 4),
        "overhead_share": round((total - fwd) / total, 4),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="random-tiny")
    p.add_argument("--schedule", default="20-20-10")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    print(json.dumps(measure(args.model, args.schedule, args.repeats)))


if __name__ == "__main__":
    main()
