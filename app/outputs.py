"""Per-request output folders under one root, deleted once they are older than a time-to-live.

Every request writes into its own fresh folder, so two users (or two runs of one user) never overwrite
each other's previews or videos, and a download link always points at the run that made it.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path


class OutputStore:
    """Hands out unique request folders and prunes old ones (each time a folder is handed out)."""

    def __init__(self, root: str | Path, ttl_s: float = 3600.0) -> None:
        self.root = Path(root)
        self.ttl_s = float(ttl_s)
        self._lock = threading.Lock()

    def new_request_dir(self, tag: str = "run") -> Path:
        """A fresh, empty folder `<root>/<time>-<tag>-<random>` for one request's files."""
        self.prune()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = self.root / f"{stamp}-{tag}-{uuid.uuid4().hex[:10]}"
        folder.mkdir(parents=True, exist_ok=False)
        return folder

    def prune(self, now: float | None = None) -> list[Path]:
        """Delete request folders whose last change is older than the time-to-live; returns them."""
        now = time.time() if now is None else now
        removed = []
        with self._lock:
            if not self.root.is_dir():
                return removed
            for folder in self.root.iterdir():
                try:
                    old = folder.is_dir() and now - folder.stat().st_mtime > self.ttl_s
                except FileNotFoundError:  # removed by a concurrent prune in another process
                    continue
                if old:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
        return removed
