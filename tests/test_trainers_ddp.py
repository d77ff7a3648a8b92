"""The pyramidal finetune on two processes (gloo on the CPU), as `accelerate launch` runs it on GPUs:
both ranks end with identical weights, and every optimizer step averaged two different batches."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.models import build_random_tiny
from trainers.pyramidalize import data_step

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
BATCH = 4  # trainers/configs/tiny-smoke.yaml


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    # `--cpu` alone makes accelerate run one process; the multi-process launcher (torchrun) with
    # ACCELERATE_USE_CPU gives two CPU ranks joined by gloo: the DDP path the GPUs take
    cmd = [
        str(Path(sys.executable).with_name("accelerate")),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        "29517",
        str(ROOT / "tests" / "ddp_pyramidalize.py"),
        "--config",
        str(ROOT / "trainers" / "configs" / "tiny-smoke.yaml"),
        "base_model=random-tiny",
        "variant=",
        f"out_dir={out}/run",
        f"cache={out}/cache.pt",
        "cache_clips=8",
        "num_threads=1",
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out / "run"


def test_both_ranks_end_with_identical_trained_weights(ddp_run):
    ranks = [torch.load(ddp_run / f"rank{k}.pt") for k in range(2)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["num_processes"] == 2 for r in ranks)
    a, b = ranks[0]["weights"], ranks[1]["weights"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(x, y) for x, y in zip(ranks[0]["ema"], ranks[1]["ema"]))
    initial = build_random_tiny()[0].transformer.state_dict()
    assert any(not torch.equal(a[k], initial[k]) for k in initial), "training changed nothing"


def test_each_step_saw_twice_the_batch(ddp_run):
    rows = list(csv.DictReader((ddp_run / "log.csv").open()))
    assert [int(r["step"]) for r in rows] == [1, 2]  # one log, written by the main process
    assert all(float(r["clips"]) == 2 * BATCH for r in rows)
    # the two ranks draw different batches at every step, and no step repeats another's draw
    draws = [data_step(step, rank, 2) for step in range(2) for rank in range(2)]
    assert len(set(draws)) == 4 and [data_step(s, 0, 1) for s in range(3)] == [0, 1, 2]


def test_gpu_accelerate_configs_load_and_shard_by_the_repeated_block():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType
    from diffusers import WanTransformer3DModel

    ddp = load_config_from_file(str(ROOT / "trainers/configs/accelerate-ddp.yaml"))
    fsdp = load_config_from_file(str(ROOT / "trainers/configs/accelerate-fsdp.yaml"))
    assert ddp.distributed_type == DistributedType.MULTI_GPU and ddp.mixed_precision == "bf16"
    assert fsdp.distributed_type == DistributedType.FSDP and fsdp.mixed_precision == "bf16"
    wrap = fsdp.fsdp_config["fsdp_transformer_layer_cls_to_wrap"]
    assert [wrap] == WanTransformer3DModel._repeated_blocks
    assert fsdp.fsdp_config["fsdp_sharding_strategy"] == "FULL_SHARD"
