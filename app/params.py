"""The values a tab sends to its handler, as one named object per endpoint.

The fields' names and order are the named API's parameters (/generate, /compare; see app/README.md): the
page builds each event's input list from them by name (`widget_list`), the handlers' signatures are
checked against them (tests/test_app_units.py), and the handlers work on the object, never on a
positional list.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


class _Params:
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_call(cls, values: dict[str, Any]):
        """The object from a handler's arguments (its `locals()`), picked by name."""
        return cls(**{name: values[name] for name in cls.names()})

    @classmethod
    def widget_list(cls, widgets: dict[str, Any]) -> list:
        """The widgets in the endpoint's parameter order, from a {field name: widget} mapping."""
        missing = set(cls.names()) - set(widgets)
        if missing:
            raise ValueError(f"no widget for {', '.join(sorted(missing))}")
        return [widgets[name] for name in cls.names()]


@dataclass
class GenerateParams(_Params):
    """The Generate tab (/generate). Empty values mean the model's defaults."""

    prompt: str
    negative_prompt: str | None = None
    seed: float | None = None
    randomize_seed: bool = True
    model: str | None = None
    schedule: str | None = None
    guidance: float | None = None
    frames: int | None = None
    height: int | None = None
    width: int | None = None
    wavelet: str | None = None
    shared_noise: float | None = None


@dataclass
class CompareParams(_Params):
    """The Compare tab (/compare): one prompt and seed, then a schedule and a model per run slot."""

    prompt: str
    negative_prompt: str | None = None
    seed: float | None = None
    randomize_seed: bool = True
    n_runs: int = 2
    schedule_1: str | None = None
    model_1: str | None = None
    schedule_2: str | None = None
    model_2: str | None = None
    schedule_3: str | None = None
    model_3: str | None = None
    schedule_4: str | None = None
    model_4: str | None = None

    def shared(self) -> GenerateParams:
        """What every run shares: prompt, negative prompt and seed (the rest is each model's default)."""
        return GenerateParams(
            prompt=self.prompt,
            negative_prompt=self.negative_prompt,
            seed=self.seed,
            randomize_seed=self.randomize_seed,
        )

    def slots(self) -> list[tuple[str | None, str | None]]:
        """(schedule, model) of every slot, 1 → 4."""
        return [(getattr(self, f"schedule_{i}"), getattr(self, f"model_{i}")) for i in range(1, 5)]
