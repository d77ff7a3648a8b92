"""Memory modes for inference and an estimate of a request's peak device memory (issue 15).

Modes (all diffusers/accelerate machinery, applied by `engine.models.load_model`):
- `offload="model"`: accelerate's whole-module CPU offload hooks, chained text encoder → transformer →
  VAE (`cpu_offload_with_hook`, what `DiffusionPipeline.enable_model_cpu_offload` installs): one component
  on the device at a time;
- `offload="sequential"`: accelerate's `cpu_offload` per component: weights stream to the device one
  leaf module at a time (slowest, least memory);
- `text_encoder_cpu`: the text encoder stays on the CPU (UMT5-XXL is 5.7B parameters); its output moves
  to the device;
- `vae_tiling` / `vae_slicing`: diffusers' `AutoencoderKLWan.enable_tiling()` / `enable_slicing()`.

The estimate (`estimate_peak`) is arithmetic on the loaded components' parameter bytes and the request's
token counts — an estimate, not a measurement (bench/realsize.py measures):
    transformer activations ≈ B · N · (8·d + f) · bytes   (hidden states, q/k/v/o and one FFN hidden at a
                                                            time; attention by SDPA, no N² buffer)
    VAE decode activations  ≈ 4 · 2 · 96·4 · H · W · 4    (the causal decoder runs a few frames at a time:
                                                            two 384-channel full-resolution float32 maps
                                                            of one chunk of 4 frames, a 4× headroom)
    tiled decode: the same at the tile (256×256 px) instead of H × W.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

OFFLOAD_MODES = ("none", "model", "sequential")
GB = 1e9
VAE_TILE = 256  # AutoencoderKLWan's default tile_sample_min_height / width


@dataclass(frozen=True)
class MemoryMode:
    offload: str = "none"
    text_encoder_cpu: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False

    def __post_init__(self):
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {', '.join(OFFLOAD_MODES)}, got {self.offload!r}")


@dataclass(frozen=True)
class PeakEstimate:
    """Bytes on the device, per phase, and the peak (the largest phase)."""

    text_gb: float
    transformer_gb: float
    decode_gb: float

    @property
    def peak_gb(self) -> float:
        return max(self.text_gb, self.transformer_gb, self.decode_gb)

    def as_dict(self) -> dict:
        return {**{k: round(v, 3) for k, v in asdict(self).items()}, "peak_gb": round(self.peak_gb, 3)}


def transformer_activation_bytes(batch: int, tokens: int, dim: int, ffn_dim: int, dtype_bytes: int) -> float:
    return float(batch * tokens * (8 * dim + ffn_dim) * dtype_bytes)


def vae_decode_activation_bytes(height: int, width: int, tiling: bool, base_dim: int = 96) -> float:
    if tiling:
        height, width = min(height, VAE_TILE), min(width, VAE_TILE)
    return float(4 * 2 * base_dim * 4 * height * width * 4)


def estimate_peak(
    weights: dict[str, float],
    largest_leaf: dict[str, float],
    mode: MemoryMode,
    batch: int,
    tokens: int,
    dim: int,
    ffn_dim: int,
    dtype_bytes: int,
    height: int,
    width: int,
    vae_base_dim: int = 96,
) -> PeakEstimate:
    """Peak device memory of one request, per phase (text encoding, sampling, decoding).

    `weights`: bytes of each component's parameters and buffers ("text_encoder", "transformer", "vae");
    `largest_leaf`: bytes of each component's largest leaf module (what sequential offload holds);
    `batch`: transformer batch (2 with CFG); `tokens`: the full-resolution stage's tokens."""

    def resident(name: str) -> float:
        if name == "text_encoder" and mode.text_encoder_cpu:
            return 0.0
        return {"none": weights[name], "model": weights[name], "sequential": largest_leaf[name]}[mode.offload]

    always = 0.0 if mode.offload != "none" else sum(resident(n) for n in weights)

    def phase(name: str, activations: float) -> float:
        own = resident(name) if mode.offload != "none" else 0.0
        return (always + own + activations) / GB

    act = transformer_activation_bytes(batch, tokens, dim, ffn_dim, dtype_bytes)
    vae_act = vae_decode_activation_bytes(height, width, mode.vae_tiling, vae_base_dim)
    return PeakEstimate(
        text_gb=phase("text_encoder", 0.0),
        transformer_gb=phase("transformer", act),
        decode_gb=phase("vae", vae_act),
    )
