"""Finetune a plain Wan transformer into a 3-stage spatio-temporal pyramid (DESIGN §6).

    python -m trainers.pyramidalize --max-minutes 20                          # wan-tiny → pyramidal-wan-tiny
    python -m trainers.pyramidalize definition=latent variant=pyramidal-wan-tiny-latent
    accelerate launch -m trainers.pyramidalize --config trainers/configs/wan2.1-1.3b.yaml   # real size
    python -m trainers.pyramidalize ... shards_dir=shards   # clips encoded once by trainers.prepare

For a sample at stage k with clean endpoint Y_k, the upsampled lower clean R↑(Y_{k−1}) and one noise
draw ε shared by both ends:
    E = (1−σ_end)·Y_k + σ_end·ε          B = (1−σ_start)·R↑(Y_{k−1}) + σ_start·ε   (B = ε at stage 0)
    x = (1−ρ)·E + ρ·B,  σ = (1−ρ)·σ_end + ρ·σ_start,  target (B − E)/(σ_start − σ_end)
σ_start of stage k ≥ 1 is the jump level of stage k−1's end — exactly where the sampler's renoising jump
lands, so training and inference see the same start points. Every step trains all stages, splitting the
batch by `stage_ratio`. The optional distillation term regresses onto the frozen original model's
velocity at the same input.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.flops import TERA, TransformerSize, forward_flops
from engine.flow import masked_text, pyramid_point, stage_clean, stage_kappa
from engine.models import ZOO_DIR, load_model
from engine.pyramid import stage_geometry
from engine.transitions import frame_common_shape, frame_shared, upsample
from engine.zoo import ModelRegistry
from trainers.attributes import DEFAULT_DIR as ATTRIBUTES_DIR
from trainers.attributes import load as load_attributes
from trainers.attributes import reads_stage, stage_caption_loss
from trainers.base import temporal_error
from trainers.common import Run, TrainConfig, parse_config
from trainers.curves import toybench_evaluator
from trainers.data import FolderClips, cached
from trainers.prepare import ShardClips
from trainers.zoo import export_variant, tiny_card, tokenize, velocity


@dataclasses.dataclass
class PyramidalizeConfig(TrainConfig):
    out_dir: str = "runs/pyramidal-wan-tiny"
    base_model: str = "wan-tiny"  # zoo name or a diffusers folder (e.g. Wan2.1-T2V-1.3B-Diffusers)
    variant: str = "pyramidal-wan-tiny"  # zoo variant to export ("" to skip the export)
    zoo_dir: str = str(ZOO_DIR)
    export_dir: str = ""  # real size: where to save the finetuned transformer instead
    definition: str = "pixel"  # low-resolution clean signal: "pixel" (default) or "latent"
    shared_noise: float = 0.0  # training noise with this share common to all latent frames (DESIGN §6b)
    data_dir: str = ""  # real size: folder of name.mp4 + name.txt; empty: the procedural latent cache
    shards_dir: str = ""  # real size: `python -m trainers.prepare` output (no VAE/text encoder per step)
    cache: str = "runs/cache/train-17x128x128.pt"
    cache_clips: int = 12000
    frames: int = 17
    height: int = 128
    width: int = 128
    num_stages: int = 3
    stage_ratio: tuple[int, ...] = (1, 2, 1)
    boundaries: tuple[float, ...] = ()  # the stages' nominal σ boundaries, 1 → 0; empty: the base card's
    distill_weight: float = 0.1
    batch_size: int = 32
    lr: float = 3e-4
    max_steps: int = 1200
    warmup_steps: int = 50
    num_threads: int = 1
    eval_schedule: str = "10-10-5"  # learning curve (eval_every > 0): pyramidal sampling, half length
    attribute_weight: float = 0.0  # > 0: + this × the latent attribute classifier's cross-entropy on the
    attribute_classifier: str = str(ATTRIBUTES_DIR)  # ... top two stages' clean estimates (procedural data)
    attribute_classifier_low: str = (
        ""  # + one trained on a lower stage's latents (`trainers.attributes stage=0`)
    )
    temporal_weight: float = 0.0  # > 0: + this × the stage clean estimate's error in frame-to-frame change


def split_batch(batch_size: int, ratio: tuple[int, ...]) -> list[int]:
    """Sub-batch sizes per stage proportional to ratio, each ≥ 1, summing to batch_size."""
    if batch_size < len(ratio):
        raise ValueError(f"batch_size must be at least the number of stages ({len(ratio)})")
    total, rest = sum(ratio), batch_size - len(ratio)
    shares = [rest * r / total for r in ratio]
    sizes = [1 + int(s) for s in shares]
    by_remainder = sorted(range(len(ratio)), key=lambda i: int(shares[i]) - shares[i])
    for i in by_remainder[: batch_size - sum(sizes)]:
        sizes[i] += 1
    return sizes


def data_step(step: int, rank: int, num_processes: int) -> int:
    """Which of the data source's (seed, step) batches a rank draws at a training step: with several
    processes each rank draws a different one (one process: the step itself), so an optimizer step
    averages num_processes × batch_size distinct draws."""
    return step * num_processes + rank


def pyramid_sample(
    y: list[torch.Tensor],
    k: int,
    geometry,
    generator: torch.Generator | None = None,
    shared_noise: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, σ, velocity target) for stage k from clean latents y (per stage, low → high), DESIGN §6;
    `shared_noise` > 0: the noise has that share common to all latent frames (DESIGN §6b)."""
    y_k = y[k]
    eps = torch.randn(y_k.shape, generator=generator).to(y_k)
    if shared_noise:
        common = torch.randn(frame_common_shape(y_k.shape), generator=generator).to(y_k)
        eps = frame_shared(eps, common, shared_noise)
    rho = torch.rand(y_k.shape[0], generator=generator).to(y_k)
    return pyramid_point(y, k, geometry, eps, rho)


