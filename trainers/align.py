"""Representation alignment (REPA, Yu et al. 2024): a training-only loss that asks one transformer block's
hidden tokens, through a small projector, to match a frozen encoder's features of the *clean* clip at the
same place. REPA aligns DiT tokens with DINOv2 features of clean images and trains DiTs many times faster;
here the frozen encoder is the latent attribute classifier's convolutional body (trainers.attributes),
whose features sit on the transformer's token grid (its stride-2 convolution matches the (1, 2, 2)
patches), and know shape, colour and motion.

The projector is trained with the model and never exported: generation is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trainers.attributes import LatentAttributes


def encoder_tokens(encoder: LatentAttributes, x0: torch.Tensor) -> torch.Tensor:
    """Clean latents (B, C, T, H, W) → the encoder body's features as tokens (B, T·H/2·W/2, width), in the
    order WanTransformer3DModel flattens its patches (time, height, width)."""
    with torch.no_grad():
        return encoder.body(x0.float()).flatten(2).transpose(1, 2)


def alignment_loss(hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − the mean cosine similarity of projected hidden tokens and target tokens (B, N, D) each:
    0 when aligned, 1 when unrelated."""
    return 1 - F.cosine_similarity(hidden.float(), target.float(), dim=-1).mean()


class Alignment(nn.Module):
    """One projector per encoder (a 3-layer MLP, as REPA's) from the transformer's width to the encoder's.
    `capture(transformer, depth)` records block `depth`'s output on every forward; `loss(key, x0)` aligns
    the last recorded tokens with encoders[key]'s features of x0."""

    def __init__(self, width: int, encoders: dict[str, LatentAttributes], hidden: int = 256):
        super().__init__()
        self.encoders = encoders  # frozen, not parameters of this module (a plain dict)
        self.projectors = nn.ModuleDict(
            {
                key: nn.Sequential(
                    nn.Linear(width, hidden),
                    nn.SiLU(),
                    nn.Linear(hidden, hidden),
                    nn.SiLU(),
                    nn.Linear(hidden, enc.config["width"]),
                )
                for key, enc in encoders.items()
            }
        )
        self.tokens: torch.Tensor | None = None

    def capture(self, transformer: nn.Module, depth: int) -> torch.utils.hooks.RemovableHandle:
        """Record the output of transformer.blocks[depth − 1] (depth 1 = after the first block)."""
        if not 1 <= depth <= len(transformer.blocks):
            raise ValueError(f"align_depth must be 1..{len(transformer.blocks)}, got {depth}")

        def hook(_module, _inputs, output):
            self.tokens = output[0] if isinstance(output, tuple) else output

        return transformer.blocks[depth - 1].register_forward_hook(hook)

    def loss(self, key: str, x0: torch.Tensor) -> torch.Tensor:
        if self.tokens is None:
            raise RuntimeError("no hidden tokens recorded: call capture() and run the transformer first")
        target = encoder_tokens(self.encoders[key], x0)
        if target.shape[1] != self.tokens.shape[1]:
            raise ValueError(f"encoder: {target.shape[1]} tokens, transformer: {self.tokens.shape[1]}")
        return alignment_loss(self.projectors[key](self.tokens), target)
