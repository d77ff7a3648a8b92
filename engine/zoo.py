"""The model zoo without the weights: names, folders and model cards (cheap to import: no torch).

A model card is `pyramidal_wan.json` beside a model in diffusers layout: its defaults (size, schedule,
guidance …), whether it was finetuned for the pyramid, and `"shared"` naming the folder that holds the
components it shares with other variants. `ModelRegistry` is the one resolver of model names; the app
lists models and reads cards through it before any heavy library is imported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.limits import shown
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
    shared_noise: float = 0.0  # share of the starting noise common to all latent frames (engine.sampling)
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


class ModelRegistry:
    """The models a process offers, by name: the zoo's variants, random-tiny and extra model folders.

    The one place a model name becomes a folder and a card (engine.models, the CLI, the app, the
    benchmark and the trainers all ask it). Each card file is read once, and again only if it changes.
    """

    def __init__(self, zoo_dir: str | Path = ZOO_DIR, model_dirs: Sequence[str | Path] = ()) -> None:
        self.zoo_dir = Path(zoo_dir)
        self.model_dirs = [str(Path(d)) for d in model_dirs]
        self._cards: dict[str, tuple[int, ModelCard]] = {}
        self._lock = threading.Lock()

    def zoo_models(self) -> list[str]:
        """Names of the zoo's variants (folders of zoo_dir with a transformer)."""
        if not self.zoo_dir.is_dir():
            return []
        return sorted(p.name for p in self.zoo_dir.iterdir() if (p / "transformer").is_dir())

    def names(self) -> list[str]:
        """Everything offered: the zoo's variants, random-tiny, then the extra folders."""
        return [*self.zoo_models(), RANDOM_TINY, *self.model_dirs]

    def default(self) -> str:
        zoo = self.zoo_models()
        if DEFAULT_ZOO_MODEL in zoo:
            return DEFAULT_ZOO_MODEL
        return zoo[0] if zoo else RANDOM_TINY

    def resolve(self, name: str | None) -> str:
        """An offered name: None or "" means the default; anything not offered is refused with the list."""
        if name is None or not str(name).strip():
            return self.default()
        name = str(name).strip()
        names = self.names()
        if name not in names:
            raise ValueError(f"unknown model {shown(name)}; choose one of: {', '.join(names)}")
        return name

    def locate(self, name_or_path: str) -> str:
        """What to load: a zoo name → its folder; random-tiny stays a name; anything else is taken as a
        folder or a hub id."""
        if name_or_path == RANDOM_TINY:
            return RANDOM_TINY
        if (self.zoo_dir / name_or_path / "transformer").is_dir():
            return str(self.zoo_dir / name_or_path)
        return name_or_path

    def card(self, name_or_path: str) -> ModelCard:
        """The card of a zoo name, random-tiny or a folder, without loading weights.

        A folder without a card gets Wan2.1 defaults; a missing folder or a broken card raises ModelLoadError.
        """
        if name_or_path == RANDOM_TINY:
            return random_tiny_card()
        folder = Path(self.locate(name_or_path))
        if not folder.is_dir():
            raise ModelLoadError(
                f"no model folder at {str(folder)!r}. Give a zoo name ({', '.join(self.names())}) or a "
                f"folder in diffusers layout (model_index.json with tokenizer/ text_encoder/ transformer/ "
                f"vae/ scheduler/), e.g. a local copy of Wan2.1-T2V-1.3B-Diffusers."
            )
        card_path = folder / CARD_FILE
        if not card_path.is_file():
            return ModelCard(description=f"{folder.name} (diffusers folder, Wan2.1 defaults)")
        stamp = card_path.stat().st_mtime_ns
        with self._lock:
            cached = self._cards.get(str(card_path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            card = ModelCard.from_dict(json.loads(card_path.read_text()))
        except (json.JSONDecodeError, TypeError) as err:
            raise ModelLoadError(f"{card_path} is not valid: {err}") from err
        with self._lock:
            self._cards[str(card_path)] = (stamp, card)
        return card


ZOO = ModelRegistry()  # the shipped zoo and random-tiny: what the CLI, the benchmark and the trainers offer
zoo_models = ZOO.zoo_models
available_models = ZOO.names
default_model_name = ZOO.default
resolve = ZOO.locate
read_card = ZOO.card


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
