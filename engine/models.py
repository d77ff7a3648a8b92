"""Model loading: diffusers-layout folders (real Wan2.1 or our zoo), the embedded zoo, and random-tiny.

A model folder is the diffusers layout (`model_index.json`, `tokenizer/ text_encoder/ transformer/ vae/
scheduler/`) plus an optional `pyramidal_wan.json` with our defaults (size, schedule, guidance …) and
`"shared": "<folder>"` naming where components missing here live (the zoo shares one VAE and one text
encoder between variants). A folder may also hold `transformer_2/`, the last (full-resolution) stage's own
transformer — a top-stage expert, as Wan2.2 keeps a low-noise expert — which the sampler uses there
(`WanModel.top_expert`, engine.pipeline). Everything loads offline (`local_files_only`); a hub id is
tried online only when the name is not a local folder and the host is online.
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

from engine.flops import TransformerSize
from engine.flow import denormalise_latents, normalise_latents
from engine.memory import MemoryMode, PeakEstimate, estimate_peak
from engine.pyramid import PyramidGeometry, stage_geometry
from engine.text import build_word_tokenizer, unknown_words
from engine.zoo import (  # noqa: F401 - re-exported: engine.models is the loading API
    CARD_FILE,
    RANDOM_TINY,
    ZOO_DIR,
    ModelCard,
    ModelLoadError,
    available_models,
    default_model_name,
    random_tiny_card,
    read_card,
    resolve,
    zoo_models,
)

COMPONENTS = ("tokenizer", "text_encoder", "transformer", "vae", "scheduler")
TOP_EXPERT = "transformer_2"  # optional: the transformer of the last (full-resolution) stage


def top_expert(pipe: WanPipeline) -> WanTransformer3DModel | None:
    """A pipeline's top-stage expert (its `transformer_2`), or None."""
    return getattr(pipe, TOP_EXPERT, None)


