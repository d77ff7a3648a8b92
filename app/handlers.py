"""Thin handlers behind the page: turn widget values into engine calls and engine results into widget
updates. Queueing (per-model slots), cancellation and user-facing errors are handled here; the work is in
app/runs.py (one generation) and app/learn.py (teaching views), which call the engine.

Those two modules import torch and diffusers, so they are imported inside the handlers: the page comes up
first and the warm-up thread (`Handlers.warm_up`) imports them right after.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from app.config import AppConfig
from app.outputs import OutputStore
from app.params import CompareParams, GenerateParams
from app.prompts import grammar_note, surprise_prompt
from app.registry import ModelRegistry
from app.serving import CancelRegistry, QueueEvent, RunCancelled, user_errors

if TYPE_CHECKING:
    from app.runs import RunView
    from engine.limits import Budget
    from engine.zoo import ModelCard

log = logging.getLogger("pyramidalwan.app")
MAX_RUNS = 4  # compare slots
SCHEDULE_PRESETS = ["0-0-50", "20-20-10", "10-10-5", "4-4-2", "2-2-1", "1-1-1", "0-0-4"]
QUICK_COMPARES = {"20-20-10 vs 0-0-50": ("20-20-10", "0-0-50"), "2-2-1 vs 0-0-1": ("2-2-1", "0-0-1")}


def frame_choices(num_stages: int = 3, largest: int = 161) -> list[int]:
    """Valid frame counts for the pyramid: (frames − 1) divisible by 4·2^(S−1) (17, 33, … for 3 stages)."""
    from engine.pyramid import frame_multiple

    m = frame_multiple(num_stages)
    return list(range(1 + m, largest + 1, m))


def size_choices(num_stages: int = 3, largest: int = 1280) -> list[int]:
    """Valid heights/widths: multiples of 16·2^(S−1) (64 for 3 stages) up to `largest`."""
    from engine.pyramid import spatial_multiple

    m = spatial_multiple(num_stages)
    return list(range(m, largest + 1, m))


def _optional_number(value, name: str, whole: bool = False) -> float | int | None:
    """A widget or API value → a number or None (empty); text is parsed, then checked strictly by the
    engine's rules (finite, whole where asked), so every entry point refuses the same values."""
    from engine.limits import finite_number, shown, whole_number

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a number, got {shown(value)}") from None
    return whole_number(value, name) if whole else finite_number(value, name)


def _check_text(value, name: str) -> None:
    """API values that must be text (or empty) but arrive as numbers, lists …: refused by name."""
    from engine.limits import shown

    if value is not None and not isinstance(value, str):
        raise ValueError(f"the {name} must be text, got {shown(value)}")


