"""A small video autoencoder with Wan's compression and the `AutoencoderKLWan` interface.

diffusers' `AutoencoderKLWan` at toy width still costs seconds per training step of a few 128×128 clips
on a 2-core CPU (shared/CPU-TRAINING-NOTES.md), so the embedded zoo uses this one instead. It keeps what
the rest of the system relies on:
- strides 4 in time (causal: the first frame stands alone) and 8 in space, 16 latent channels, so
  F×H×W video ↔ 16×((F−1)/4+1)×H/8×W/8 latents — a stage's latent decodes at its own resolution;
- `encode(x).latent_dist.mode()`, `decode(z).sample`, `config.z_dim`, `config.latents_mean/std`,
  `save_pretrained`/`from_pretrained` (ModelMixin + ConfigMixin) — the engine loads it like Wan's VAE.

Each latent frame encodes one chunk of 4 frames (the first chunk is frame 0 repeated) with a 2D
convolutional network over the stacked frames; no information crosses chunks in the encoder, which keeps
it fast and lets any temporal length decode. The decoder may look at `decoder_context` neighbouring latent
frames on either side (0 in the first zoo VAE, whose chunks then play as 4 near-identical frames).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

TEMPORAL = 4


class _ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.silu(self.conv1(F.silu(x))))


class TinyWanVAE(ModelMixin, ConfigMixin):
    """Video (B, 3, 4k+1, H, W) in [−1, 1] ↔ latents (B, z_dim, k+1, H/8, W/8)."""

    @register_to_config
    def __init__(
        self,
        z_dim: int = 16,
        channels: tuple[int, int, int] = (24, 128, 160),
        blocks: int = 1,
        latents_mean: list[float] | None = None,
        latents_std: list[float] | None = None,
        scale_factor_temporal: int = 4,
        scale_factor_spatial: int = 8,
        decoder_channels: tuple[int, int, int] | None = None,
        decoder_blocks: int | None = None,
        decoder_context: int = 0,
    ):
        super().__init__()
        if latents_mean is None:
            self.register_to_config(latents_mean=[0.0] * z_dim)
        if latents_std is None:
            self.register_to_config(latents_std=[1.0] * z_dim)
        c0, c1, c2 = channels
        chunk = 3 * TEMPORAL  # 4 frames × RGB
        self.encoder = nn.Sequential(
            nn.Conv2d(chunk * 16, c1, 3, padding=1),  # after pixel-unshuffle by 4
            *[_ResBlock(c1) for _ in range(blocks)],
            nn.Conv2d(c1, c2, 4, stride=2, padding=1),
            *[_ResBlock(c2) for _ in range(blocks)],
            nn.SiLU(),
            nn.Conv2d(c2, z_dim, 3, padding=1),
        )
        # the decoder may be lighter than the encoder (a faster decoder trained on the frozen encoder)
        c0, c1, c2 = decoder_channels or channels
        dec_blocks = blocks + 1 if decoder_blocks is None else decoder_blocks
        # decoder_context = k: each latent frame is decoded with its k neighbours on either side (edge
        # frames repeated), so the 4 frames of a chunk can follow the motion between chunks
        self.decoder = nn.Sequential(
            nn.Conv2d(z_dim * (2 * decoder_context + 1), c2, 3, padding=1),
            *[_ResBlock(c2) for _ in range(dec_blocks)],
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(c2, c1, 3, padding=1),
            *[_ResBlock(c1) for _ in range(dec_blocks)],
            nn.SiLU(),
            nn.Conv2d(c1, chunk * 16, 3, padding=1),  # then pixel-shuffle by 4
        )
        # a light full-resolution refinement sharpens edges the sub-pixel layout leaves blocky
        self.refine = nn.Sequential(
            nn.Conv2d(chunk, c0, 3, padding=1), nn.SiLU(), nn.Conv2d(c0, chunk, 3, padding=1)
        )

    @staticmethod
    def _chunks(video: torch.Tensor) -> torch.Tensor:
        """(B, 3, 4k+1, H, W) → (B·(k+1), 12, H, W): frame 0 repeated 4×, then groups of 4 frames."""
        b, c, f, h, w = video.shape
        if (f - 1) % TEMPORAL:
            raise ValueError(f"frames must be 4k+1 for the VAE, got {f}")
        first = video[:, :, :1].expand(b, c, TEMPORAL, h, w)
        video = torch.cat([first, video[:, :, 1:]], dim=2)  # (B, 3, 4(k+1), H, W)
        t = video.shape[2] // TEMPORAL
        video = video.reshape(b, c, t, TEMPORAL, h, w).permute(0, 2, 1, 3, 4, 5)
        return video.reshape(b * t, c * TEMPORAL, h, w)

    def _encode(self, video: torch.Tensor) -> torch.Tensor:
        b, _, f, h, w = video.shape
        if h % 8 or w % 8:
            raise ValueError(f"height and width must be multiples of 8 for the VAE, got {h}×{w}")
        x = F.pixel_unshuffle(self._chunks(video), 4)
        z = self.encoder(x)
        t = z.shape[0] // b
        return z.reshape(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)

    def encode(self, x: torch.Tensor, return_dict: bool = True):
        """Video → posterior (a near-deterministic Gaussian; use `.latent_dist.mode()`)."""
        mean = self._encode(x)
        logvar = torch.full_like(mean, -30.0)
        dist = DiagonalGaussianDistribution(torch.cat([mean, logvar], dim=1))
        return AutoencoderKLOutput(latent_dist=dist) if return_dict else (dist,)

    def decode(self, z: torch.Tensor, return_dict: bool = True):
        """Latents (B, z_dim, T, h, w) → video (B, 3, 4(T−1)+1, 8h, 8w), unclamped."""
        b, c, t, h, w = z.shape
        k = self.config.decoder_context
        if k:  # (B, C, T, h, w) → (B, (2k+1)·C, T, h, w): latent frames t−k … t+k stacked on channels
            padded = torch.cat(
                [z[:, :, :1].expand(-1, -1, k, -1, -1), z, z[:, :, -1:].expand(-1, -1, k, -1, -1)], 2
            )
            z = torch.cat([padded[:, :, i : i + t] for i in range(2 * k + 1)], 1)
        x = self.decoder(z.permute(0, 2, 1, 3, 4).reshape(b * t, z.shape[1], h, w))
        x = F.pixel_shuffle(x, 4)  # (B·T, 12, H, W)
        x = x + self.refine(x)
        x = x.reshape(b, t, 3, TEMPORAL, x.shape[-2], x.shape[-1]).permute(0, 2, 1, 3, 4, 5)
        first = x[:, :, 0].mean(dim=2, keepdim=True)  # chunk 0 holds frame 0 four times
        rest = x[:, :, 1:].reshape(b, 3, (t - 1) * TEMPORAL, x.shape[-2], x.shape[-1])
        video = torch.cat([first, rest], dim=2)
        return DecoderOutput(sample=video) if return_dict else (video,)

    def forward(self, video: torch.Tensor, latent_noise: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: (reconstruction, latents); latents get noise of latent_noise × their std."""
        z = self._encode(video)
        noisy = z + latent_noise * z.detach().std() * torch.randn_like(z) if latent_noise else z
        return self.decode(noisy).sample, z