def walked_ends(geometry, k: int) -> tuple[float, float]:
    """(σs, σe) stage k walks: from pure noise at stage 0, from its jump level above (DESIGN §3, §6)."""
    stage = geometry.stages[k]
    return (1.0 if k == 0 else stage.sigma_start), stage.sigma_end


def stage_clean_estimate(
    x: torch.Tensor, v: torch.Tensor, sigma: torch.Tensor, y: list[torch.Tensor], k: int, geometry
) -> torch.Tensor:
    """Stage k's clean estimate Ŷ_k at its own resolution (DESIGN §6a, U from the lower stage's clean
    latent as in training): what the attribute loss reads (through `stage_caption_loss`)."""
    lower = None if k == 0 else upsample(y[k - 1], temporal=geometry.stages[k - 1].temporal_halved)
    return stage_clean(x, v, lower, sigma.view(-1, 1, 1, 1, 1), *walked_ends(geometry, k))


def stage_temporal_error(
    v: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor, k: int, geometry
) -> torch.Tensor:
    """The base trainer's temporal term (`trainers.base.temporal_error`) for stage k's clean estimate:
    Ŷ(v) − Ŷ(target) = −(σ/κ)·(v − target) (DESIGN §6a), so the level is σ/κ, with κ = 1 at the first
    and the last stage and about 1.097 at the middle one."""
    return temporal_error(v, target, sigma / stage_kappa(*walked_ends(geometry, k)))


