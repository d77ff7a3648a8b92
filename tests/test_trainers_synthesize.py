"""trainers.synthesize: a folder of generated mp4 + txt clips, batched, resumable, refused on changed
settings, and read end to end by trainers.prepare (the paper's synthetic-data path)."""

import json

import numpy as np
import pytest

from engine.models import load_model
from engine.pipeline import make_request, run
from trainers import prepare, synthesize
from trainers.data import FolderClips

pytestmark = pytest.mark.slow

SETTINGS = {"schedule": "0-0-2", "frames": 17, "height": 64, "width": 64}


def test_a_batched_clip_is_the_clip_its_seed_gives_alone():
    model = load_model("wan-tiny")
    prompts = [
        "a red circle moving left on a black background",
        "a blue square moving up on a white background",
    ]
    batch = synthesize.generate_batch(model, prompts, [5, 9], **SETTINGS)
    assert batch.shape == (2, 17, 64, 64, 3) and batch.dtype == np.uint8
    for prompt, seed, got in zip(prompts, (5, 9), batch):
        alone = run(model, make_request(model, prompt, seed=seed, **SETTINGS)).frames
        assert np.abs(got.astype(int) - alone.astype(int)).max() <= 1  # float rounding of a batch
    assert np.abs(batch[0].astype(int) - batch[1].astype(int)).mean() > 1  # two different clips


def test_synthesize_writes_resumes_and_feeds_prepare(tmp_path):
    out = tmp_path / "synth"
    written = synthesize.synthesize("wan-tiny", out, n=3, batch=2, seed=7, **SETTINGS)
    assert [p.name for p in written] == ["000000.mp4", "000001.mp4", "000002.mp4"]
    captions = [p.with_suffix(".txt").read_text().strip() for p in written]
    assert captions == synthesize.procedural_captions(3, 7) and all(captions)
    assert not list(out.glob(".*"))  # no temporary file left behind
    stamp = written[0].stat().st_mtime_ns

    # an interrupted run: clip 1 lost its caption, so it is not done; a rerun to n = 4 makes 1 and 3 only
    (out / "000001.txt").unlink()
    again = synthesize.synthesize("wan-tiny", out, n=4, batch=2, seed=7, **SETTINGS)
    assert [p.name for p in again] == ["000001.mp4", "000003.mp4"]
    assert written[0].stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="other settings.*guidance"):
        synthesize.synthesize("wan-tiny", out, n=4, seed=7, guidance=5.0, **SETTINGS)
    assert json.loads((out / synthesize.MANIFEST).read_text())["seed"] == 7

    model = load_model("wan-tiny", device="cpu", dtype="float32")
    clips = FolderClips(out, model.vae, 17, 64, 64)
    assert len(clips.items) == 4
    index = prepare.prepare("wan-tiny", out, tmp_path / "shards", 17, 64, 64, shard_size=2)
    assert [s["clips"] for s in index["shards"]] == [2, 2]


def test_the_command_line_refuses_a_bad_prompt_with_a_message(tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("   \n")
    with pytest.raises(SystemExit, match="no prompts"):
        synthesize.main(["--out", str(tmp_path / "s"), "--n", "1", "--prompts-file", str(prompts)])
