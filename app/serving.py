"""Serving plumbing shared by the handlers: cancellation (Stop button, gradio_client's cancel, a dropped
connection), user-facing errors, and the ZeroGPU wrapper (applied only where the `spaces` package exists)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import gradio as gr

log = logging.getLogger("pyramidalwan.app")
F = TypeVar("F", bound=Callable)


class RunCancelled(Exception):
    """The user stopped the run."""


class QueueEvent:
    """The gradio queue event the current handler serves: when it was accepted, and whether the client
    has given up on it.

    gradio stops a generator only between two yields (our handlers yield once per stage) and its /cancel
    waits for the running step to return, so a cancelled run would hold its model to the end of the stage.
    Checking this after every denoising step stops it within one step, whatever the client: the page's
    Stop (`cancels=`), gradio_client's `Job.cancel()` (both cancel the event's task) or a closed
    connection (gradio marks the event not alive). Outside gradio's queue (tests, scripts) it is inert.
    """

    def __init__(self) -> None:
        from gradio.context import LocalContext

        self.event = self.task = None
        blocks, event_id = LocalContext.blocks.get(None), LocalContext.event_id.get(None)
        queue = getattr(blocks, "_queue", None)
        if queue is None or event_id is None:
            return
        self.event = next((e for job in queue.active_jobs if job for e in job if e._id == event_id), None)
        suffix = f"<gradio-sep>{event_id}"
        try:  # the task gradio runs the event in; asyncio's task list is read on the event loop's thread
            import anyio.from_thread

            tasks = anyio.from_thread.run_sync(asyncio.all_tasks)
        except RuntimeError:  # not in a worker thread of gradio's event loop
            return
        self.task = next((t for t in tasks if t.get_name().endswith(suffix)), None)

    @property
    def accepted_at(self) -> float:
        """time.monotonic() when the request entered the queue (now, outside gradio)."""
        return self.event.enqueue_time if self.event is not None else time.monotonic()

    def given_up(self) -> bool:
        if self.event is not None and not self.event.alive:
            return True
        return self.task is not None and (self.task.done() or self.task.cancelling() > 0)


class CancelRegistry:
    """Cancel flags of the runs in progress, by gradio session: the Stop button sets its session's flags;
    each run checks its flag (and its queue event, see QueueEvent) after every denoising step."""

    def __init__(self) -> None:
        self._flags: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def run(self, session: str | None, event: QueueEvent | None = None) -> Iterator[Callable[[], bool]]:
        """Register one run for `session`; yields a function telling whether it has been cancelled."""
        flag = threading.Event()
        key = session or ""
        with self._lock:
            self._flags.setdefault(key, set()).add(flag)
        try:
            yield lambda: flag.is_set() or (event is not None and event.given_up())
        finally:
            with self._lock:
                self._flags.get(key, set()).discard(flag)
                if not self._flags.get(key):
                    self._flags.pop(key, None)

    def cancel(self, session: str | None) -> int:
        """Cancel every run of `session`; returns how many were running."""
        with self._lock:
            flags = list(self._flags.get(session or "", ()))
        for flag in flags:
            flag.set()
        return len(flags)


@contextmanager
def user_errors(what: str = "generation") -> Iterator[None]:
    """Turn the engine's readable errors into gr.Error (shown in the page and returned to API clients);
    anything unexpected is logged with its traceback on the server and reported in one line."""
    from engine.models import ModelLoadError  # imported lazily, see app/registry.py

    try:
        yield
    except gr.Error:
        raise
    except RunCancelled:
        raise gr.Error(
            f"The {what} was cancelled; nothing more will be produced for it.",
            title="Cancelled",
            print_exception=False,
        ) from None
    except (ValueError, ModelLoadError) as err:
        raise gr.Error(_capitalise(str(err)), title="Cannot run this", print_exception=False) from None
    except Exception as err:
        log.exception("%s failed", what)
        raise gr.Error(
            f"The {what} failed unexpectedly ({type(err).__name__}: {err}). The server log has the details.",
            title="Internal error",
            print_exception=False,  # logged above, with the traceback
        ) from None


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


# ZeroGPU time asked for one request (`zero_gpu_seconds`): a conservative effective throughput, half the
# paper's H100 figure at full resolution (251.8 TFLOPs in 631.8 ms ≈ 400 TFLOP/s; the small low stages and
# slower cards reach less), the VAE decode by pixel count, a fixed part (weights to the GPU, text encoder,
# mp4), and a safety factor; bounded to what a ZeroGPU call may hold.
GPU_TFLOPS_PER_S = 200.0
GPU_DECODE_S_PER_PIXEL = 5e-7  # ~15 s for 81 × 448 × 832
GPU_FIXED_S = 10.0
GPU_SAFETY = 1.25
GPU_SECONDS_RANGE = (15, 300)


def zero_gpu_seconds(tflops: float, pixels: int) -> int:
    """Seconds of GPU to reserve for a request of `tflops` transformer TFLOPs (CFG included) decoding to
    `pixels` = frames × height × width: the duration a ZeroGPU Space asks `spaces.GPU` for."""
    seconds = GPU_SAFETY * (GPU_FIXED_S + tflops / GPU_TFLOPS_PER_S + pixels * GPU_DECODE_S_PER_PIXEL)
    low, high = GPU_SECONDS_RANGE
    return int(min(high, max(low, math.ceil(seconds))))


def gpu(fn: F | None = None, *, duration: int | Callable[..., int] = 120):
    """`spaces.GPU(duration=…)(fn)` on a Hugging Face ZeroGPU Space, `fn` unchanged everywhere else.

    `duration` is seconds, or a function of the same arguments as `fn` returning them (ZeroGPU's dynamic
    duration: a short request does not hold a GPU slot sized for the longest). Usable bare (`@gpu`) or
    with arguments (`@gpu(duration=…)`)."""
    if fn is None:
        return lambda f: gpu(f, duration=duration)
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)