def main(argv: list[str] | None = None) -> Run:
    cfg = parse_config(PyramidalizeConfig, argv, __doc__.splitlines()[0])
    base_model = ModelRegistry(cfg.zoo_dir).locate(cfg.base_model)
    base = load_model(base_model, device="cpu", dtype="float32")
    boundaries = tuple(cfg.boundaries) or base.card.boundaries  # (None: equal thirds)
    geometry = stage_geometry(
        cfg.frames, cfg.height, cfg.width, cfg.num_stages, base.latent_channels, boundaries
    )
    if cfg.shards_dir:
        data = ShardClips(cfg.shards_dir, seed=cfg.seed)
        data.check(cfg.frames, cfg.height, cfg.width, cfg.num_stages, cfg.definition)
    elif cfg.data_dir:
        data = FolderClips(
            cfg.data_dir,
            base.vae,
            cfg.frames,
            cfg.height,
            cfg.width,
            cfg.num_stages,
            cfg.definition,
            seed=cfg.seed,
        )
    else:
        data = cached(
            base.vae,
            cfg.cache if cfg.definition == "pixel" else cfg.cache.replace(".pt", "-latent.pt"),
            clips=cfg.cache_clips,
            seed=cfg.seed,
            frames=cfg.frames,
            height=cfg.height,
            width=cfg.width,
            num_stages=cfg.num_stages,
            definition=cfg.definition,
        )
        data.seed = cfg.seed
    tokenizer, text_encoder = base.tokenizer, base.pipe.text_encoder.requires_grad_(False)
    teacher = base.transformer.requires_grad_(False).eval()
    student = copy.deepcopy(teacher).requires_grad_(True).train()
    run = Run(cfg, student)
    teacher.to(run.device)
    if not cfg.shards_dir:
        text_encoder.to(run.device)
    classifiers = []
    if cfg.attribute_weight:
        if cfg.shards_dir or cfg.data_dir:
            raise ValueError("attribute_weight needs the procedural data (its captions name the attributes)")
        paths = [cfg.attribute_classifier] + (
            [cfg.attribute_classifier_low] if cfg.attribute_classifier_low else []
        )
        classifiers = [load_attributes(p).to(run.device) for p in paths]
    sizes = split_batch(cfg.batch_size, tuple(cfg.stage_ratio))
    size = TransformerSize.from_config(dict(teacher.config), text_len=base.card.max_sequence_length)
    step_tflops = sum(n * forward_flops(s.tokens, size) for n, s in zip(sizes, geometry.stages)) / TERA
    step_tflops *= 3 + (1 if cfg.distill_weight else 0)  # forward + backward, plus the teacher's forward
    acc = run.accelerator
    gen = torch.Generator().manual_seed(cfg.seed + 1 + 1_000_003 * acc.process_index)

    def loss_fn(step: int):
        latents, texts = data.sample(data_step(step, acc.process_index, acc.num_processes), cfg.batch_size)
        if cfg.shards_dir:  # prepared: the caption states are read, not encoded
            text = texts.to(run.device)
        else:
            ids, mask = tokenize(tokenizer, texts, run.device)
            with torch.no_grad():
                text = masked_text(text_encoder(ids, mask).last_hidden_state, mask)
        losses, metrics, start = [], {}, 0
        for k, n in enumerate(sizes):
            rows = slice(start, start + n)
            start += n
            y = [lat[rows].to(run.device) for lat in latents[: k + 1]]
            x, sigma, target = pyramid_sample(y, k, geometry, gen, cfg.shared_noise)
            v = velocity(run.model, x, sigma.to(run.device), text[rows])
            loss_k = F.mse_loss(v.float(), target.float())
            metrics[f"stage{k}"] = float(loss_k.detach())
            if cfg.distill_weight:
                with torch.no_grad():
                    v_teacher = velocity(teacher, x, sigma.to(run.device), text[rows])
                dist = F.mse_loss(v.float(), v_teacher.float())
                metrics[f"distill{k}"] = float(dist.detach())
                loss_k = loss_k + cfg.distill_weight * dist
            if cfg.temporal_weight:
                temporal = stage_temporal_error(v, target, sigma.to(run.device), k, geometry)
                metrics[f"temporal{k}"] = float(temporal.detach())
                loss_k = loss_k + cfg.temporal_weight * temporal
            # the stages a classifier can read (stage_caption_loss says which)
            readers = [c for c in classifiers if reads_stage(c, k, geometry)]
            if readers:
                y_hat = stage_clean_estimate(x, v, sigma.to(run.device), y, k, geometry)
                terms = [stage_caption_loss(c, y_hat, k, geometry, texts[rows]) for c in readers]
                terms = [t for t in terms if t is not None]
                extra = sum(terms) if terms else None
                if extra is not None:
                    loss_k = loss_k + cfg.attribute_weight * extra
                metrics[f"attribute_ce{k}"] = math.nan if extra is None else float(extra.detach())
            losses.append(n * loss_k)
        # clips in this optimizer step over all processes (each rank draws its own batch_size)
        metrics["clips"] = float(acc.gather(torch.tensor([len(texts)], device=run.device)).sum())
        metrics["train_tflops"] = step_tflops * (step + 1) * acc.num_processes
        return sum(losses) / cfg.batch_size, metrics

    card = tiny_card(
        description=f"{cfg.variant}: {cfg.base_model} finetuned into a 3-stage pyramid "
        f"({cfg.definition} low-resolution targets)",
        pyramidal=True,
        schedule="20-20-10",
        boundaries=geometry.boundaries,
        frames=cfg.frames,
        height=cfg.height,
        width=cfg.width,
        shared_noise=base.card.shared_noise,  # samples as its base does (DESIGN §6b)
    )
    evaluate = None
    if cfg.eval_every:
        evaluate = toybench_evaluator(
            cfg,
            run.accelerator.unwrap_model(run.model),
            text_encoder,
            tokenizer,
            base.vae,
            card,
            lambda step: step_tflops * step,
        )
    run.train(loss_fn, evaluate)
    if not run.accelerator.is_main_process:
        return run
    with run.ema_weights() as ema:
        if cfg.export_dir:
            Path(cfg.export_dir).mkdir(parents=True, exist_ok=True)
            ema.save_pretrained(Path(cfg.export_dir) / "transformer")
            print(f"saved {cfg.export_dir}/transformer")
        if cfg.variant:
            print(f"exported {export_variant(cfg.variant, ema, card, Path(cfg.zoo_dir))}")
    return run


if __name__ == "__main__":
    main()
