"""Measure the app's two performance targets (issue 6) on this machine:

1. seconds from starting `python app.py` until it answers HTTP, until the page is interactive in a real
   browser (the Generate button is clickable and the prompt accepts text), and until the model list has
   loaded (the engine is imported after the page is up);
2. when the first stage preview arrives, as a share of the whole generation, seen by an API client
   (`/generate` with the default model at 20-20-10, model warm).

    python -m app.measure [--runs 5] [--schedule 20-20-10] [--port 7899]

Needs Chromium at /usr/bin/chromium (Playwright drives it; nothing is downloaded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PROMPT = "a red circle moving left on a black background"


def time_to_interactive(port: int, timeout_s: float = 120.0) -> tuple[dict, subprocess.Popen]:
    """Start `python app.py`, wait until it answers HTTP, then load the page in Chromium (launched before
    the server, so its own start-up is not counted) until Generate is clickable and the prompt takes text.
    Returns the timings (seconds since the server process started) and the running server."""
    from playwright.sync_api import sync_playwright

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    url = f"http://127.0.0.1:{port}/"
    timings = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        start = time.perf_counter()
        server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=root, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while True:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError("the server did not come up")
            time.sleep(0.05)
        timings["server_up_s"] = round(time.perf_counter() - start, 2)
        page.goto(url)
        page.locator("#generate-btn").wait_for(state="visible")
        page.locator("#prompt textarea").fill("typing works")
        assert page.locator("#generate-btn").is_enabled()
        timings["page_interactive_s"] = round(time.perf_counter() - start, 2)
        model = page.locator("#model input")
        while "random-tiny" not in model.input_value() and time.perf_counter() - start < timeout_s:
            time.sleep(0.05)
        timings["model_list_loaded_s"] = round(time.perf_counter() - start, 2)
        browser.close()
    return timings, server


def first_preview_share(url: str, schedule: str, runs: int) -> dict:
    """Client-side arrival times of the first stage preview and of the final video, over `runs` runs."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict(PROMPT, api_name="/generate", schedule="1-1-1")  # waits for the warm-up to finish
    shares, firsts, totals = [], [], []
    for seed in range(runs):
        start = time.perf_counter()
        job = client.submit(PROMPT, api_name="/generate", schedule=schedule, seed=seed, randomize_seed=False)
        while not job.outputs():
            time.sleep(0.005)
        first = time.perf_counter() - start
        job.result()
        total = time.perf_counter() - start
        firsts.append(first)
        totals.append(total)
        shares.append(first / total)
    return {
        "schedule": schedule,
        "runs": runs,
        "first_preview_s_median": round(statistics.median(firsts), 3),
        "total_s_median": round(statistics.median(totals), 3),
        "first_preview_share_median": round(statistics.median(shares), 3),
        "first_preview_share_max": round(max(shares), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--schedule", default="20-20-10")
    parser.add_argument("--port", type=int, default=7899)
    args = parser.parse_args(argv)
    timings, server = time_to_interactive(args.port)
    try:
        timings.update(first_preview_share(f"http://127.0.0.1:{args.port}/", args.schedule, args.runs))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(json.dumps(timings, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
