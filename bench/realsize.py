"""The real Wan2.1-T2V-1.3B at its real size, timed through the engine's own sampler (issue 15).

    .venv/bin/python -m bench.realsize --device cpu --frames 17 --height 64 --width 128 --json

Builds the transformer from Wan2.1-T2V-1.3B's exact diffusers config and AutoencoderKLWan from Wan2.1's
VAE config (random weights: nothing is downloaded; the numbers are latencies, not samples) and times:

- **per-stage forward** (measured): one `engine.sampling.cfg_denoiser` call at each stage's resolution,
  conditional and unconditional passes batched as the engine runs them, `--warmup` untimed calls then
  the median of `--repeats` timed ones;
- **whole schedules** 0-0-50, 20-20-10 and 2-2-1: those listed in `--measure` (default: all on CUDA,
  only 2-2-1 on the CPU) run end to end through `engine.sampling.sample` and are *measured*; the others
  are *composed* as Σ steps × the measured per-stage forward time (marked `"source": "composed"` in the
  JSON and `*` in the table) — on the CPU a real-width 0-0-50 takes hours;
- the measured time ratios beside `engine.flops`'s FLOPs ratios, both relative to 0-0-50;
- **VAE decode** (measured) of the full-resolution latents through `WanModel.decode`;
- **peak memory**: device (`torch.cuda.max_memory_allocated`) and host (max resident set size).

The text encoder (UMT5-XXL, 5.7B parameters) is not built: the prompt embeddings are random tensors of
its output shape (512 × 4096), which is all the transformer's cost depends on.
`--shrink` keeps the real layout at toy width and depth (what the test runs in seconds).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time

import torch
from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel

from engine.flops import TERA, TransformerSize, schedule_flops
from engine.memory import OFFLOAD_MODES, MemoryMode
from engine.models import WanModel, apply_memory_mode
from engine.pyramid import stage_geometry
from engine.sampling import cfg_denoiser, sample
from engine.schedule import parse_schedule, schedule_sigmas
from engine.zoo import ModelCard

# transformer/config.json of Wan-AI/Wan2.1-T2V-1.3B-Diffusers
WAN21_T2V_13B = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 12,
    "attention_head_dim": 128,
    "in_channels": 16,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 8960,
    "num_layers": 30,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-06,
    "image_dim": None,
    "added_kv_proj_dim": None,
    "rope_max_seq_len": 1024,
}
# vae/config.json of the same repository: AutoencoderKLWan's defaults are exactly Wan2.1's VAE
WAN21_VAE: dict = {}
SHRUNK_TRANSFORMER = {"num_attention_heads": 2, "attention_head_dim": 16, "ffn_dim": 64, "num_layers": 2}
SHRUNK_VAE = {"base_dim": 8, "num_res_blocks": 1}
SHRUNK_TEXT_DIM = 64
SCHEDULES = ("0-0-50", "20-20-10", "2-2-1")
BASELINE = "0-0-50"
PAPER_H100_MS = (7.6, 33.8, 631.8)  # per forward at 448×832×81, stages low → high (paper: 631.8 / 33.8 / 7.6)
TEXT_LEN = 512
GUIDANCE = 5.0


def build(shrink: bool, device: torch.device, dtype: torch.dtype) -> WanModel:
    """The 1.3B transformer and the Wan2.1 VAE (or their shrunken real-layout twins), random weights."""
    config = dict(WAN21_T2V_13B)
    vae_config = dict(WAN21_VAE)
    if shrink:
        config.update(SHRUNK_TRANSFORMER, text_dim=SHRUNK_TEXT_DIM)
        vae_config.update(SHRUNK_VAE)
    torch.manual_seed(0)
    transformer = WanTransformer3DModel(**config).to(dtype)
    keep = set(WanTransformer3DModel._keep_in_fp32_modules or ())
    for name, module in transformer.named_modules():  # as from_pretrained(torch_dtype=...) keeps them
        if keep.intersection(name.split(".")):
            module.to(torch.float32)
    transformer.to(device).eval()
    vae = AutoencoderKLWan(**vae_config).to(device).eval()
    pipe = WanPipeline(
        tokenizer=None,
        text_encoder=None,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
    )
    card = ModelCard(description="Wan2.1-T2V-1.3B config, random weights", max_sequence_length=TEXT_LEN)
    return WanModel(
        name="wan2.1-t2v-1.3b-random", pipe=pipe, card=card, device=device, dtype=dtype, shift=3.0
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is KiB on Linux


def measure(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    dtype = (
        getattr(torch, args.dtype)
        if args.dtype
        else (torch.bfloat16 if device.type == "cuda" else torch.float32)
    )
    model = build(args.shrink, device, dtype)
    model.memory = MemoryMode(offload=args.offload, vae_tiling=args.vae_tiling)
    apply_memory_mode(model.pipe, device, model.memory)  # the engine's offload hooks and VAE tiling
    if args.compile:
        model.transformer.compile_repeated_blocks(fullgraph=True)  # regional: one block, compiled per shape
    size = TransformerSize.from_config(dict(model.transformer.config), text_len=TEXT_LEN)
    geometry = stage_geometry(args.frames, args.height, args.width, latent_channels=16)
    text_dim = int(model.transformer.config.text_dim)
    gen = torch.Generator("cpu").manual_seed(0)
    cond, uncond = (torch.randn(1, TEXT_LEN, text_dim, generator=gen).to(device, dtype) for _ in range(2))
    denoiser = cfg_denoiser(model.transformer, cond, uncond, GUIDANCE)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    stages = []
    for k, stage in enumerate(geometry.stages):
        x = torch.randn(1, *stage.latent_shape, generator=gen)
        times = []
        for i in range(args.warmup + args.repeats):
            synchronize(device)
            t0 = time.perf_counter()
            denoiser(x, 0.5, k)
            synchronize(device)
            if i >= args.warmup:
                times.append(time.perf_counter() - t0)
        stages.append(
            {
                "stage": k,
                "latent": list(stage.latent_shape[1:]),
                "pixels": list(stage.pixel_shape),
                "tokens": stage.tokens,
                "forward_ms": round(1000 * statistics.median(times), 3),
                "forward_ms_all": [round(1000 * t, 3) for t in times],
                "batch": 2,
            }
        )

    measure_set = set(
        args.measure if args.measure is not None else (SCHEDULES if device.type == "cuda" else ("2-2-1",))
    )
    schedules: dict[str, dict] = {}
    final = None
    for name in SCHEDULES:
        counts = parse_schedule(name, geometry.num_stages)
        flops = sum(schedule_flops(geometry, counts, size, cfg=True))
        composed = sum(c * s["forward_ms"] / 1000 for c, s in zip(counts, stages))
        row = {"tflops": flops / TERA, "composed_seconds": round(composed, 4)}
        if name in measure_set:
            sigmas = schedule_sigmas(geometry, counts, model.shift)
            synchronize(device)
            t0 = time.perf_counter()
            for event in sample(denoiser, geometry, sigmas, torch.Generator("cpu").manual_seed(0)):  # noqa: B007
                pass  # the last event ("done") carries the result
            synchronize(device)
            row.update(seconds=round(time.perf_counter() - t0, 4), source="measured")
            row["model_seconds"] = round(event.model_seconds, 4)
            final = event.x0
        else:
            row.update(seconds=row["composed_seconds"], source="composed")
        schedules[name] = row
    base = schedules[BASELINE]
    for row in schedules.values():
        row["time_ratio"] = round(row["seconds"] / base["seconds"], 4)
        row["flops_ratio"] = row["tflops"] / base["tflops"]

    latents = final if final is not None else torch.randn(1, *geometry.full.latent_shape, generator=gen)
    synchronize(device)
    t0 = time.perf_counter()
    video = model.decode(latents)
    synchronize(device)
    decode_seconds = time.perf_counter() - t0

    device_peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None
    return {
        "model": "Wan2.1-T2V-1.3B config, random weights" + (" (shrunk for tests)" if args.shrink else ""),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "dtype": str(dtype).removeprefix("torch."),
        "frames": args.frames,
        "height": args.height,
        "width": args.width,
        "compile": args.compile,
        "offload": args.offload,
        "vae_tiling": args.vae_tiling,
        "guidance_batch": "conditional + unconditional in one batch of 2",
        "stages": stages,
        "schedules": schedules,
        "vae_decode": {
            "seconds": round(decode_seconds, 4),
            "video": list(video.shape[1:]),
            "source": "measured",
        },
        "peak_memory_gb": {"device": device_peak, "host": round(host_peak_gb(), 3)},
        "paper_h100_forward_ms_448x832x81": list(PAPER_H100_MS),
        "notes": (
            "forward_ms and vae_decode are measured; a schedule's seconds are measured where its source is "
            "'measured' (a run through engine.sampling.sample) and otherwise composed as sum(steps x "
            "forward_ms); ratios are to 0-0-50; text embeddings are random tensors (no text encoder)"
        ),
    }


def table(result: dict) -> str:
    size = f"{result['frames']}×{result['height']}×{result['width']}"
    lines = [
        f"{result['model']}, {size}, {result['device_name']}, {result['dtype']}, compile={result['compile']}",
        "",
        "| stage | tokens | forward ms (CFG batch 2) | paper H100 ms (448×832×81) |",
        "|---|---|---|---|",
    ]
    for s, paper in zip(result["stages"], PAPER_H100_MS):
        lines.append(f"| {s['stage']} | {s['tokens']:,} | {s['forward_ms']:.1f} | {paper} |")
    lines += ["", "| schedule | seconds | time ratio | FLOPs ratio | TFLOPs |", "|---|---|---|---|---|"]
    base_composed = result["schedules"][BASELINE]["source"] != "measured"
    for name, r in result["schedules"].items():
        mark = "" if r["source"] == "measured" else "*"
        ratio_mark = "*" if mark or base_composed else ""
        lines.append(
            f"| {name} | {r['seconds']:.2f}{mark} | {r['time_ratio']:.3f}{ratio_mark} | "
            f"{r['flops_ratio']:.3f} | {r['tflops']:.2f} |"
        )
    mem = result["peak_memory_gb"]
    device_mem = "n/a" if mem["device"] is None else f"{mem['device']:.2f} GB"
    lines += [
        "",
        "\\* composed from the measured per-stage forward times (Σ steps × forward ms), not run end to end; "
        "a ratio is starred when either of its terms is composed.",
        f"VAE decode: {result['vae_decode']['seconds']:.2f} s (measured). "
        f"Peak memory: device {device_mem}, host {mem['host']:.2f} GB.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"]
    )
    p.add_argument(
        "--dtype", default=None, help="transformer dtype (default bfloat16 on CUDA, float32 on CPU)"
    )
    p.add_argument("--frames", type=int, default=81)
    p.add_argument("--height", type=int, default=448)
    p.add_argument("--width", type=int, default=832)
    p.add_argument("--compile", action="store_true", help="regional torch.compile of the repeated block")
    p.add_argument(
        "--offload", default="none", choices=list(OFFLOAD_MODES), help="the engine's accelerate offload hooks"
    )
    p.add_argument("--vae-tiling", action="store_true", help="decode in tiles (diffusers VAE tiling)")
    p.add_argument("--warmup", type=int, default=1, help="untimed forwards per stage first")
    p.add_argument("--repeats", type=int, default=3, help="timed forwards per stage (median reported)")
    p.add_argument(
        "--measure",
        nargs="*",
        choices=SCHEDULES,
        default=None,
        help="schedules run end to end (default: all on CUDA, 2-2-1 on the CPU); the rest are composed",
    )
    p.add_argument("--shrink", action="store_true", help="the real layout at toy width and depth (tests)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = measure(args)
    print(json.dumps(result, indent=2) if args.json else table(result))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
