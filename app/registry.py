"""The models the page offers: the engine's registry (zoo, random-tiny and the operator's folders) plus
what serving needs on top: labels, lazy loading and per-model concurrency.

Each entry has a key (a name `engine.zoo.ModelRegistry` resolves: a zoo name, "random-tiny" or a folder
path) and a label saying what it is (the model card's description). Loading is lazy and goes through the
engine's one cache; a per-model semaphore bounds how many requests sample one model at once.

The model loader is imported inside the methods: torch + diffusers take several seconds to import on a
small CPU and the page must be interactive before that (the app's warm-up thread imports them right
after). engine.zoo itself is cheap (no torch).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.serving import RunCancelled
from engine.zoo import ModelRegistry as EngineRegistry

if TYPE_CHECKING:
    from engine.memory import MemoryMode
    from engine.models import WanModel


@dataclass(frozen=True)
class ModelEntry:
    key: str  # passed to engine.models.load_model
    label: str  # shown in the dropdown


class ModelRegistry(EngineRegistry):
    """The engine's registry (names, resolution, cards read once) plus labels, lazy loading and
    per-model concurrency."""

    def __init__(
        self, model_dirs: list[str] | None = None, per_model: int = 1, memory: MemoryMode | None = None
    ) -> None:
        super().__init__(model_dirs=model_dirs or [])
        self.per_model = per_model
        self.memory = memory  # the engine's memory mode for every model loaded here (None: the default)
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    # --- what is offered -------------------------------------------------------------------------------

    def entries(self) -> list[ModelEntry]:
        out = []
        for key in self.names():
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

    # --- using a model ---------------------------------------------------------------------------------

    def load(self, key: str) -> WanModel:
        """Load once (engine cache) in the app's memory mode; raises engine.models.ModelLoadError with a
        readable message. The engine leaves out VAE tiling/slicing for a VAE without them (the zoo's), so
        the operator's --vae-tiling for a real model keeps the embedded zoo usable."""
        from engine.models import load_model

        self.card(key)  # a missing folder fails here with the app's message, before any slow import
        with self._lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:  # two first requests for one model must not build it twice
            return load_model(key, memory=self.memory)

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
