"""Load probe: drive the app through gradio_client with many clients at once and report what happened.

    .venv/bin/python -m bench.load --clients 20 --requests 10 --json

starts the app in a subprocess (its own port and outputs folder; or drives `--url` with `--pid` and
`--outputs` for RSS and orphans), then each client sends its requests one after another: a mix of
generations, comparisons, generations it cancels after the first stage, and a slice of bad inputs.
Reports completed / refused (bad input or queue full: a clear error) / cancelled / failed (anything
else), latency p50 / p95 of the completed requests, the server's RSS before and after, and the orphan
files (unfinished videos, empty request folders) left in the outputs folder.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from app.outputs import PARTIAL

PROMPT = "a red circle moving left on a black background"
BAD_INPUTS = [  # each must come back as a one-line error
    {"schedule": "20-x-10"},
    {"frames": 10001, "height": 8192, "width": 8192},
    {"seed": 1.5, "randomize_seed": False},
    {"guidance": 99},
    {"model": "../../etc/passwd"},
    {"prompt": ""},
]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def rss_mb(pid: int | None) -> float | None:
    """Resident memory of a process in MB (Linux /proc), None when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, TypeError):
        return None
    return None


def orphans(root: Path | None) -> list[str]:
    """Unfinished videos and empty request folders under the outputs root."""
    if root is None or not root.is_dir():
        return []
    found = [str(p) for p in root.rglob(f"*{PARTIAL}.*")]
    return found + [str(p) for p in root.iterdir() if p.is_dir() and not any(p.iterdir())]


@contextmanager
def launched_app(outputs: Path, port: int, queue_size: int):
    """`app.py` in a subprocess, waited for until it answers; stopped afterwards."""
    import httpx

    cmd = [sys.executable, "app.py", "--port", str(port), "--outputs", str(outputs), "--no-warm-up"]
    cmd += ["--queue-size", str(queue_size)]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {proc.returncode} before answering")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("the app did not answer within 300 s")
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def one_request(client, i: int, model: str | None, schedule: str) -> tuple[str, float, str]:
    """The i-th request of a client; returns (outcome, seconds, note)."""
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    kind = ("generate", "generate", "generate", "compare", "cancel", "bad")[i % 6]
    args = {"prompt": PROMPT, "model": model, "schedule": schedule}
    start = time.monotonic()
    try:
        if kind == "generate":
            client.predict(api_name="/generate", **args)
        elif kind == "compare":
            client.predict(
                PROMPT,
                n_runs=2,
                schedule_1=schedule,
                model_1=model,
                schedule_2="0-0-1",
                model_2=model,
                api_name="/compare",
            )
        elif kind == "cancel":
            job = client.submit(api_name="/generate", **args)
            while not job.done() and not job.outputs():
                time.sleep(0.02)
            if job.done():  # finished before the cancel could be sent
                job.result()
                return "completed", time.monotonic() - start, ""
            job.cancel()
            return "cancelled", time.monotonic() - start, ""
        else:
            bad = BAD_INPUTS[(i // 6) % len(BAD_INPUTS)]
            client.predict(api_name="/generate", **{**args, **bad})
            return "failed", time.monotonic() - start, f"bad input accepted: {bad}"
    except QueueError as err:
        return "refused", time.monotonic() - start, str(err)
    except AppError as err:
        message = str(err).strip()
        clear = message and "\n" not in message and "Internal error" not in message
        if kind == "bad" and clear:
            return "refused", time.monotonic() - start, message
        return "failed", time.monotonic() - start, message
    except Exception as err:  # noqa: BLE001 - reported, not raised: the probe counts failures
        return "failed", time.monotonic() - start, f"{type(err).__name__}: {err}"
    return "completed", time.monotonic() - start, ""


def drive(url: str, clients: int, requests: int, model: str | None, schedule: str) -> list[tuple]:
    from gradio_client import Client

    results: list[tuple] = []
    lock = threading.Lock()

    def user(c: int) -> None:
        client = Client(url, verbose=False)
        for r in range(requests):
            outcome = one_request(client, c + r, model, schedule)
            with lock:
                results.append(outcome)

    threads = [threading.Thread(target=user, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def report(results: list[tuple], rss_before, rss_after, orphan_files: list[str], clients, requests) -> dict:
    counts = {
        k: sum(1 for r in results if r[0] == k) for k in ("completed", "refused", "cancelled", "failed")
    }
    done = sorted(r[1] for r in results if r[0] == "completed")
    growth = (rss_after - rss_before) / rss_before if rss_before and rss_after else None
    return {
        "clients": clients,
        "requests": clients * requests,
        **counts,
        "latency_p50_s": percentile(done, 50),
        "latency_p95_s": percentile(done, 95),
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
        "rss_growth": growth,
        "orphans": len(orphan_files),
        "failures": [r[2] for r in results if r[0] == "failed"][:10],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="clients at once (default 4)")
    parser.add_argument("--requests", type=int, default=6, help="requests per client (default 6)")
    parser.add_argument("--model", default=None, help="model for every request (default: the app's)")
    parser.add_argument("--schedule", default="2-2-1", help="schedule of the generations (default 2-2-1)")
    parser.add_argument("--queue-size", type=int, default=16, help="the launched app's queue (default 16)")
    parser.add_argument("--url", default=None, help="drive this running app instead of launching one")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the server's process id (RSS)")
    parser.add_argument("--outputs", default=None, help="with --url: the server's outputs folder (orphans)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be at least 1")

    def run(url: str, pid: int | None, outputs: Path | None) -> dict:
        from gradio_client import Client

        # one request first, so RSS "before" includes the loaded model and growth means a leak
        Client(url, verbose=False).predict(PROMPT, model=args.model, schedule="1-1-1", api_name="/generate")
        before = rss_mb(pid)
        results = drive(url, args.clients, args.requests, args.model, args.schedule)
        return report(results, before, rss_mb(pid), orphans(outputs), args.clients, args.requests)

    if args.url:
        summary = run(args.url, args.pid, Path(args.outputs) if args.outputs else None)
    else:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with (
            tempfile.TemporaryDirectory() as tmp,
            launched_app(Path(tmp), port, args.queue_size) as (url, pid),
        ):
            summary = run(url, pid, Path(tmp))
    if args.json:
        print(json.dumps(summary))
    else:
        for key, value in summary.items():
            print(f"{key}: {value}")
    return 0 if summary["failed"] == 0 and summary["orphans"] == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.exit(main())
