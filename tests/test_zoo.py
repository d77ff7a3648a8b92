"""The shipped zoo: within its size budget, shared parts not copied, every variant loads and generates."""

import pytest
import torch

from engine.models import load_model
from engine.pipeline import make_request, run
from engine.sampling import STEP_RULES
from engine.zoo import ZOO_DIR, default_model_name, read_card, zoo_models

BUDGET_MB = 80


def test_zoo_fits_its_size_budget():
    total = sum(p.stat().st_size for p in (ZOO_DIR.parent).rglob("*") if p.is_file())
    assert total / 2**20 < BUDGET_MB


def test_shared_vae_is_shipped_with_measured_latent_statistics():
    card = (ZOO_DIR / "shared" / "vae" / "config.json").read_text()
    assert '"latents_std"' in card and '"_class_name": "TinyWanVAE"' in card


def test_vae_bench_measures_the_shipped_vae(capsys):
    import json

    from bench import vae as vae_bench

    vae_bench.main(["--vae", str(ZOO_DIR / "shared" / "vae"), "--clips", "4", "--repeats", "1"])
    row = json.loads(capsys.readouterr().out)[str(ZOO_DIR / "shared" / "vae")]
    assert row["psnr_db"] > 24  # a broken decoder (or a mismatched encoder) is far below
    assert 0 < row["decode_ms"] < 5000 and row["decoder_params"] > 0


def test_every_variant_generates_with_its_default_schedule():
    for name in zoo_models():
        card = read_card(name)
        assert card.shared == "../shared" and not (ZOO_DIR / name / "vae").exists()
        model = load_model(name, device="cpu")
        result = run(model, make_request(model, "a red circle moving left on a black background", seed=0))
        assert result.frames.shape == (card.frames, card.height, card.width, 3)
        assert result.request.schedule == card.schedule


