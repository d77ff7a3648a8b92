"""The embedded zoo's components: tiny configs, the trainable text-to-velocity module, export to assets/.

Layout written here and read by engine.models (diffusers layout, components shared between variants):

    assets/zoo/shared/     model_index.json, tokenizer/, text_encoder/, vae/, scheduler/
    assets/zoo/<variant>/  model_index.json, transformer/, pyramidal_wan.json ("shared": "../shared")
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, WanTransformer3DModel
from torch import nn
from transformers import UMT5Config, UMT5EncoderModel

from engine.flow import masked_text, timestep
from engine.models import CARD_FILE, TOP_EXPERT, ZOO_DIR, ModelCard
from engine.text import build_word_tokenizer
from engine.tiny_vae import TinyWanVAE
from world import vocabulary

SHARED_DIR = ZOO_DIR / "shared"
MAX_TEXT_LEN = 32

TINY_TRANSFORMER = dict(
    num_attention_heads=4,
    attention_head_dim=32,
    in_channels=16,
    out_channels=16,
    text_dim=64,
    freq_dim=64,
    ffn_dim=512,
    num_layers=4,
    rope_max_seq_len=64,
)
TINY_TEXT_ENCODER = dict(
    d_model=64,
    d_kv=16,
    d_ff=128,
    num_layers=2,
    num_heads=4,
    relative_attention_num_buckets=16,
    relative_attention_max_distance=32,
)


def tiny_tokenizer():
    return build_word_tokenizer(vocabulary(), max_length=MAX_TEXT_LEN)


def tiny_text_encoder(vocab_size: int) -> UMT5EncoderModel:
    return UMT5EncoderModel(UMT5Config(vocab_size=vocab_size, **TINY_TEXT_ENCODER))


def tiny_transformer(**changes) -> WanTransformer3DModel:
    """The tiny Wan transformer; `changes` override TINY_TRANSFORMER (e.g. num_layers=6)."""
    return WanTransformer3DModel(**{**TINY_TRANSFORMER, **changes})


class TextToVelocity(nn.Module):
    """Text encoder + Wan transformer as one module, so `accelerate`/DDP sees every trained parameter.

    The text embedding matches WanPipeline.encode_prompt: hidden states past each caption's length are
    zeroed (tests check the two agree).
    """

    def __init__(self, transformer: WanTransformer3DModel, text_encoder: UMT5EncoderModel):
        super().__init__()
        self.transformer = transformer
        self.text_encoder = text_encoder

    def train(self, mode: bool = True) -> TextToVelocity:
        """A frozen text encoder (no parameter trained) stays in eval mode: no dropout on what it embeds."""
        super().train(mode)
        if not any(p.requires_grad for p in self.text_encoder.parameters()):
            self.text_encoder.eval()
        return self

    def embed(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_text(self.text_encoder(input_ids, mask).last_hidden_state, mask)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor):
        """x (B, C, T, H, W), sigma (B,), tokenized captions (B, L) → velocity (B, C, T, H, W)."""
        return velocity(self.transformer, x, sigma, self.embed(input_ids, mask))


def velocity(transformer: WanTransformer3DModel, x: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor):
    """The transformer as a velocity model: t = 1000·σ, the true noise level of x (DESIGN §2–3)."""
    return transformer(
        hidden_states=x, timestep=timestep(sigma), encoder_hidden_states=text, return_dict=False
    )[0]


def tokenize(tokenizer, captions: list[str], device) -> tuple[torch.Tensor, torch.Tensor]:
    t = tokenizer(
        captions,
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    return t.input_ids.to(device), t.attention_mask.to(device)


def load_vae(shared: Path = SHARED_DIR) -> TinyWanVAE:
    """The zoo's VAE (exported by trainers.vae), in float32."""
    return TinyWanVAE.from_pretrained(shared / "vae", torch_dtype=torch.float32).eval()


def _write_index(folder: Path, entries: dict[str, list[str]]) -> None:
    index = {"_class_name": "WanPipeline", "_diffusers_version": "0.42.1", **entries}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2))


def export_shared(tokenizer, text_encoder: UMT5EncoderModel, shared: Path = SHARED_DIR) -> None:
    """Tokenizer, text encoder (float16) and scheduler config next to the VAE the VAE trainer exported."""
    shared.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(shared / "tokenizer")
    text_encoder.to(torch.float16).save_pretrained(shared / "text_encoder")
    text_encoder.to(torch.float32)
    FlowMatchEulerDiscreteScheduler(shift=1.0).save_pretrained(shared / "scheduler")
    _write_index(
        shared,
        {
            "tokenizer": ["transformers", "PreTrainedTokenizerFast"],
            "text_encoder": ["transformers", "UMT5EncoderModel"],
            "vae": ["engine.tiny_vae", "TinyWanVAE"],
            "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        },
    )


def export_variant(
    name: str,
    transformer: WanTransformer3DModel,
    card: ModelCard,
    zoo: Path = ZOO_DIR,
    top_expert: WanTransformer3DModel | None = None,
) -> Path:
    """assets/zoo/<name>/: the transformer in float16 plus its card, and the full-resolution stage's own
    transformer in `transformer_2/` when a `top_expert` is given; other components are shared."""
    folder = zoo / name
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for sub, module in (("transformer", transformer), (TOP_EXPERT, top_expert)):
        if module is not None:
            module.to(torch.float16).save_pretrained(folder / sub)
            module.to(torch.float32)
            entries[sub] = ["diffusers", "WanTransformer3DModel"]
        elif (folder / sub).is_dir():  # an earlier export's expert must not outlive this one
            shutil.rmtree(folder / sub)
    (folder / CARD_FILE).write_text(card.to_json())
    _write_index(folder, entries)
    return folder


def tiny_card(**changes) -> ModelCard:
    """Defaults shared by the tiny variants (17×128×128 clips, short captions, guidance 3)."""
    base = dict(
        frames=17,
        height=128,
        width=128,
        fps=8,
        guidance=3.0,
        shift=1.0,
        max_sequence_length=MAX_TEXT_LEN,
        shared="../shared",
    )
    base.update(changes)
    return ModelCard(**base)
