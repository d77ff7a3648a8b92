"""trainers.prepare end to end on a random-weight model of the real Wan layout (AutoencoderKLWan, UMT5)
and two tiny mp4 clips: shards equal on-the-fly encoding, and training reads them with no encoder."""

import csv
import json

import pytest
import torch
from diffusers import AutoencoderKLWan
from transformers import UMT5EncoderModel

from engine.flow import masked_text
from engine.models import build_random_tiny, load_model, save_model
from engine.video import write_mp4
from trainers import prepare, pyramidalize
from trainers.data import FolderClips
from trainers.prepare import ShardClips
from trainers.zoo import tokenize
from world import make_batch, to_uint8

pytestmark = pytest.mark.slow

SIZE = {"frames": 17, "height": 64, "width": 64}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prepare")
    folder = save_model(*build_random_tiny(), root / "wan-random")
    clips = root / "clips"
    batch = make_batch(0, 2, 21, 96, 80)  # longer and larger than the training size: cut and resized
    for i, (video, text) in enumerate(zip(to_uint8(batch.videos), batch.captions)):
        write_mp4(video, clips / f"clip{i}.mp4")
        (clips / f"clip{i}.txt").write_text(text)
    argv = [
        "--model",
        str(folder),
        "--data-dir",
        str(clips),
        "--out",
        str(root / "shards"),
        "--shard-size",
        "1",
    ]
    argv += [f"--{k}={v}" for k, v in SIZE.items()]
    index = prepare.main(argv)
    return root, folder, clips, index


def test_index_and_shards_describe_every_clip(prepared):
    root, _, _, index = prepared
    assert json.loads((root / "shards/index.json").read_text()) == index
    assert [s["clips"] for s in index["shards"]] == [1, 1] and index["definition"] == "pixel"
    assert (index["frames"], index["height"], index["width"], index["num_stages"]) == (17, 64, 64, 3)


def test_shards_equal_on_the_fly_encoding(prepared):
    _, folder, clips, _ = prepared
    model = load_model(str(folder), device="cpu", dtype="float32")
    live = FolderClips(clips, model.vae, **SIZE, seed=3)
    shards = ShardClips(prepared[0] / "shards", seed=3)
    dropped = 0
    for step in range(6):  # 6 draws of 3: both clips, with and without caption dropout (seed 3: twice)
        want_latents, captions = live.sample(step, 3)
        dropped += captions.count("")
        got_latents, got_text = shards.sample(step, 3)
        assert [t.shape for t in got_latents] == [t.shape for t in want_latents]
        for got, want in zip(got_latents, want_latents):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        ids, mask = tokenize(model.tokenizer, captions, "cpu")
        with torch.no_grad():
            want_text = masked_text(model.pipe.text_encoder(ids, mask).last_hidden_state, mask)
        torch.testing.assert_close(got_text, want_text, rtol=0, atol=1e-5)
    assert dropped == 2


def test_training_reads_shards_without_any_encoder_forward(prepared, tmp_path, monkeypatch):
    root, folder, _, _ = prepared

    def forbidden(*args, **kwargs):
        raise AssertionError("an encoder ran during training on prepared shards")

    monkeypatch.setattr(AutoencoderKLWan, "encode", forbidden)
    monkeypatch.setattr(UMT5EncoderModel, "forward", forbidden)
    pyramidalize.main(
        [
            f"out_dir={tmp_path}/run",
            f"base_model={folder}",
            f"shards_dir={root}/shards",
            "variant=",
            "max_steps=2",
            "batch_size=3",
            "log_every=1",
            *(f"{k}={v}" for k, v in SIZE.items()),
        ]
    )
    rows = list(csv.DictReader((tmp_path / "run/log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2] and all(float(r["clips"]) == 3 for r in rows)


def test_shards_of_another_size_are_refused(prepared, tmp_path):
    root, folder, _, _ = prepared
    with pytest.raises(ValueError, match="were prepared for"):
        pyramidalize.main(
            [f"out_dir={tmp_path}/run", f"base_model={folder}", f"shards_dir={root}/shards", "variant="]
            + ["frames=17", "height=128", "width=128"]
        )