# --- Measuring a VAE (trainers.vae at export, bench.vae) -------------------------------------------------

HELD_OUT_SEED = 10_000_019  # the procedural world's clips VAEs are measured on (training uses other seeds)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of videos in [−1, 1] (peak-to-peak 2); `a` is clamped to that range first."""
    mse = F.mse_loss(a.clamp(-1, 1), b).item()
    return float(10 * torch.log10(torch.tensor(4.0 / max(mse, 1e-12))))


@torch.no_grad()
def measure_vae(vae, videos: torch.Tensor, chunk: int = 8) -> dict:
    """Reconstruction PSNR of videos (B, 3, F, H, W) in [−1, 1] through the posterior mean (the mean of
    per-chunk PSNRs), and the per-channel statistics of those latents."""
    vae.eval()
    latents, scores = [], []
    for video in videos.split(chunk):
        z = vae.encode(video).latent_dist.mode()
        latents.append(z)
        scores.append(psnr(vae.decode(z).sample, video))
    z = torch.cat(latents)
    return {
        "psnr_db": sum(scores) / len(scores),
        "clips": len(videos),
        "latents_mean": z.mean(dim=(0, 2, 3, 4)).tolist(),
        "latents_std": z.std(dim=(0, 2, 3, 4)).tolist(),
    }
