"""Train the zoo's video autoencoder (engine.tiny_vae.TinyWanVAE) on the procedural world.

    python -m trainers.vae --max-minutes 40            # CPU; rerun the same command to resume
    accelerate launch -m trainers.vae batch_size=64    # GPUs

Each step renders fresh clips, takes random crops (the network is convolutional and every 4-frame
chunk is encoded on its own, so crops are cheap, varied samples) and minimises an L1 + MSE loss whose
weight is raised on edges (CPU notes: shapes are lost first; weighting object pixels broke a plateau).
Small Gaussian noise on the latents makes the decoder forgiving of slightly-off diffusion samples.
At the end the EMA weights are exported with measured per-channel `latents_mean/latents_std`, and the
held-out PSNR on full-size clips is written to `<out_dir>/eval.json`.

Decoder only: `init_from=assets/zoo/shared/vae` freezes that VAE's encoder (and keeps its latent
statistics, so every transformer trained on its latents stays valid) and trains a decoder of
`decoder_channels`/`decoder_blocks` against the real clips — a lighter, faster decoder, or, with the
same sizes, a longer finetune of the existing one. With a larger `decoder_context` (latent frames on
either side the decoder sees) and the same sizes, the finetune starts from the existing decoder exactly
(the neighbours' input weights start at zero) and learns to move objects inside each 4-frame chunk.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from engine.tiny_vae import HELD_OUT_SEED, TinyWanVAE, measure_vae, psnr
from trainers.common import Run, TrainConfig, parse_config
from world.dataset import make_batch


@dataclasses.dataclass
class VAEConfig(TrainConfig):
    out_dir: str = "runs/vae"
    export_dir: str = "assets/zoo/shared/vae"
    frames: int = 17
    height: int = 128
    width: int = 128
    crop: int = 64
    batch_size: int = 12  # clips per step; each gives (frames−1)/4+1 chunks
    lr: float = 2e-3
    max_steps: int = 4000
    warmup_steps: int = 50
    channels: tuple[int, int, int] = (16, 96, 128)
    decoder_channels: tuple[int, ...] = ()  # () = the same widths as the encoder's `channels`
    decoder_blocks: int = 2
    decoder_context: int = 0  # latent frames on either side the decoder sees (engine.tiny_vae)
    init_from: str = ""  # a VAE folder: train only a decoder on its frozen encoder
    edge_weight: float = 8.0
    latent_noise: float = 0.05
    latent_l2: float = 1e-4
    eval_clips: int = 64
    num_threads: int = 1


EVAL_SEED = HELD_OUT_SEED  # held-out clips for the PSNR at export (training clips use other seeds)


def edge_weights(video: torch.Tensor, strength: float) -> torch.Tensor:
    """1 + strength where the frame has an edge (largest RGB step to a neighbour > 0.1)."""
    dx = (video[..., :, 1:] - video[..., :, :-1]).abs().amax(1, keepdim=True)
    dy = (video[..., 1:, :] - video[..., :-1, :]).abs().amax(1, keepdim=True)
    edge = torch.zeros_like(video[:, :1])
    edge[..., :, 1:] += dx
    edge[..., :, :-1] += dx
    edge[..., 1:, :] += dy
    edge[..., :-1, :] += dy
    return 1.0 + strength * (edge > 0.1).float()


def random_crops(video: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """(B, 3, F, H, W) → (B, 3, F, size, size), one crop position per clip, on the VAE's 8-pixel grid."""
    b, _, _, h, w = video.shape
    if size >= h and size >= w:
        return video
    ys = torch.randint(0, (h - size) // 8 + 1, (b,), generator=generator) * 8
    xs = torch.randint(0, (w - size) // 8 + 1, (b,), generator=generator) * 8
    return torch.stack(
        [v[..., y : y + size, x : x + size] for v, y, x in zip(video, ys.tolist(), xs.tolist())]
    )


def build_vae(cfg: VAEConfig) -> TinyWanVAE:
    """A fresh VAE of the config's sizes, or (init_from) one whose encoder and latent statistics come
    from an existing VAE and are frozen; its decoder is copied too when the sizes match."""
    sizes = dict(
        decoder_channels=tuple(cfg.decoder_channels) or None,
        decoder_blocks=cfg.decoder_blocks,
        decoder_context=cfg.decoder_context,
    )
    if not cfg.init_from:
        return TinyWanVAE(channels=tuple(cfg.channels), **sizes)
    source = TinyWanVAE.from_pretrained(cfg.init_from, torch_dtype=torch.float32)
    # same encoder sizes and latent statistics; diffusers would reset the sizes a source config lacks
    config = {k: v for k, v in source.config.items() if k != "_use_default_values"}
    vae = TinyWanVAE.from_config({**config, **sizes})
    state, own = source.state_dict(), vae.state_dict()
    widened = widen_first_decoder_conv(
        state, own, source.config.get("decoder_context", 0), cfg.decoder_context
    )
    same_decoder = own.keys() == widened.keys() and all(own[k].shape == widened[k].shape for k in own)
    keep = widened if same_decoder else {k: v for k, v in state.items() if k.startswith("encoder.")}
    vae.load_state_dict(keep, strict=same_decoder)
    vae.encoder.requires_grad_(False)
    return vae


def widen_first_decoder_conv(state: dict, own: dict, old_context: int, new_context: int) -> dict:
    """A source decoder moved to a wider temporal context: its first convolution's weights go to the
    centre frame's input channels and the neighbours' start at zero, so the new decoder starts out
    decoding exactly as the source does and learns from there what the neighbours add."""
    key = "decoder.0.weight"
    if new_context <= old_context or key not in state or state[key].shape[2:] != own[key].shape[2:]:
        return state
    z_dim = state[key].shape[1] // (2 * old_context + 1)
    weight = torch.zeros_like(own[key])
    offset = (new_context - old_context) * z_dim
    weight[:, offset : offset + state[key].shape[1]] = state[key]
    return {**state, key: weight}


def measure(vae: TinyWanVAE, cfg: VAEConfig, seed: int, split: str = "all") -> dict:
    """Held-out PSNR on full-size clips and per-channel latent statistics (engine.tiny_vae.measure_vae)."""
    return measure_vae(
        vae, make_batch(seed, cfg.eval_clips, cfg.frames, cfg.height, cfg.width, split=split).videos
    )


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(VAEConfig, argv, __doc__.splitlines()[0])
    vae = build_vae(cfg)
    run = Run(cfg, vae)
    crop_gen = torch.Generator().manual_seed(cfg.seed)

    def loss_fn(step: int):
        video = make_batch(
            cfg.seed * 1_000_003 + step, cfg.batch_size, cfg.frames, cfg.height, cfg.width
        ).videos
        video = random_crops(video, cfg.crop, crop_gen).to(run.device)
        recon, z = run.model(video, cfg.latent_noise)
        w = edge_weights(video, cfg.edge_weight)
        err = recon - video
        loss = (w * (err.abs() + err.pow(2))).mean() / w.mean() + cfg.latent_l2 * z.pow(2).mean()
        return loss, {"psnr": psnr(recon.detach(), video)}

    run.train(loss_fn)
    with run.ema_weights() as ema_vae:
        stats = measure(ema_vae, cfg, seed=EVAL_SEED)
        if not cfg.init_from:  # a frozen encoder keeps the statistics its latents were trained with
            ema_vae.register_to_config(latents_mean=stats["latents_mean"], latents_std=stats["latents_std"])
        if run.accelerator.is_main_process:
            Path(cfg.export_dir).mkdir(parents=True, exist_ok=True)
            ema_vae.to(torch.float16).save_pretrained(cfg.export_dir)
            ema_vae.to(torch.float32)
            eval_row = {"step": run.step, "psnr_db": stats["psnr_db"], "clips": stats["clips"]}
            (Path(cfg.out_dir) / "eval.json").write_text(json.dumps(eval_row, indent=2))
            print(json.dumps(eval_row))


if __name__ == "__main__":
    main()
