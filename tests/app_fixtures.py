"""Helpers shared by the app tests: launch the Studio in-process on a free port, and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from app.config import AppConfig
from app.ui import Studio, build_studio

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red circle moving left on a black background"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_studio(folder: Path, model_dirs: list[str] | None = None, **config) -> Iterator[Studio]:
    """A launched app (not blocking) whose outputs go under `folder`; closed afterwards."""
    settings = {"warm_up": False, **config}
    cfg = AppConfig(model_dirs=list(model_dirs or []), outputs_root=folder / "outputs", **settings)
    studio = build_studio(cfg).launch(host="127.0.0.1", port=free_port(), block=False, quiet=True)
    try:
        yield studio
    finally:
        studio.close()


def chromium_path() -> str:
    """Debian's Chromium (installed by .ci/run); a clear failure, not a skip, when it is missing."""
    path = shutil.which(CHROMIUM) or shutil.which("chromium")
    if not path:
        raise AssertionError(
            f"Chromium not found at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(the browser test drives a real browser and must not be skipped)"
        )
    return path
