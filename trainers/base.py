"""Train wan-tiny: a toy-size Wan transformer and its text encoder, plain flow matching at full resolution.

    python -m trainers.base --max-minutes 90          # CPU; rerun the same command to resume
    accelerate launch -m trainers.base batch_size=128  # GPUs

Our stand-in for pretrained Wan2.1: rectified flow (x_σ = (1−σ)·x0 + σ·ε, target v = ε − x0,
t = 1000·σ, σ logit-normal), 10% caption dropout so classifier-free guidance works, EMA weights.
Needs the VAE (trainers.vae) first: clips are rendered once and encoded into an in-memory latent cache.
Exports assets/zoo/wan-tiny/ and the shared text encoder + tokenizer.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import torch

from engine.flops import TERA, TransformerSize, forward_flops
from engine.flow import PLAIN_BASELINE, clean_estimate, logit_normal, noisy, velocity_target
from engine.models import ZOO_DIR, load_model
from engine.pyramid import stage_geometry
from engine.transitions import frame_common_shape, frame_shared
from trainers.align import Alignment
from trainers.attributes import DEFAULT_DIR as ATTRIBUTES_DIR
from trainers.attributes import caption_loss
from trainers.attributes import load as load_attributes
from trainers.common import Run, TrainConfig, parse_config
from trainers.curves import toybench_evaluator
from trainers.data import cached
from trainers.zoo import (
    MAX_TEXT_LEN,
    TextToVelocity,
    export_shared,
    export_variant,
    load_vae,
    tiny_card,
    tiny_text_encoder,
    tiny_tokenizer,
    tiny_transformer,
    tokenize,
)


@dataclasses.dataclass
class BaseConfig(TrainConfig):
    out_dir: str = "runs/wan-tiny"
    variant: str = "wan-tiny"
    zoo_dir: str = str(ZOO_DIR)  # variants are exported to zoo_dir/<variant>, shared parts to zoo_dir/shared
    cache: str = "runs/cache/train-17x128x128.pt"
    cache_clips: int = 12000
    cache_workers: int = 1  # processes that build a missing cache (≈ 20 min for 12,000 clips in one)
    frames: int = 17
    height: int = 128
    width: int = 128
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.01
    max_steps: int = 6000
    warmup_steps: int = 200
    caption_dropout: float = 0.1
    num_threads: int = 1
    object_weight: float = 0.0  # > 0: latent pixels of objects weigh 1 + object_weight in the loss
    sigma_shift: float = 1.0  # training σ: logit-normal with this timestep shift; > 1: more high noise
    single_object_steps: int = 0  # the first this many steps draw only one-object clips
    init_from: str = ""  # start from a model's weights (zoo name or folder): transformer + text encoder
    train_text_encoder: bool = True  # False (with init_from): the text encoder stays as it is, so the zoo's
    # other variants, which share it, stay consistent with the continued base
    num_layers: int = 4  # transformer size (trainers.zoo.TINY_TRANSFORMER's defaults; ignored with init_from)
    num_heads: int = 4  # attention heads of 32 channels each: width = 32 · num_heads
    ffn_dim: int = 512
    low_res_steps: int = 0  # the first this many steps train on the stage-1 clips (9×64×64, 48 tokens)
    low_res_share: float = 0.0  # ... and after them this share of the steps still does (keeps the skill)
    low_res_batch: int = 64  # batch size of a low-resolution step (a sample costs ~1/6 of a full one)
    attribute_weight: float = 0.0  # > 0: + this × the latent attribute classifier's cross-entropy on x0
    attribute_classifier: str = str(ATTRIBUTES_DIR)  # ... (trainers.attributes; full-resolution steps only)
    align_weight: float = 0.0  # > 0: + this × REPA alignment of block align_depth's tokens (trainers.align)
    align_depth: int = 2  # ... with attribute_classifier's features of the clean clip at full resolution,
    align_classifier_low: str = ""  # ... and with this classifier's (trained with stage=1) at low resolution
    temporal_weight: float = 0.0  # > 0: + this × the clean estimate's error in frame-to-frame change
    shared_noise: float = 0.0  # training noise with this share of its variance common to all latent frames
    card_shared_noise: float = 0.0  # the exported card's sampling default (engine.sampling, DESIGN §6b)
    card_guidance: float = 3.0  # the exported card's classifier-free guidance scale


def is_low_res(cfg: BaseConfig, step: int) -> bool:
    """Whether `step` trains on the low-resolution clips: every step before low_res_steps, then one step in
    every 1/low_res_share (deterministic, so that the compute up to any step is known)."""
    return low_res_count(cfg, step + 1) > low_res_count(cfg, step)


def low_res_count(cfg: BaseConfig, steps: int) -> int:
    """How many of the first `steps` steps are low-resolution ones."""
    head = min(steps, cfg.low_res_steps)
    return head + math.floor(max(0, steps - cfg.low_res_steps) * cfg.low_res_share)


def object_mask(x0: torch.Tensor, threshold: float = 1.5) -> torch.Tensor:
    """(B, 1, T, H, W) 1 where a clean normalised latent differs from its row's background (the median
    along the width: backgrounds are plain or vertical gradients, and an object covers part of a row)."""
    background = x0.median(dim=-1, keepdim=True).values
    return ((x0 - background).norm(dim=1, keepdim=True) > threshold).to(x0.dtype)


def frame_shared_noise(x0: torch.Tensor, share: float) -> torch.Tensor:
    """Unit Gaussian noise shaped like x0 (B, C, T, H, W) whose share `share` of the variance is one draw
    common to every latent frame: the prior that engine.sampling's `shared_noise` samples from
    (PYoCo's mixed noise). share = 0: independent frames, as Wan trains."""
    eps = torch.randn_like(x0)
    if share == 0:
        return eps
    common = torch.randn(frame_common_shape(x0.shape), device=x0.device, dtype=x0.dtype)
    return frame_shared(eps, common, share)


def temporal_error(v: torch.Tensor, target: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mean square of the clean estimate's error in its change from one latent frame to the next.

    x0_hat − x0 = −σ·(v − target), so this is σ²·|Δ_t (v − target)|²: an error shared by every frame
    (the object drawn in the wrong place throughout) costs nothing extra, one that differs between frames
    (the object jumping or vanishing) costs up to four times its plain square. The conditional mean still
    minimises it with the flow-matching loss; it moves a small model's capacity toward frame-consistent
    estimates, weighted toward high noise, where sampling decides the layout. `sigma` is (B,)."""
    err = sigma.view(-1, 1, 1, 1, 1) * (v.float() - target.float())
    return err.diff(dim=2).pow(2).mean()


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(BaseConfig, argv, __doc__.splitlines()[0])
    zoo = Path(cfg.zoo_dir)
    vae = load_vae(zoo / "shared")
    data = cached(
        vae,
        cfg.cache,
        clips=cfg.cache_clips,
        seed=cfg.seed,
        frames=cfg.frames,
        height=cfg.height,
        width=cfg.width,
        workers=cfg.cache_workers,
    )
    data.caption_dropout, data.seed = cfg.caption_dropout, cfg.seed
    tokenizer = tiny_tokenizer()
    if cfg.init_from:  # a fresh optimizer on exported weights (a run's own state/ resumes everything)
        start = load_model(cfg.init_from, device="cpu", dtype="float32")
        model = TextToVelocity(copy.deepcopy(start.transformer), copy.deepcopy(start.pipe.text_encoder))
        model.train().requires_grad_(True)
        model.text_encoder.requires_grad_(cfg.train_text_encoder)
    else:
        transformer = tiny_transformer(
            num_layers=cfg.num_layers, num_attention_heads=cfg.num_heads, ffn_dim=cfg.ffn_dim
        )
        model = TextToVelocity(transformer, tiny_text_encoder(len(tokenizer)))
    size = TransformerSize.from_config(dict(model.transformer.config), text_len=MAX_TEXT_LEN)
    classifier = None
    if cfg.attribute_weight or cfg.align_weight:
        classifier = load_attributes(cfg.attribute_classifier)
    if cfg.align_weight:  # trained with the model (so in its optimizer and checkpoints), never exported
        encoders = {"full": classifier}
        if cfg.align_classifier_low:
            encoders["low"] = load_attributes(cfg.align_classifier_low)
        model.align = Alignment(size.dim, encoders)
        model.align.capture(model.transformer, cfg.align_depth)
    run = Run(cfg, model)
    vae.to(run.device)  # the learning curve decodes with it (the cache was built on the CPU)
    geometry = stage_geometry(cfg.frames, cfg.height, cfg.width)
    # forward + backward ≈ 3 forwards, per step at full and at low resolution (the stage below full)
    full_tflops = 3 * cfg.batch_size * forward_flops(geometry.full.tokens, size) / TERA
    low_tflops = 3 * cfg.low_res_batch * forward_flops(geometry.stages[-2].tokens, size) / TERA

    def tflops_until(steps: int) -> float:
        low = low_res_count(cfg, steps)
        return low * low_tflops + (steps - low) * full_tflops

    single = data.single_object()
    card = tiny_card(
        description="wan-tiny: toy Wan2.1 trained here on the procedural world, plain sampling",
        pyramidal=False,
        schedule=PLAIN_BASELINE,
        frames=cfg.frames,
        height=cfg.height,
        width=cfg.width,
        shared_noise=cfg.card_shared_noise,
        guidance=cfg.card_guidance,
    )

    if classifier is not None:
        classifier.to(run.device)
    align = run.accelerator.unwrap_model(run.model).align if cfg.align_weight else None
    if align is not None:
        for encoder in align.encoders.values():
            encoder.to(run.device)

    def loss_fn(step: int):
        low = is_low_res(cfg, step)
        pool = single if step < cfg.single_object_steps else None
        latents, captions = data.sample(step, cfg.low_res_batch if low else cfg.batch_size, pool)
        x0 = latents[-2 if low else -1].to(run.device)
        eps = frame_shared_noise(x0, cfg.shared_noise)
        sigma = logit_normal(x0.shape[0], shift=cfg.sigma_shift).to(run.device)
        x = noisy(x0, eps, sigma.view(-1, 1, 1, 1, 1))
        ids, mask = tokenize(tokenizer, captions, run.device)
        v = run.model(x, sigma, ids, mask)
        target = velocity_target(x0, eps)
        err = (v.float() - target.float()).pow(2)
        if cfg.object_weight:
            w = 1.0 + cfg.object_weight * object_mask(x0.float())
            loss = (w * err).mean() / w.mean()
        else:
            loss = err.mean()
        metrics = {"train_tflops": tflops_until(step + 1), "low_res": float(low)}
        if cfg.temporal_weight:
            temporal = temporal_error(v, target, sigma)
            loss = loss + cfg.temporal_weight * temporal
            metrics["temporal"] = float(temporal.detach())
        if align is not None:  # NaN where not measured, as below
            key = "low" if low else "full"
            aligned = align.loss(key, x0) if key in align.encoders else None
            if aligned is not None:
                loss = loss + cfg.align_weight * aligned
            metrics["align"] = math.nan if aligned is None else float(aligned.detach())
        if cfg.attribute_weight:  # full-resolution steps only (NaN: not measured, see Run.train)
            x0_hat = None if low else clean_estimate(x, v, sigma.view(-1, 1, 1, 1, 1))
            extra = None if x0_hat is None else caption_loss(classifier, x0_hat, captions)
            if extra is not None:
                loss = loss + cfg.attribute_weight * extra
            metrics["attribute_ce"] = math.nan if extra is None else float(extra.detach())
        return loss, metrics

    evaluate = None
    if cfg.eval_every:
        inner = run.accelerator.unwrap_model(run.model)
        evaluate = toybench_evaluator(
            cfg, inner.transformer, inner.text_encoder, tokenizer, vae, card, tflops_until
        )
    run.train(loss_fn, evaluate)
    if run.accelerator.is_main_process:
        with run.ema_weights() as ema:
            export_shared(tokenizer, ema.text_encoder, zoo / "shared")
            print(f"exported {export_variant(cfg.variant, ema.transformer, card, zoo)}")


if __name__ == "__main__":
    main()