class Handlers:
    """Every event handler of the page, sharing the app's model registry, output store and cancel flags."""

    def __init__(self, config: AppConfig) -> None:
        self.config = config
        self.registry = ModelRegistry(
            config.model_dirs, per_model=config.per_model, memory=config.memory_mode()
        )
        self.store = OutputStore(config.outputs_root, config.output_ttl_s)
        self.cancels = CancelRegistry()
        self._budget: Budget | None = None

    @property
    def budget(self) -> Budget:
        """This host's per-request budget (engine/limits.py): the operator's choice, else by the device."""
        if self._budget is None:
            from engine.limits import host_budget
            from engine.models import default_device

            on_gpu = default_device().type == "cuda"
            self._budget = host_budget(self.config.budget, self.config.max_tflops, on_gpu=on_gpu)
        return self._budget

    # --- start-up --------------------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Import the engine and load and exercise the default model, so the first click is fast."""
        try:
            from app import learn, runs  # noqa: F401  (the slow imports: torch, diffusers)

            key = self.registry.default()
            model = self.registry.load(key)
            ones = "-".join(["1"] * model.card.num_stages)
            idle = self.registry.slot(key, cancelled=lambda: False, waiting=lambda: None)
            with idle, tempfile.TemporaryDirectory() as tmp:  # first torch calls are slow; make them here
                run = runs.run_generation(
                    key, tmp, "a red circle", seed=0, schedule=ones, memory=self.registry.memory
                )
                for _ in run:
                    pass
            log.info("warm-up done: %s", key)
        except Exception:
            log.exception("warm-up failed (the first request will load the model instead)")

    def page_load(self, *typed):
        """Model dropdowns (generate + compare slots) and the default model's settings; settings the user
        already typed (schedule, guidance, frames, height, width, shared noise) while the page was loading
        are kept."""
        with user_errors("page set-up"):
            choices = self.registry.choices()
            default = self.registry.default()
            models = [gr.Dropdown(choices=choices, value=default) for _ in range(1 + MAX_RUNS)]
            *settings, info = self.model_settings(default)
            kept = [new if old in (None, "") else gr.skip() for old, new in zip(typed, settings, strict=True)]
            return (*models, *kept, info)

    # --- Generate tab ----------------------------------------------------------------------------------

    def model_settings(self, model: str | None):
        """The chosen model's defaults: schedule, guidance, frames, height, width, shared noise, and a line
        about it."""
        try:
            key = self.registry.resolve(model)
            card = self.registry.card(key)
        except Exception as err:
            gr.Warning(str(err), title="Model")
            return (gr.skip(),) * 6 + (f"**Warning:** {err}",)
        kind = "pyramidal (finetuned for the pyramid)" if card.pyramidal else "not pyramidal-finetuned"
        info = (
            f"**{Path(key).name}**: {self.registry.description(key)} · {kind} · default {card.schedule} at "
            f"{card.frames}×{card.height}×{card.width}, guidance {card.guidance:g}, {card.fps} fps"
        )
        frames, heights, widths = self.shape_choices(key, card)
        return (
            card.schedule,
            gr.update(value=card.guidance),
            gr.Dropdown(choices=frames, value=card.frames),
            gr.Dropdown(choices=heights, value=card.height),
            gr.Dropdown(choices=widths, value=card.width),
            gr.update(value=card.shared_noise),
            info,
        )

    def shape_choices(self, key: str, card: ModelCard) -> tuple[list[int], list[int], list[int]]:
        """Frames, heights and widths to offer for a model: valid for its pyramid and, with the card's
        other defaults and schedule, inside this host's budget (its compute where the transformer's
        size can be read without loading it)."""
        from engine.flops import size_from_name_or_folder
        from engine.schedule import parse_schedule

        budget, n = self.budget, card.num_stages
        try:
            size = size_from_name_or_folder(self.registry.locate(key))
        except ValueError:  # random-tiny, a hub id: checked when the request runs
            size = None
        default = {"frames": card.frames, "height": card.height, "width": card.width}

        def fits(**shape) -> bool:
            return not budget.problem(
                **{**default, **shape},
                counts=parse_schedule(card.schedule, n),
                size=size,
                cfg=card.guidance != 1.0,
                boundaries=card.boundaries,
            )

        return (
            [f for f in frame_choices(n, budget.max_frames) if fits(frames=f)],
            [h for h in size_choices(n, budget.max_side) if fits(height=h)],
            [w for w in size_choices(n, budget.max_side) if fits(width=w)],
        )

    def check_schedule(self, schedule: str | None, model: str | None) -> str:
        """Inline check of a typed schedule (the Generate button refuses invalid ones with the same text)."""
        from engine.schedule import parse_schedule, steps_label

        try:
            stages = self.registry.card(self.registry.resolve(model)).num_stages
        except Exception:
            stages = 3
        if not schedule:
            return "empty: the model's default schedule will be used"
        try:
            counts = parse_schedule(schedule, stages)
        except ValueError as err:
            return f"**Invalid:** {err}"
        if all(c == 0 for c in counts[:-1]):
            return f"OK: plain sampler: {steps_label(counts[-1])} at full resolution"
        return f"OK: {' + '.join(map(str, counts))} = {steps_label(sum(counts))}, low → high resolution"

    def surprise(self) -> str:
        return surprise_prompt()

    def generate(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        seed: float | None = None,
        randomize_seed: bool = True,
        model: str | None = None,
        schedule: str | None = None,
        guidance: float | None = None,
        frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        wavelet: str | None = None,
        shared_noise: float | None = None,
        request: gr.Request = None,
        progress: gr.Progress = gr.Progress(),
    ):
        """Text → video, streamed: one update per stage (its preview decoded at the stage's resolution),
        then one with the final H.264 mp4. Empty model/schedule/guidance/frames/height/width/shared noise
        mean the model's defaults; `randomize_seed` draws a new seed (returned in the 4th output).

        Returns (stage previews [(png, caption)], mp4 path or None, Markdown readout, seed used,
        details JSON).
        """
        values = GenerateParams.from_call(locals())
        with user_errors("generation"):
            key = self.registry.resolve(values.model)
            params = self._params(values)
            for view in self._stream(key, params, request, progress):
                yield view.gallery(), view.video, view.readout(), view.request.seed, view.details()

    def stop(self, request: gr.Request) -> str:
        """Stop button: flag this session's runs (each stops within one denoising step and frees its model)
        and say so here. gradio's own `cancels=` on the button withdraws queued requests and drops any
        late output, so the message cannot come from the cancelled run itself. Returns the readout."""
        n = self.cancels.cancel(request.session_hash if request else None)
        if n:
            message = "The generation was cancelled; nothing more will be produced for it."
            gr.Warning(message, title="Cancelled")
        else:
            message = "Nothing was generating; a request still waiting in the queue was withdrawn."
            gr.Info(message, title="Stop")
        return f"**Stopped.** {message}"

    def _params(self, v: GenerateParams) -> dict:
        """Widget values → run_generation keyword arguments (None: the model's default)."""
        from engine.pipeline import random_seed

        if not isinstance(v.prompt, str) or not v.prompt.strip():
            raise ValueError(
                "the prompt is empty; describe the video, e.g. 'a red circle moving left on a "
                "black background' (or press “surprise me”)"
            )
        for name, text in (
            ("negative prompt", v.negative_prompt),
            ("schedule", v.schedule),
            ("wavelet", v.wavelet),
        ):
            _check_text(text, name)
        return {
            "prompt": str(v.prompt),
            "negative_prompt": v.negative_prompt or None,  # empty: the model's default negative prompt
            "seed": random_seed() if v.randomize_seed else _optional_number(v.seed, "seed", whole=True),
            "schedule": (v.schedule or "").strip() or None,
            "guidance": _optional_number(v.guidance, "guidance"),
            "frames": _optional_number(v.frames, "frames", whole=True),
            "height": _optional_number(v.height, "height", whole=True),
            "width": _optional_number(v.width, "width", whole=True),
            "wavelet": v.wavelet or "haar",
            "shared_noise": _optional_number(v.shared_noise, "shared noise"),
        }

    def _stream(
        self,
        key: str,
        params: dict,
        request: gr.Request | None,
        progress: gr.Progress,
        label: str = "",
        step_offset: int = 0,
        total_steps: int | None = None,
    ) -> Iterator[RunView]:
        """Run one generation in the model's slot; report steps to the progress bar, check the Stop flag
        after every step, and yield each RunView that has something new to show."""
        from app.runs import Step, memory_line, run_generation

        event = QueueEvent()
        out_dir = self.store.new_request_dir("run")  # a name only: created once the request is valid
        progress(0, desc=f"{label}loading {key}")

        def waiting() -> None:
            progress(0, desc=f"{label}waiting: {key} is busy with another request")

        try:
            with (
                self.cancels.run(request.session_hash if request else None, event) as cancelled,
                self.registry.slot(key, cancelled, waiting),
            ):
                self.registry.load(key)
                run = run_generation(
                    key,
                    str(out_dir),
                    **params,
                    budget=self.budget,
                    accepted_at=event.accepted_at,
                    memory=self.registry.memory,
                )
                with closing(run) as stream:
                    for item in stream:
                        if cancelled():
                            raise RunCancelled()
                        if isinstance(item, Step):
                            total = total_steps or item.total
                            progress(
                                (step_offset + item.done, total), desc=f"{label}{item.desc}", unit="steps"
                            )
                        elif item.phase == "start":  # before sampling: the memory it should take
                            self._warn_words(key, item)
                            progress(
                                0, desc=f"{label}{memory_line(item.memory, brief=True)}".replace("**", "")
                            )
                        else:
                            yield item
        except BaseException:  # refused, failed, stopped, or the client went away (GeneratorExit)
            self.store.discard_partial(out_dir)
            raise

    @staticmethod
    def _warn_words(key: str, view: RunView) -> None:
        """Unknown words; for the embedded zoo (trained on the procedural world), known words in a role
        the world does not have (they are drawn as something else)."""
        from engine.zoo import zoo_models

        if view.unknown_words:
            gr.Warning(
                f"{key} does not know these words and ignores them: {', '.join(view.unknown_words)}",
                title="Unknown words",
            )
        elif key in zoo_models() and (note := grammar_note(view.request.prompt)):
            gr.Warning(
                f"{key} learnt the procedural world's captions, which read this prompt so: {note}",
                title="Prompt outside the world's grammar",
            )

    # --- Compare tab -----------------------------------------------------------------------------------

    def compare(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        seed: float | None = None,
        randomize_seed: bool = True,
        n_runs: int = 2,
        schedule_1: str | None = None,
        model_1: str | None = None,
        schedule_2: str | None = None,
        model_2: str | None = None,
        schedule_3: str | None = None,
        model_3: str | None = None,
        schedule_4: str | None = None,
        model_4: str | None = None,
        request: gr.Request = None,
        progress: gr.Progress = gr.Progress(),
    ):
        """2–4 runs of one prompt with one seed (so they share their noise), one after the other.

        Each run is a schedule and a model (empty: the model's default schedule / the default model); sizes
        and guidance are each model's defaults. Returns (summary Markdown, list of one details dict per run,
        then per slot 1–4: stage previews, mp4 path, Markdown readout); unused slots are empty.
        """
        from engine.schedule import parse_schedule

        values = CompareParams.from_call(locals())
        with user_errors("comparison"):
            n = _optional_number(values.n_runs, "number of runs", whole=True)
            if n is None or not 2 <= n <= MAX_RUNS:
                raise ValueError(f"compare needs 2 to {MAX_RUNS} runs, got {values.n_runs!r}")
            params = self._params(values.shared())
            plans, steps = [], []
            for i, (schedule, model) in enumerate(
                values.slots()[:n]
            ):  # check every run before starting the first
                try:
                    _check_text(schedule, "schedule")
                    key = self.registry.resolve(model)
                    card = self.registry.card(key)
                    text = (schedule or "").strip() or card.schedule
                    counts = parse_schedule(text, card.num_stages)
                except ValueError as err:
                    raise ValueError(f"run {i + 1}: {err}") from None
                plans.append((key, {**params, "schedule": text}))
                steps.append(sum(counts))

            outputs: list = [None, None, ""] * MAX_RUNS
            done: list[RunView] = []

            def page(current: RunView | None = None):
                views = done + ([current] if current is not None else [])
                return (compare_summary(views), [v.details() for v in done], *outputs)

            for i, (key, run_params) in enumerate(plans):
                label = f"run {i + 1}/{n} · "
                view = None
                for view in self._stream(
                    key, run_params, request, progress, label, sum(steps[:i]), sum(steps)
                ):
                    outputs[3 * i : 3 * i + 3] = [view.gallery(), view.video, view.brief()]
                    if view.phase != "final":
                        yield page(view)
                done.append(view)
                yield page()

    @staticmethod
    def compare_seed(runs: list[dict] | None):
        """The seed the comparison used (one for all runs), for the Compare tab's seed box."""
        return runs[0]["seed"] if runs else gr.skip()

    def quick_compare(self, name: str):
        """Set up a one-click comparison: 2 runs with the preset's schedules on the current default model."""
        first, second = QUICK_COMPARES[name]
        return 2, first, second

    # --- Learn tab -------------------------------------------------------------------------------------

    def learn_sigma(self, schedule: str, shift: float):
        from app.learn import sigma_curve

        with user_errors("plot"):
            data = sigma_curve(schedule, _optional_number(shift, "shift") or 1.0)
            return data, data

    def learn_jump(self, sigma_end: float, wavelet: str, seed: float | None):
        from app.learn import jump_panels

        with user_errors("jump demo"):
            sigma = _optional_number(sigma_end, "e")
            seed = _optional_number(seed, "seed", whole=True) or 0
            return jump_panels(1 / 3 if sigma is None else sigma, wavelet or "haar", seed)

    def learn_flops(self, spec: str, model: str, frames: float, height: float, width: float) -> str:
        from app.learn import compute_table

        with user_errors("compute table"):
            table, _ = compute_table(
                spec,
                model,
                _optional_number(frames, "frames", whole=True),
                _optional_number(height, "height", whole=True),
                _optional_number(width, "width", whole=True),
            )
            return table

    @staticmethod
    def wavelets():
        from engine.transitions import available_wavelets

        names = available_wavelets()
        return gr.Dropdown(choices=names, value="haar"), gr.Dropdown(choices=names, value="haar")


def compare_summary(views: list[RunView]) -> str:
    """Markdown table of the runs so far: seconds, TFLOPs, share of the plain 50-step cost."""
    if not views:
        return ""
    lines = [
        "| run | model | schedule | seed | seconds | TFLOPs | % of 0-0-50 |",
        "|---|---|---|---|---|---|---|",
    ]
    from app.runs import format_tflops

    for i, v in enumerate(views):
        secs = f"{v.elapsed_s:.2f}" + ("" if v.phase == "final" else " …")
        lines.append(
            f"| {i + 1} | {v.model} | {v.request.schedule} | {v.request.seed} | {secs} "
            f"| {format_tflops(v.total_tflops)} | {100 * v.cost_ratio:.1f}% |"
        )
    return "\n".join(lines)
