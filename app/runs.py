"""One generation as the page shows it: a preview per stage, decoded at that stage's own resolution as
soon as the stage ends, then the final H.264 mp4; plus the readout (seconds per stage, TFLOPs, cost
relative to the same model's plain 50-step sampler, and the engine's estimate of the request's peak device
memory in the app's memory mode, engine/memory.py).

`run_generation` is the one function that touches the GPU (wrapped with `spaces.GPU` on ZeroGPU, for a
slot sized from the request's compute by `gpu_seconds`), so it
takes and yields only plain, picklable values: `Step` after every denoising step and a `RunView` when
something new is on screen. Queueing, cancellation and error messages live in the handlers (app/ui.py).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from app.serving import gpu, zero_gpu_seconds
from engine.flops import TERA, schedule_flops
from engine.flow import plain_counts
from engine.limits import Budget
from engine.memory import MemoryMode, PeakEstimate
from engine.models import load_model
from engine.pipeline import Request, generate, make_request, stage_table
from engine.schedule import format_schedule, steps_label
from engine.video import contact_sheet, save_png, to_uint8_frames, write_mp4

PREVIEW_HEIGHT = 128  # every stage's frames are shown at this height: low stages look blocky, as they are
PREVIEW_FRAMES = 5  # the same count for every stage, so every strip has the same shape


@dataclass
class Step:
    """Progress after one denoising step."""

    done: int
    total: int
    desc: str


@dataclass
class StagePreview:
    stage: int
    image: str  # contact-sheet PNG of the stage's x0 estimate, decoded at the stage's resolution
    caption: str


@dataclass
class RunView:
    """Everything the page shows about one run; `phase` is "start", "stage" (a preview was added) or
    "final" (the mp4 is written)."""

    model: str
    request: Request
    rows: list[dict]  # engine.pipeline.stage_table rows; "seconds" appears as stages finish
    plain_tflops: float
    unknown_words: list[str]
    memory: dict = field(default_factory=dict)  # memory_summary(): estimated peak device memory and mode
    phase: str = "start"
    previews: list[StagePreview] = field(default_factory=list)
    video: str | None = None
    first_preview_s: float | None = None
    elapsed_s: float = 0.0
    engine_seconds: float | None = None

    @property
    def total_tflops(self) -> float:
        return sum(r["tflops"] for r in self.rows)

    def gallery(self) -> list[tuple[str, str]]:
        return [(p.image, p.caption) for p in self.previews]

    def readout(self) -> str:
        """Markdown: a row per stage (filled in as stages finish), then totals, cost ratio, warnings."""
        r = self.request
        table = [
            "| stage | steps | latent T×H×W | pixels F×H×W | σ | seconds | TFLOPs |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            secs = f"{row['seconds']:.2f}" if "seconds" in row else "…"
            table.append(
                f"| {row['stage']} | {row['steps']} | {_dims(row['latent'])} | {_dims(row['pixels'])} "
                f"| {row['sigma_start']:.3f} → {row['sigma_end']:.3f} | {secs} "
                f"| {format_tflops(row['tflops'])} |"
            )
        plain = format_schedule(plain_counts(len(r.counts)))
        cfg = " with CFG (2 forwards per step)" if r.guidance != 1.0 else ""
        status = "done" if self.phase == "final" else "running"
        notes = [
            f"**{r.schedule}** on **{self.model}** · seed **{r.seed}** · {status} · {self.elapsed_s:.2f} s",
            f"**{format_tflops(self.total_tflops)} TFLOPs**{cfg} = **{100 * self.cost_ratio:.1f}%** of this "
            f"model's {plain} ({format_tflops(self.plain_tflops)} TFLOPs)",
        ]
        if self.memory:
            notes.append(memory_line(self.memory))
        if self.first_preview_s is not None:
            notes.append(f"first stage preview after {self.first_preview_s:.2f} s")
        if self.unknown_words:
            notes.append(
                f"**Warning:** words this model does not know (ignored): {', '.join(self.unknown_words)}"
            )
        return "\n".join(table) + "\n\n" + "\n\n".join(notes)

    def brief(self) -> str:
        """A few lines for a narrow column (Compare tab): seconds per stage, total, TFLOPs, cost ratio."""
        r = self.request
        secs = " / ".join(f"{row['seconds']:.2f}" if "seconds" in row else "…" for row in self.rows)
        status = "done" if self.phase == "final" else "running"
        return (
            f"**{r.schedule}** on **{self.model}** · seed {r.seed} · {status}\n\n"
            f"seconds per stage (low → high): {secs} · **{self.elapsed_s:.2f} s** in all\n\n"
            f"**{format_tflops(self.total_tflops)} TFLOPs** = **{100 * self.cost_ratio:.1f}%** of "
            f"{format_schedule(plain_counts(len(r.counts)))}"
            + (f"\n\n{memory_line(self.memory, brief=True)}" if self.memory else "")
        )

    @property
    def cost_ratio(self) -> float:
        return self.total_tflops / self.plain_tflops if self.plain_tflops else 0.0

    def details(self) -> dict:
        """JSON for API clients: the request, per-stage rows, timings and costs."""
        r = self.request
        return {
            "model": self.model,
            "phase": self.phase,
            "prompt": r.prompt,
            "seed": r.seed,
            "schedule": r.schedule,
            "frames": r.geometry.frames,
            "height": r.geometry.height,
            "width": r.geometry.width,
            "guidance": r.guidance,
            "wavelet": r.wavelet,
            "shared_noise": r.shared_noise,
            "stages": self.rows,
            "previews": [{"stage": p.stage, "caption": p.caption} for p in self.previews],
            "first_preview_seconds": self.first_preview_s,
            "elapsed_seconds": round(self.elapsed_s, 4),
            "engine_seconds": self.engine_seconds,
            "total_tflops": self.total_tflops,
            "plain_tflops": self.plain_tflops,
            "ratio_to_plain": self.cost_ratio,
            "memory_estimate_gb": self.memory.get("estimate_gb"),
            "memory_mode": self.memory.get("mode"),
            "unknown_words": self.unknown_words,
            "video": Path(self.video).name if self.video else None,  # no server paths in API results
        }


def format_tflops(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def format_gb(value: float) -> str:
    """Bytes in GB, three significant digits; below 0.1 GB in MB (the tiny models' estimates)."""
    return f"{value:.3g} GB" if value >= 0.1 else f"{value * 1e3:.3g} MB"


def memory_summary(estimate: PeakEstimate, mode: MemoryMode, device: str) -> dict:
    """What the readout and the API report about memory: the engine's per-phase estimate (GB, unrounded:
    the tiny models' are a few MB), the device it is for and the memory mode the model was loaded in."""
    return {
        "device": device,
        "estimate_gb": {**asdict(estimate), "peak_gb": estimate.peak_gb},
        "mode": asdict(mode),
    }


def memory_line(memory: dict, brief: bool = False) -> str:
    """One Markdown line: estimated peak device memory (per phase unless `brief`) and the memory mode."""
    est, mode = memory["estimate_gb"], memory["mode"]
    head = f"estimated peak {memory['device']} memory **{format_gb(est['peak_gb'])}**"
    if brief:
        return head
    switches = [
        what
        for name, what in (
            ("text_encoder_cpu", "text encoder on CPU"),
            ("vae_tiling", "tiled VAE"),
            ("vae_slicing", "sliced VAE"),
        )
        if mode[name]
    ]
    return (
        f"{head} (text {format_gb(est['text_gb'])}, sampling {format_gb(est['transformer_gb'])}, "
        f"decoding {format_gb(est['decode_gb'])}; offload {mode['offload']}"
        f"{''.join(', ' + s for s in switches)}; an estimate, engine/memory.py)"
    )


def _dims(shape) -> str:
    return "×".join(str(int(v)) for v in shape)


def plain_tflops(request: Request, size) -> float:
    """TFLOPs of the same model's plain 50-step sampler at the request's size and guidance."""
    counts = plain_counts(request.geometry.num_stages)
    return sum(schedule_flops(request.geometry, counts, size, cfg=request.guidance != 1.0)) / TERA


def preview_sheet(
    frames: np.ndarray, height: int = PREVIEW_HEIGHT, max_frames: int = PREVIEW_FRAMES
) -> np.ndarray:
    """A one-row strip of evenly spaced frames, all scaled to `height` (nearest when enlarging, so a
    low-resolution stage shows its real pixels; area-averaged when shrinking a large video)."""
    idx = np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(int)
    _, h, w, _ = frames.shape
    size = (max(1, round(w * height / h)), height)
    method = Image.Resampling.NEAREST if height >= h else Image.Resampling.BOX
    picked = np.stack([np.asarray(Image.fromarray(frames[i]).resize(size, method)) for i in idx])
    return contact_sheet(picked, columns=len(picked), max_frames=len(picked), min_height=1)


def stage_caption(row: dict, seconds: float) -> str:
    return (
        f"stage {row['stage']} · latent {_dims(row['latent'])} · {_dims(row['pixels'])} px · "
        f"{steps_label(row['steps'])} · σ {row['sigma_start']:.3f}→{row['sigma_end']:.3f} · {seconds:.2f} s"
    )


def gpu_seconds(*args, **kwargs) -> int:
    """The ZeroGPU duration for a `run_generation` call with these arguments: its transformer TFLOPs and
    pixel count by the FLOPs model (`app.serving.zero_gpu_seconds`). A request the engine will refuse
    gets the shortest duration (it fails before sampling)."""
    call = GENERATION_SIGNATURE.bind(*args, **kwargs)
    call.apply_defaults()
    a = call.arguments
    model = load_model(a["model_key"], memory=a["memory"])
    settings = (
        "negative_prompt",
        "schedule",
        "frames",
        "height",
        "width",
        "guidance",
        "wavelet",
        "shared_noise",
        "budget",
    )
    try:
        request = make_request(model, a["prompt"], seed=0, **{k: a[k] for k in settings})
    except ValueError:
        return zero_gpu_seconds(0.0, 0)
    tflops = sum(schedule_flops(request.geometry, request.counts, model.size, cfg=request.guidance != 1.0))
    frames, height, width = request.geometry.full.pixel_shape
    return zero_gpu_seconds(tflops / TERA, frames * height * width)


def run_generation(
    model_key: str,
    out_dir: str,
    prompt: str,
    negative_prompt: str | None = None,
    seed: int | None = None,
    schedule: str | None = None,
    guidance: float | None = None,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    wavelet: str = "haar",
    shared_noise: float | None = None,
    budget: Budget | None = None,
    accepted_at: float | None = None,
    memory: MemoryMode | None = None,
) -> Iterator[Step | RunView]:
    """Validate, sample and export one video, yielding `Step`s and `RunView`s (see module docstring).

    None means the model's default (its card); a seed of None draws a random one (reported back).
    `out_dir` is created only once the request is valid. Times count from `accepted_at` (time.monotonic()
    when the request was accepted; default now), so they match what the user waits. `memory`: the memory
    mode the model is loaded in (the app's start-up options; None: the engine's default), reported with
    the request's estimated peak device memory.
    Raises ValueError / engine.models.ModelLoadError with messages meant for users.
    """
    start = time.monotonic() if accepted_at is None else accepted_at
    model = load_model(model_key, memory=memory)
    request = make_request(
        model,
        prompt,
        negative_prompt=negative_prompt,
        schedule=schedule,
        frames=frames,
        height=height,
        width=width,
        guidance=guidance,
        seed=seed,
        wavelet=wavelet,
        shared_noise=shared_noise,
        budget=budget,
    )
    rows = stage_table(request, model)
    by_stage = {row["stage"]: row for row in rows}
    view = RunView(
        model=model.name,
        request=request,
        rows=rows,
        plain_tflops=plain_tflops(request, model.size),
        unknown_words=model.unknown_words(request.prompt),
        memory=memory_summary(model.estimate_peak(request), model.memory, model.device.type),
    )
    yield view
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    last = request.geometry.num_stages - 1
    last_seconds = 0.0

    def add_preview(stage: int, frames_u8: np.ndarray, seconds: float) -> None:
        row = by_stage[stage]
        row["seconds"] = round(seconds, 4)
        image = save_png(preview_sheet(frames_u8), out / f"stage{stage}.png")
        view.previews.append(StagePreview(stage, str(image), stage_caption(row, seconds)))
        view.phase = "stage"
        view.elapsed_s = time.monotonic() - start
        if view.first_preview_s is None:
            view.first_preview_s = round(view.elapsed_s, 4)

    for event in generate(model, request):
        if event.kind == "step":
            desc = f"stage {event.stage} · step {event.step}/{event.stage_steps} · σ {event.sigma:.3f}"
            yield Step(event.done_steps, event.total_steps, desc)
        elif event.kind == "stage_end" and event.stage < last:
            add_preview(event.stage, to_uint8_frames(model.decode(event.x0)), event.stage_seconds)
            yield view
        elif event.kind == "stage_end":
            last_seconds = event.stage_seconds  # its x0 is the final latent, which "done" decodes once
        elif event.kind == "done":
            result = event.result
            view.engine_seconds = round(result.total_seconds, 4)
            add_preview(last, result.frames, last_seconds)
            yield view
            name = f"{request.schedule}-seed{request.seed}.mp4"
            view.video = str(write_mp4(result.frames, out / name, fps=model.card.fps))
            view.phase = "final"
            view.elapsed_s = time.monotonic() - start
            yield view


GENERATION_SIGNATURE = inspect.signature(run_generation)  # what gpu_seconds binds its arguments to
run_generation = gpu(run_generation, duration=gpu_seconds)