@dataclass
class WanModel:
    """Loaded components of one model and what the engine needs to sample it."""

    name: str
    pipe: WanPipeline  # used for its components and its prompt encoder; sampling is ours
    card: ModelCard
    device: torch.device
    dtype: torch.dtype
    shift: float
    memory: MemoryMode = MemoryMode()
    compiled: bool = False

    @property
    def transformer(self) -> WanTransformer3DModel:
        return self.pipe.transformer

    @property
    def top_expert(self) -> WanTransformer3DModel | None:
        """The full-resolution stage's own transformer (a folder's `transformer_2/`, as Wan2.2 keeps its
        low-noise expert), or None: every stage samples with `transformer`."""
        return top_expert(self.pipe)

    def transformers(self) -> list[WanTransformer3DModel]:
        """Every transformer the model samples with: `transformer`, then the top expert if any."""
        return [m for m in (self.transformer, self.top_expert) if m is not None]

    @property
    def vae(self):
        return self.pipe.vae

    @property
    def tokenizer(self):
        return self.pipe.tokenizer

    @property
    def latent_channels(self) -> int:
        return int(self.transformer.config.in_channels)

    @property
    def geometry(self) -> PyramidGeometry:
        """The pyramid of the card's default clip (frames, size, stages, boundaries)."""
        c = self.card
        return stage_geometry(c.frames, c.height, c.width, c.num_stages, self.latent_channels, c.boundaries)

    @property
    def size(self) -> TransformerSize:
        return TransformerSize.from_config(
            dict(self.transformer.config), text_len=self.card.max_sequence_length
        )

    def unknown_words(self, prompt: str) -> list[str]:
        return unknown_words(self.tokenizer, prompt)

    @torch.no_grad()
    def encode_prompt(
        self, prompts: list[str], negative: list[str] | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text embeddings (B, L, text_dim) for prompts and, when negative is given, for the negative."""
        cond, uncond = self.pipe.encode_prompt(
            prompt=prompts,
            negative_prompt=negative,
            do_classifier_free_guidance=negative is not None,
            max_sequence_length=self.card.max_sequence_length,
            device=torch.device("cpu") if self.memory.text_encoder_cpu else self.device,
            dtype=self.dtype,
        )
        if self.memory.text_encoder_cpu:  # the states, not the encoder, go to the device
            cond = cond.to(self.device)
            uncond = uncond.to(self.device) if uncond is not None else None
        return cond, uncond

    def estimate_peak(self, request) -> PeakEstimate:
        """Estimated peak device memory of a request (engine/memory.py) in this model's memory mode."""
        parts = {"text_encoder": self.pipe.text_encoder, "transformer": self.transformer, "vae": self.vae}
        weights = {n: float(_module_bytes(m)) for n, m in parts.items()}
        weights["transformer"] = float(sum(_module_bytes(m) for m in self.transformers()))  # all resident
        leaves = {
            n: float(max(_module_bytes(c, recurse=False) for c in m.modules())) for n, m in parts.items()
        }
        size = self.size
        return estimate_peak(
            weights,
            leaves,
            self.memory,
            batch=2 if request.guidance != 1.0 else 1,
            tokens=request.geometry.full.tokens,
            dim=size.dim,
            ffn_dim=size.ffn_dim,
            dtype_bytes=torch.finfo(self.dtype).bits // 8,
            height=request.geometry.height,
            width=request.geometry.width,
            vae_base_dim=int(getattr(self.vae.config, "base_dim", 96)),
        )

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, T, H, W) → video (B, 3, 4(T−1)+1, 8H, 8W) in [−1, 1], float32.

        Works at every stage's resolution: the VAE is convolutional, so a stage's x0 estimate decodes to
        a video of that stage's own pixel size.
        """
        latents = latents.to(self.device, torch.float32)  # offload hooks move the VAE, not its input
        video = self.vae.decode(denormalise_latents(latents, self.vae.config), return_dict=False)[0]
        return video.clamp(-1, 1)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Video (B, 3, F, H, W) in [−1, 1] → normalised latents (posterior mean)."""
        video = video.to(self.device, torch.float32)
        latents = self.vae.encode(video).latent_dist.mode()
        return normalise_latents(latents, self.vae.config)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on CUDA (as Wan is run), float32 on the CPU (bf16 matmuls are slow there)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_model(
    name_or_path: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    memory: MemoryMode | None = None,
    compile: bool = False,
) -> WanModel:
    """Load (once, cached by name, device, dtype, memory mode and compile) a zoo name, random-tiny, a
    folder or a hub id. `memory`: offload hooks, text encoder on the CPU, VAE tiling/slicing
    (engine/memory.py); `compile`: regional torch.compile of the transformer's repeated block."""
    name_or_path = name_or_path or default_model_name()
    dev = torch.device(device) if device else default_device()
    dt = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or default_dtype(dev))
    key = resolve(name_or_path)
    return _load_cached(key, str(dev), dt, memory or MemoryMode(), compile, _folder_stamp(key))


def _folder_stamp(key: str) -> int:
    """Newest modification time of a model folder's files: a folder rewritten in place (a trainer's
    export into the zoo) is loaded afresh instead of from the cache."""
    root = Path(key)
    if not root.is_dir():
        return 0
    return max((p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()), default=0)


def _module_bytes(module: torch.nn.Module, recurse: bool = True) -> int:
    tensors = [*module.parameters(recurse=recurse), *module.buffers(recurse=recurse)]
    return sum(t.numel() * t.element_size() for t in tensors)


VAE_SWITCHES = {"vae_tiling": "enable_tiling", "vae_slicing": "enable_slicing"}  # mode field -> VAE method


