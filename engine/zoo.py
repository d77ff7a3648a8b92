"""The model zoo without the weights: names, folders and model cards (cheap to import: no torch).

A model card is `pyramidal_wan.json` beside a model in diffusers layout: its defaults (size, schedule,
guidance …), whether it was finetuned for the pyramid, and `"shared"` naming the folder that holds the
components it shares with other variants. The app lists models and reads cards through this module
before any heavy library is imported.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.pyramid import DEFAULT_NUM_STAGES

REPO_ROOT = Path(__file__).resolve().parent.parent
ZOO_DIR = REPO_ROOT / "assets" / "zoo"
RANDOM_TINY = "random-tiny"
DEFAULT_ZOO_MODEL = "pyramidal-wan-tiny"
CARD_FILE = "pyramidal_wan.json"


class ModelLoadError(RuntimeError):
    """A model name or folder that cannot be loaded; the message says what was expected."""


@dataclass(frozen=True)
class ModelCard:
    """Defaults and facts stored beside a model in `pyramidal_wan.json` (all optional there)."""

    description: str = ""
    pyramidal: bool = False  # finetuned for the pyramid (else pyramidal sampling is out of distribution)
    frames: int = 81
    height: int = 448
    width: int = 832
    fps: int = 16
    schedule: str = "0-0-50"
    guidance: float = 5.0
    shift: float | None = None  # None: read from the scheduler config
    step_rule: str = "euler"  # "euler" for diffusion models, "x0" for few-step distilled generators
    num_stages: int = DEFAULT_NUM_STAGES
    boundaries: tuple[float, ...] | None = None
    max_sequence_length: int = 512
    negative_prompt: str = ""
    shared: str | None = None

    @classmethod
    def from_dict(cls, data: dict) -> ModelCard:
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        if data.get("boundaries") is not None:
            data["boundaries"] = tuple(data["boundaries"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def zoo_models() -> list[str]:
    """Names of the shipped zoo variants (folders of assets/zoo with a transformer)."""
    if not ZOO_DIR.is_dir():
        return []
    return sorted(p.name for p in ZOO_DIR.iterdir() if (p / "transformer").is_dir())


def available_models() -> list[str]:
    return zoo_models() + [RANDOM_TINY]


def default_model_name() -> str:
    zoo = zoo_models()
    if DEFAULT_ZOO_MODEL in zoo:
        return DEFAULT_ZOO_MODEL
    return zoo[0] if zoo else RANDOM_TINY


def resolve(name_or_path: str) -> str:
    """A zoo name → its folder; random-tiny stays a name; anything else is taken as a path or hub id."""
    if name_or_path == RANDOM_TINY:
        return RANDOM_TINY
    if (ZOO_DIR / name_or_path / "transformer").is_dir():
        return str(ZOO_DIR / name_or_path)
    return name_or_path


def read_card(name_or_path: str) -> ModelCard:
    """The card of a zoo name, random-tiny or a folder, without loading weights.

    A folder without a card gets Wan2.1 defaults; a missing folder or a broken card raises ModelLoadError.
    """
    if name_or_path == RANDOM_TINY:
        return random_tiny_card()
    folder = Path(resolve(name_or_path))
    if not folder.is_dir():
        raise ModelLoadError(
            f"no model folder at {str(folder)!r}. Give a zoo name ({', '.join(available_models())}) or a "
            f"folder in diffusers layout (model_index.json with tokenizer/ text_encoder/ transformer/ vae/ "
            f"scheduler/), e.g. a local copy of Wan2.1-T2V-1.3B-Diffusers."
        )
    card_path = folder / CARD_FILE
    if not card_path.is_file():
        return ModelCard(description=f"{folder.name} (diffusers folder, Wan2.1 defaults)")
    try:
        return ModelCard.from_dict(json.loads(card_path.read_text()))
    except (json.JSONDecodeError, TypeError) as err:
        raise ModelLoadError(f"{card_path} is not valid: {err}") from err


def random_tiny_card() -> ModelCard:
    return ModelCard(
        description="random weights, tiny Wan architecture: exercises every code path, draws noise",
        pyramidal=False,
        frames=17,
        height=128,
        width=128,
        fps=8,
        schedule="2-2-1",
        guidance=3.0,
        shift=1.0,
        max_sequence_length=16,
    )
