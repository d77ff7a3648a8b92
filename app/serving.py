"""Serving plumbing shared by the handlers: cancellation per browser session, user-facing errors, and the
ZeroGPU wrapper (applied only where the `spaces` package exists)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import gradio as gr

log = logging.getLogger("pyramidalwan.app")
F = TypeVar("F", bound=Callable)


class RunCancelled(Exception):
    """The user stopped the run."""


class CancelRegistry:
    """Cancel flags of the runs in progress, by gradio session: the Stop button sets its session's flags
    and each run checks its flag after every denoising step (gradio's own cancel can only stop a
    generator between two yields, i.e. between stages)."""

    def __init__(self) -> None:
        self._flags: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def run(self, session: str | None) -> Iterator[Callable[[], bool]]:
        """Register one run for `session`; yields a function telling whether it has been cancelled."""
        flag = threading.Event()
        key = session or ""
        with self._lock:
            self._flags.setdefault(key, set()).add(flag)
        try:
            yield flag.is_set
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


def gpu(fn: F, duration: int = 120) -> F:
    """`spaces.GPU(duration=…)(fn)` on a Hugging Face ZeroGPU Space, `fn` unchanged everywhere else."""
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)
