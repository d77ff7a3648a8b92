"""Bit-identity check for refactors: the default model's frames at 20-20-10 and 2-2-1 (each with the
card's step rule and with "x0"), seed 1234, as SHA-256 digests of the uint8 frames and the float latents.

    python -m bench.same_frames                    # print this tree's digests
    python -m bench.same_frames --against a8d6dd9  # and a commit's engine/ (exit 1 if any differ)

The other commit's engine/ is exported with `git archive` into a temporary folder (the zoo in assets/ is
shared) and run in its own process on one CPU thread, like this tree's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = "a red circle moving left on a black background"
CASES = [("20-20-10", None), ("20-20-10", "x0"), ("2-2-1", None), ("2-2-1", "x0")]
# Run in a fresh interpreter against whichever engine/ is first on the path; only make_request and run,
# which both sides of a refactor have.
DIGESTS = f"""
import hashlib, torch
torch.set_num_threads(1)
from engine.models import load_model
from engine.pipeline import make_request, run
from engine.zoo import default_model_name
model = load_model(default_model_name(), device="cpu")
for schedule, rule in {CASES!r}:
    r = run(model, make_request(model, {PROMPT!r}, schedule=schedule, seed=1234, step_rule=rule))
    frames = hashlib.sha256(r.frames.tobytes()).hexdigest()[:16]
    latents = hashlib.sha256(r.latents.numpy().tobytes()).hexdigest()[:16]
    print(default_model_name(), schedule, rule or "card", frames, latents)
"""


def digests(root: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", DIGESTS], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.splitlines()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", default=None, help="a commit whose engine/ must give the same digests")
    args = parser.parse_args(argv)
    here = digests(REPO)
    print("\n".join(here))
    if args.against is None:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "archive", args.against, "engine"], cwd=REPO, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        (Path(tmp) / "assets").symlink_to(REPO / "assets")
        there = digests(Path(tmp))
    same = here == there
    print(f"{args.against}: {'identical' if same else 'DIFFERENT'}")
    if not same:
        print("\n".join(there))
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