def test_a_variant_with_its_own_text_encoder_is_loaded_with_it(tmp_path):
    """A variant trained against an earlier shared text encoder carries that encoder in its own folder
    (the zoo's rule: a component in the variant's folder wins over ../shared); its weights, not the shared
    ones, must reach the pipeline, or it would sample from captions embedded by a model it never saw.
    Checked on a copy of the zoo whose wan-tiny gets a perturbed encoder of its own."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(ZOO_DIR / "shared", tmp_path / "shared")
    shutil.copytree(ZOO_DIR / "wan-tiny", tmp_path / "variant")
    shutil.copytree(ZOO_DIR / "shared" / "text_encoder", tmp_path / "variant" / "text_encoder")
    path = tmp_path / "variant" / "text_encoder" / "model.safetensors"
    shared = load_file(path)
    own = {k: v + 0.01 if v.dtype.is_floating_point else v for k, v in shared.items()}
    save_file(own, path)
    index = json.loads((tmp_path / "variant" / "model_index.json").read_text())
    index["text_encoder"] = ["transformers", "UMT5EncoderModel"]
    (tmp_path / "variant" / "model_index.json").write_text(json.dumps(index))

    loaded = load_model(str(tmp_path / "variant"), device="cpu").pipe.text_encoder.state_dict()
    key = next(k for k in own if k in loaded and own[k].dtype.is_floating_point)
    assert torch.equal(loaded[key].float(), own[key].float())
    assert not torch.equal(loaded[key].float(), shared[key].float())
    for name in (n for n in zoo_models() if (ZOO_DIR / n / "text_encoder").is_dir()):  # shipped ones too
        weights = load_file(ZOO_DIR / name / "text_encoder" / "model.safetensors")
        loaded = load_model(name, device="cpu").pipe.text_encoder.state_dict()
        key = next(k for k in weights if k in loaded and weights[k].dtype.is_floating_point)
        assert torch.equal(loaded[key].float(), weights[key].float()), name


def test_a_top_stage_expert_samples_only_the_full_resolution_stage(tmp_path):
    """trainers.expert: a variant with `transformer_2/` samples its lower stages with `transformer` and its
    last stage with the expert. With the expert a perturbed copy of the base, the lower stages' clean
    estimates equal the single-transformer model's bit for bit and the final latent does not (routing
    every stage to either one, or none, breaks one of the two); with an unperturbed copy the whole run is
    identical. Mismatched architectures and a missing top are refused; a re-export without an expert
    removes the old one."""
    import json
    import shutil

    from engine.pipeline import generate
    from trainers import expert

    shutil.copytree(ZOO_DIR / "shared", tmp_path / "shared")
    shutil.copytree(ZOO_DIR / "pyramidal-wan-tiny-dmd", tmp_path / "base")
    shutil.copytree(ZOO_DIR / "pyramidal-wan-tiny-dmd", tmp_path / "same")
    shutil.copytree(ZOO_DIR / "pyramidal-wan-tiny-dmd", tmp_path / "moved")
    moved = load_model(str(tmp_path / "moved"), device="cpu", dtype="float32").transformer
    with torch.no_grad():
        moved.proj_out.bias.add_(0.05)
    moved.to(torch.float16).save_pretrained(tmp_path / "moved" / "transformer")

    def stage_outputs(folder: str):
        model = load_model(str(tmp_path / folder), device="cpu")
        request = make_request(model, "a red circle moving left on a black background", seed=3)
        events = list(generate(model, request))
        return model, [e.x0 for e in events if e.kind == "stage_end"]

    plain_model, plain = stage_outputs("base")
    assert plain_model.top_expert is None and len(plain_model.transformers()) == 1
    for top, variant in (("same", "with-same"), ("moved", "with-moved")):
        cfg = expert.ExpertConfig(lower="base", top=top, variant=variant, zoo_dir=str(tmp_path))
        folder = expert.assemble(cfg)
        assert (folder / "transformer_2").is_dir() and read_card(str(folder)).schedule == "2-2-1"
    model, same = stage_outputs("with-same")
    assert model.top_expert is not None and len(model.transformers()) == 2
    assert all(torch.equal(a, b) for a, b in zip(plain, same))
    _, moved_out = stage_outputs("with-moved")
    assert torch.equal(plain[0], moved_out[0]) and torch.equal(plain[1], moved_out[1])
    assert not torch.allclose(plain[2], moved_out[2], atol=1e-3)

    shutil.copytree(ZOO_DIR / "pyramidal-wan-tiny-dmd", tmp_path / "other")
    config = tmp_path / "other" / "transformer" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "rope_max_seq_len": 512}))
    with pytest.raises(SystemExit, match="different transformer configs"):
        expert.assemble(expert.ExpertConfig(lower="base", top="other", zoo_dir=str(tmp_path)))
    with pytest.raises(SystemExit, match="top="):
        expert.assemble(expert.ExpertConfig(lower="base", zoo_dir=str(tmp_path)))
    from trainers.zoo import export_variant

    export_variant("with-moved", model.transformer, read_card(str(folder)), tmp_path)
    assert not (tmp_path / "with-moved" / "transformer_2").exists()


def test_default_model_is_the_pyramidal_one_when_shipped():
    expected = "pyramidal-wan-tiny" if "pyramidal-wan-tiny" in zoo_models() else "random-tiny"
    assert default_model_name() == expected


@pytest.mark.slow
def test_distilled_generators_are_shipped_and_run_few_step_from_the_cli(tmp_path):
    import json
    import subprocess
    import sys

    from engine.video import read_mp4

    for name, schedule in (("pyramidal-wan-tiny-dmd", "2-2-1"), ("wan-tiny-dmd", "0-0-1")):
        card = read_card(name)
        assert card.step_rule in STEP_RULES and card.guidance == 1.0
        out = tmp_path / f"{name}.mp4"
        cmd = [sys.executable, "-m", "engine", "generate", "--model", name, "--schedule", schedule]
        cmd += ["--prompt", "a blue square moving up on a white background", "--out", str(out), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["schedule"] == schedule and summary["step_rule"] == card.step_rule
        assert read_mp4(out).shape[0] == card.frames