def apply_memory_mode(pipe: WanPipeline, device: torch.device, mode: MemoryMode) -> MemoryMode:
    """Install `mode` on a loaded pipeline whose components sit on `device` (engine/memory.py) and return
    the mode in effect: VAE tiling/slicing are left out for a VAE that has neither (the zoo's TinyWanVAE,
    which already decodes one latent frame at a time), so one server-wide mode fits every model."""
    for field, method in VAE_SWITCHES.items():
        if getattr(mode, field):
            if hasattr(pipe.vae, method):
                getattr(pipe.vae, method)()
            else:
                mode = replace(mode, **{field: False})
    if mode.text_encoder_cpu and pipe.text_encoder is not None:
        pipe.text_encoder.to("cpu")
    if mode.offload == "none":
        return mode
    from accelerate import cpu_offload, cpu_offload_with_hook

    transformers = [pipe.transformer, top_expert(pipe)]
    chain = [*transformers, pipe.vae]
    if not mode.text_encoder_cpu:
        chain.insert(0, pipe.text_encoder)
    chain = [m for m in chain if m is not None]  # a pipeline without a text encoder (bench.realsize)
    hook = None
    for module in chain:
        module.to("cpu")
        if mode.offload == "model":  # as DiffusionPipeline.enable_model_cpu_offload chains them
            _, hook = cpu_offload_with_hook(module, device, prev_module_hook=hook)
        else:
            cpu_offload(module, device)
    return mode


@functools.lru_cache(maxsize=4)
def _load_cached(
    key: str, device: str, dtype: torch.dtype, memory: MemoryMode, compile: bool, stamp: int = 0
) -> WanModel:
    dev = torch.device(device)
    if key == RANDOM_TINY:
        pipe, card = build_random_tiny()
        name = RANDOM_TINY
    else:
        pipe, card = _load_folder(key, dtype)
        name = Path(key).name if Path(key).is_dir() else key
    expert = top_expert(pipe)
    modules = [
        (pipe.transformer, dtype),
        (expert, dtype),
        (pipe.text_encoder, dtype),
        (pipe.vae, torch.float32),
    ]
    for module, want in ((m, w) for m, w in modules if m is not None):
        module.to(dev).eval()  # folders load in their dtype (torch_dtype); the Wan VAE stays float32
        if next(module.parameters()).dtype != want:
            module.to(want)
    memory = apply_memory_mode(pipe, dev, memory)
    if compile:  # regional: one compiled block reused by all layers; static shapes, once per stage size
        for transformer in (pipe.transformer, expert):
            if transformer is not None:
                transformer.compile_repeated_blocks(fullgraph=True, dynamic=False)
    shift = card.shift if card.shift is not None else _scheduler_shift(pipe.scheduler)
    return WanModel(
        name=name, pipe=pipe, card=card, device=dev, dtype=dtype, shift=shift, memory=memory, compiled=compile
    )


def _scheduler_shift(scheduler) -> float:
    cfg = dict(getattr(scheduler, "config", {}) or {})
    for key in ("shift", "flow_shift"):
        if cfg.get(key):
            return float(cfg[key])
    return 1.0


def _load_folder(path: str, dtype: torch.dtype) -> tuple[WanPipeline, ModelCard]:
    root = Path(path)
    if not root.exists() and path.count("/") == 1 and not path.startswith((".", "/")):
        return _load_hub(path, dtype)  # "org/name": a hub id, for hosts that are online
    if root.exists() and not root.is_dir():
        raise ModelLoadError(f"{path!r} is a file, not a model folder in diffusers layout")
    card = read_card(path)
    shared = (root / card.shared).resolve() if card.shared else None

    parts = {}
    for comp in COMPONENTS:
        where = root if (root / comp).is_dir() else shared
        if where is None or not (where / comp).is_dir():
            raise ModelLoadError(
                f"model folder {path!r} has no {comp}/ subfolder (expected diffusers layout: "
                f"{', '.join(c + '/' for c in COMPONENTS)} and model_index.json)"
            )
        try:
            parts[comp] = _load_component(where, comp, dtype)
        except ModelLoadError:
            raise
        except Exception as err:  # corrupt weights, bad configs: say which component and where
            raise ModelLoadError(
                f"could not load {comp} from {where / comp}: {type(err).__name__}: {err}"
            ) from err
    if (root / TOP_EXPERT).is_dir():  # the full-resolution stage's own transformer
        try:
            parts[TOP_EXPERT] = _load_component(root, TOP_EXPERT, dtype)
        except Exception as err:
            raise ModelLoadError(f"could not load {TOP_EXPERT} from {root / TOP_EXPERT}: {err}") from err
    return WanPipeline(**parts), card


