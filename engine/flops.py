"""Compute model: FLOPs per transformer forward and per sampling schedule (DESIGN §8).

Per forward with N video tokens, width d, FFN width f, text length L and depth D (2 FLOPs per
multiply-add):  D · (8Nd² + 4N²d + 4Nd² + 4Ld² + 4NLd + 4Ndf)
  8Nd²  self-attention q, k, v, o projections      4N²d  self-attention scores and weighted sum
  4Nd²  cross-attention q and o projections        4Ld²  cross-attention k and v on the text
  4NLd  cross-attention scores and weighted sum    4Ndf  the two FFN matrices
Embeddings, norms, modulation and the head are negligible and left out, as in the paper.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.pyramid import PyramidGeometry

TERA = 1e12
DEFAULT_TEXT_LEN = 512


@dataclass(frozen=True)
class TransformerSize:
    """What the FLOPs model needs to know about a Wan transformer."""

    dim: int
    ffn_dim: int
    num_layers: int
    text_len: int = DEFAULT_TEXT_LEN

    @classmethod
    def from_config(cls, config: dict, text_len: int = DEFAULT_TEXT_LEN) -> TransformerSize:
        """From a diffusers `WanTransformer3DModel` config (dict of transformer/config.json)."""
        return cls(
            dim=int(config["num_attention_heads"]) * int(config["attention_head_dim"]),
            ffn_dim=int(config["ffn_dim"]),
            num_layers=int(config["num_layers"]),
            text_len=text_len,
        )


KNOWN_SIZES = {
    "wan2.1-t2v-1.3b": TransformerSize(dim=1536, ffn_dim=8960, num_layers=30),
    "wan2.1-t2v-14b": TransformerSize(dim=5120, ffn_dim=13824, num_layers=40),
}


def size_from_name_or_folder(name_or_path: str) -> TransformerSize:
    """A known name (wan2.1-t2v-1.3b, wan2.1-t2v-14b) or a diffusers folder with transformer/config.json."""
    key = name_or_path.lower()
    if key in KNOWN_SIZES:
        return KNOWN_SIZES[key]
    path = Path(name_or_path)
    config = path / "transformer" / "config.json"
    if not config.is_file():
        config = path / "config.json"
    if not config.is_file():
        raise ValueError(
            f"{name_or_path!r} is neither a known model ({', '.join(KNOWN_SIZES)}) nor a folder with "
            f"transformer/config.json"
        )
    text_len = DEFAULT_TEXT_LEN
    extra = path / "pyramidal_wan.json"
    if extra.is_file():
        text_len = int(json.loads(extra.read_text()).get("max_sequence_length", DEFAULT_TEXT_LEN))
    return TransformerSize.from_config(json.loads(config.read_text()), text_len=text_len)


def forward_flops(tokens: int, size: TransformerSize) -> float:
    """FLOPs of one transformer forward over `tokens` video tokens (batch 1)."""
    n, d, f, L = tokens, size.dim, size.ffn_dim, size.text_len
    per_layer = 8 * n * d * d + 4 * n * n * d + 4 * n * d * d + 4 * L * d * d + 4 * n * L * d + 4 * n * d * f
    return float(size.num_layers * per_layer)


def schedule_flops(
    geometry: PyramidGeometry, counts: Sequence[int], size: TransformerSize, cfg: bool = False
) -> list[float]:
    """FLOPs per stage (low → high) of a schedule; with CFG every step costs two forwards."""
    if len(counts) != geometry.num_stages:
        raise ValueError(f"schedule has {len(counts)} stages, geometry has {geometry.num_stages}")
    mult = 2 if cfg else 1
    return [mult * steps * forward_flops(stage.tokens, size) for stage, steps in zip(geometry.stages, counts)]
