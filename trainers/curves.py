"""Learning curves: ToyBench on a trainer's own EMA weights, in memory, every `eval_every` steps.

Recipes are compared by what the model draws, not by the loss: `toybench_evaluator(...)` returns the
`evaluate(step)` that `Run.train` calls on the EMA weights (trainers.common). It wraps the training
modules in an engine `WanModel` (no export, no reload), generates ToyBench's default prompt set
(`eval_n` prompts drawn with `eval_seed`, prompt i with seed eval_seed + i) at `eval_schedule`, and scores
it against real renders of the same captions, which are rendered once per run. The row it returns goes to
`out_dir/curves.csv`; `python -m bench.curves RUN_DIR ...` plots several runs on one figure. A contact sheet
of the first SHEET_VIDEOS videos is written to `out_dir/samples/step-NNNNNN.png`, to look at beside the
numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

from bench.probe import load_probe
from bench.toybench import default_prompts, generate_videos, reference_clips, score
from engine.models import ModelCard, WanModel
from trainers.common import TrainConfig
from world import parse
from world.preview import contact_sheet

CURVE_MEASURES = ("shape", "color", "background", "motion", "speed", "all")
SHEET_VIDEOS = 6


def curve_row(result: dict) -> dict[str, float]:
    """The flat learning-curve row of a ToyBench result: adherence per attribute (and on the held-out
    compositions), FD with its real-vs-real floor, temporal coherence, seconds per video."""
    coherence = result["coherence"]
    heldout = result.get("adherence_heldout") or {}
    return {
        **{k: result["adherence"][k] for k in CURVE_MEASURES},
        "all_heldout": heldout.get("all", float("nan")),
        "fd": result["fd"],
        "fd_floor": result["fd_floor"],
        "present_all_frames": coherence["present_all_frames"],
        "size_stable": coherence["size_stable"],
        "within_chunk_ratio": coherence["within_chunk_ratio"],
        "boundary_ratio": coherence["boundary_ratio"],
        "coherence": coherence["score"],
        "seconds_per_video": result["seconds_per_video"],
    }


def write_sheet(videos: list[torch.Tensor], prompts: list[str], path: Path) -> None:
    """Contact sheet of (3, F, H, W) videos in [−1, 1], one row per video with its prompt."""
    frames = [((v.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy() for v in videos]
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(frames, prompts[: len(frames)]).save(path)


def toybench_evaluator(
    cfg: TrainConfig,
    transformer: torch.nn.Module,
    text_encoder: torch.nn.Module,
    tokenizer,
    vae,
    card: ModelCard,
    train_tflops: Callable[[int], float],
    top_expert: torch.nn.Module | None = None,
) -> Callable[[int], dict[str, float]]:
    """evaluate(step) -> curve row (plus `train_tflops` at that step) for the given training modules.

    The modules are used as they are when called: `Run.evaluate_point` swaps the EMA weights in first.
    `top_expert`: the full-resolution stage's own transformer (the model then samples as a zoo variant with
    `transformer_2` does; `transformer` samples the lower stages)."""
    prompts = default_prompts(cfg.eval_n, cfg.eval_seed)
    probe = load_probe()
    reference = reference_clips(
        [parse(p) for p in prompts], cfg.eval_seed, card.frames, card.height, card.width
    )
    pipe = WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0),
        transformer=transformer,
        transformer_2=top_expert,
    )
    param = next(transformer.parameters())
    model = WanModel(
        name=getattr(cfg, "variant", "training"),
        pipe=pipe,
        card=card,
        device=param.device,
        dtype=param.dtype,
        shift=card.shift,
    )

    @torch.no_grad()
    def evaluate(step: int) -> dict[str, float]:
        generation = generate_videos(model, prompts, cfg.eval_schedule, cfg.eval_seed)
        row = curve_row(score(generation, prompts, cfg.eval_seed, probe, reference))
        write_sheet(
            generation.videos[:SHEET_VIDEOS], prompts, Path(cfg.out_dir) / f"samples/step-{step:06d}.png"
        )
        return {"train_tflops": train_tflops(step), **row}

    return evaluate