def _component_class(root: Path, comp: str):
    index = root / "model_index.json"
    defaults = {
        "text_encoder": UMT5EncoderModel,
        "transformer": WanTransformer3DModel,
        TOP_EXPERT: WanTransformer3DModel,
        "vae": AutoencoderKLWan,
        "scheduler": FlowMatchEulerDiscreteScheduler,
    }
    if index.is_file():
        try:
            entry = json.loads(index.read_text()).get(comp)
        except json.JSONDecodeError as err:
            raise ModelLoadError(f"{index} is not valid JSON: {err}") from err
        if entry and entry[0] and entry[1]:
            library, cls = entry
            try:
                return getattr(importlib.import_module(library), cls)
            except (ImportError, AttributeError) as err:
                raise ModelLoadError(f"{index}: {comp} class {library}.{cls} is not available") from err
    return defaults[comp]


def _load_component(root: Path, comp: str, dtype: torch.dtype):
    if comp == "tokenizer":
        return AutoTokenizer.from_pretrained(root / comp, local_files_only=True)
    cls = _component_class(root, comp)
    if comp == "scheduler":
        return cls.from_pretrained(root, subfolder=comp, local_files_only=True)
    kwargs = {"torch_dtype": torch.float32 if comp == "vae" else dtype}
    return cls.from_pretrained(root, subfolder=comp, local_files_only=True, **kwargs)


def _load_hub(repo_id: str, dtype: torch.dtype) -> tuple[WanPipeline, ModelCard]:
    try:
        pipe = WanPipeline.from_pretrained(repo_id, torch_dtype=dtype)
        pipe.vae.to(torch.float32)
    except Exception as err:
        raise ModelLoadError(
            f"{repo_id!r} is not a local folder and could not be fetched from a model hub "
            f"({type(err).__name__}); on an offline host, download it first and give the folder"
        ) from err
    return pipe, ModelCard(description=f"{repo_id} (hub)")


# --- random-tiny: the whole path before any trained model exists --------------------------------------

RANDOM_TINY_WORDS = (
    "a an the red green blue yellow white black orange purple circle square triangle star cross moving "
    "left right up down growing shrinking rotating bouncing still on over background gradient slowly quickly"
).split()


def build_random_tiny(seed: int = 0) -> tuple[WanPipeline, ModelCard]:
    """A random-weight pipeline of the real Wan layout at toy size, built in memory (seeded)."""
    card = random_tiny_card()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        tokenizer = build_word_tokenizer(RANDOM_TINY_WORDS, max_length=card.max_sequence_length)
        text_encoder = UMT5EncoderModel(
            UMT5Config(
                vocab_size=len(tokenizer),
                d_model=32,
                d_kv=16,
                d_ff=64,
                num_layers=1,
                num_heads=2,
                relative_attention_num_buckets=8,
                relative_attention_max_distance=16,
            )
        )
        transformer = WanTransformer3DModel(
            num_attention_heads=2,
            attention_head_dim=16,
            text_dim=32,
            freq_dim=32,
            ffn_dim=64,
            num_layers=2,
            rope_max_seq_len=256,
        )
        vae = AutoencoderKLWan(
            base_dim=4,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
            latents_mean=[0.0] * 16,
            latents_std=[1.0] * 16,
        )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    pipe = WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer
    )
    return pipe, card


def save_model(pipe: WanPipeline, card: ModelCard, folder: str | Path) -> Path:
    """Write a pipeline in diffusers layout plus its card (what tests and trainers use to make folders)."""
    folder = Path(folder)
    pipe.save_pretrained(folder)
    (folder / CARD_FILE).write_text(card.to_json())
    return folder
