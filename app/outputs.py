"""Per-request output folders under one root, deleted once they are older than a time-to-live.

Every request writes into its own fresh folder, so two users (or two runs of one user) never overwrite
each other's previews or videos, and a download link always points at the run that made it. A folder is
only named when the request arrives and created once the request is valid (a refused request leaves
nothing); a run that fails or is stopped leaves no partial file and no empty folder; start-up sweeps what
a killed server left behind.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from pathlib import Path

PARTIAL = ".partial"  # engine.video.write_mp4 writes `<name>.partial.mp4` and renames it when complete


class OutputStore:
    """Hands out unique request folders and prunes old ones (each time a folder is handed out)."""

    def __init__(self, root: str | Path, ttl_s: float = 3600.0) -> None:
        self.root = Path(root)
        self.ttl_s = float(ttl_s)
        self._lock = threading.Lock()

    def new_request_dir(self, tag: str = "run") -> Path:
        """A fresh name `<root>/<time>-<tag>-<random>` for one request's files; the folder itself is
        created by whoever writes the first file (after the request is validated)."""
        self.prune()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.root / f"{stamp}-{tag}-{uuid.uuid4().hex[:10]}"

    def discard_partial(self, folder: Path) -> None:
        """After a failed or stopped run: delete its unfinished files, and the folder if nothing is left."""
        if folder.is_dir():
            for path in folder.glob(f"*{PARTIAL}.*"):
                path.unlink(missing_ok=True)
            _remove_if_empty(folder)

    def sweep(self) -> list[Path]:
        """At start-up: what a killed server left behind, then expired folders. A request folder without a
        finished video (previews of a run that never ended, an unfinished `.partial.mp4`, nothing at all)
        belongs to a session that no longer exists: it is removed whole. Stray unfinished files elsewhere
        under the root go too. Returns what was removed."""
        removed = self.prune()
        if not self.root.is_dir():
            return removed
        with self._lock:
            for folder in sorted(self.root.iterdir()):
                if folder.is_dir() and not _finished_videos(folder):
                    shutil.rmtree(folder, ignore_errors=True)
                    removed.append(folder)
            for path in sorted(self.root.rglob(f"*{PARTIAL}.*")):
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed

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


def _finished_videos(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.mp4") if PARTIAL not in p.name]


def _remove_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()  # fails unless empty
    except OSError:
        return False
    return True
