"""Shared test helpers."""

import torch


def tiny_wan_transformer(seed: int = 0):
    """A minimal random WanTransformer3DModel (4 latent channels, text_dim 8, two blocks)."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=4,
        out_channels=4,
        text_dim=8,
        freq_dim=8,
        ffn_dim=16,
        num_layers=2,
        rope_max_seq_len=64,
    )
