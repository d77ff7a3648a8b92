"""The models the page offers: the engine's zoo and random-tiny plus the operator's folders.

Each entry has a key (what `engine.models.load_model` is given: a zoo name, "random-tiny" or a folder
path) and a label saying what it is (the model card's description). Loading is lazy and goes through the
engine's one cache; a per-model semaphore bounds how many requests sample one model at once.

The engine is imported inside the methods: torch + diffusers take several seconds to import on a small
CPU and the page must be interactive before that (the app's warm-up thread imports them right after).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.serving import RunCancelled

if TYPE_CHECKING:
    from engine.models import WanModel
    from engine.zoo import ModelCard


@dataclass(frozen=True)
class ModelEntry:
    key: str  # passed to engine.models.load_model
    label: str  # shown in the dropdown


class ModelRegistry:
    """Model choices, their cards (read without loading weights), lazy loading, per-model concurrency."""

    def __init__(self, model_dirs: list[str] | None = None, per_model: int = 1) -> None:
        self.model_dirs = [str(Path(d)) for d in (model_dirs or [])]
        self.per_model = per_model
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # --- what is offered -------------------------------------------------------------------------------

    def entries(self) -> list[ModelEntry]:
        from engine.zoo import available_models

        out = []
        for key in [*available_models(), *self.model_dirs]:
            name = Path(key).name if key in self.model_dirs else key
            try:
                description = self.description(key)
            except Exception as err:  # a missing or broken folder stays listed, so choosing it says why
                description = (
                    "folder not found" if not Path(key).exists() else f"unusable: {_first_line(err)}"
                )
            where = f" ({key})" if key in self.model_dirs else ""
            out.append(ModelEntry(key, f"{name} — {description}{where}"))
        return out

    def description(self, key: str) -> str:
        """The card's description without a leading "<name>: " (the label and readout show the name)."""
        text = self.card(key).description or "model folder in diffusers layout"
        return text.removeprefix(f"{Path(key).name}: ")

    def choices(self) -> list[tuple[str, str]]:
        """(label, key) pairs for a gr.Dropdown."""
        return [(e.label, e.key) for e in self.entries()]

    def default_key(self) -> str:
        from engine.zoo import default_model_name

        return default_model_name()

    def resolve(self, key: str | None) -> str:
        """The key to load: None or "" means the default model; unknown keys get a message listing choices."""
        if key is None or not str(key).strip():
            return self.default_key()
        key = str(key).strip()
        keys = [e.key for e in self.entries()]
        if key not in keys:
            from engine.limits import shown

            raise ValueError(f"unknown model {shown(key)}; choose one of: {', '.join(keys)}")
        return key

    def card(self, key: str) -> ModelCard:
        """The model's card (defaults such as size and schedule) without loading any weights."""
        from engine.zoo import read_card

        return read_card(key)

    # --- using a model ---------------------------------------------------------------------------------

    def load(self, key: str) -> WanModel:
        """Load once (engine cache); raises engine.models.ModelLoadError with a readable message."""
        from engine.models import load_model

        self.card(key)  # a missing folder fails here with the app's message, before any slow import
        with self._lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:  # two first requests for one model must not build it twice
            return load_model(key)

    @contextmanager
    def slot(self, key: str, cancelled: Callable[[], bool], waiting: Callable[[], None]) -> Iterator[None]:
        """Hold one of the model's `per_model` sampling slots; `waiting()` is called while queued behind
        other requests on the same model, and RunCancelled is raised if the user gives up meanwhile."""
        with self._lock:
            sem = self._semaphores.setdefault(key, threading.BoundedSemaphore(self.per_model))
        while not sem.acquire(timeout=0.2):
            if cancelled():
                raise RunCancelled()
            waiting()
        try:
            yield
        finally:
            sem.release()


def _first_line(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:120]
