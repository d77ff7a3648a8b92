"""Shared training plumbing: config files, the accelerate loop, EMA, resumable checkpoints, CSV logs.

Every trainer is a script that reads top to bottom (nanoGPT style): it builds its data and model, defines
`loss(step) -> (loss tensor, {metric: value})` and calls `train(...)`. This module does the rest:

- one process on this CPU, `accelerate launch` on several GPUs unchanged (Accelerator handles devices,
  DDP and mixed precision);
- a dataclass config per run, overridable by a YAML file and `key=value` arguments;
- EMA weights (diffusers' EMAModel) saved next to the raw weights (`use_ema=false`: none, the weights
  themselves are exported);
- `out_dir/state/` is an accelerate checkpoint (model, optimizer, EMA, RNG, step): rerunning the same
  command resumes where it stopped; `--max-minutes` ends a run cleanly so it fits a session, and so does
  SIGTERM or Ctrl-C (`kill PID`): the step in flight finishes, then the run saves, evaluates and exports
  (a second Ctrl-C interrupts at once);
- `out_dir/log.csv`: one row per `log_every` steps (step, seconds, lr, loss and the trainer's metrics);
- `out_dir/curves.csv`: the learning curve, one row per `eval_every` steps and one at the end, when the
  trainer passes an `evaluate(step) -> {measure: value}` (trainers.curves: ToyBench on the EMA weights).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from diffusers.training_utils import EMAModel
from tqdm import tqdm


@dataclasses.dataclass
class TrainConfig:
    """Knobs every trainer has; trainers subclass it with their own."""

    out_dir: str = "runs/unnamed"
    seed: int = 0
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    max_steps: int = 1000
    max_minutes: float = 0.0  # 0: no time limit
    ema_decay: float = 0.999
    use_ema: bool = True  # False: no EMA copy; ema_weights() is then the trained weights themselves
    grad_clip: float = 1.0
    log_every: int = 25
    checkpoint_every: int = 250
    num_threads: int = 0  # CPU threads for torch; 0 leaves torch's default
    mixed_precision: str = "no"  # "bf16" on GPUs
    eval_every: int = 0  # learning curve: evaluate the EMA weights every this many steps (0: never)
    eval_n: int = 32  # ... on ToyBench's default prompt set of this size
    eval_seed: int = 0  # ... drawn with this seed (prompt i sampled with seed eval_seed + i)
    eval_schedule: str = "0-0-20"  # ... at this (cheap) schedule
    lr_floor: float = 0.1  # the cosine decay ends at lr_floor × lr (1: constant after the warm-up)
    stop_at: int = 0  # stop (saved, exported) at this step, the schedule still spanning max_steps (0: off)
    fit_to_time: bool = False  # with max_minutes: max_steps is reset from the measured step rate after
    # CALIBRATION steps, so that the cosine schedule ends as the time runs out (a GPU call of fixed length)


CALIBRATION = (20, 120)  # fit_to_time measures the steps between these (counted from the run's start)
TIME_MARGIN = 0.9  # ... and plans the rest at this share of the remaining time (evaluations, the export)


def fitted_steps(step: int, elapsed_s: float, rate_s: float, max_minutes: float) -> int:
    """The max_steps at which a run now at `step`, `elapsed_s` into `max_minutes`, taking `rate_s` seconds
    a step, ends its schedule inside the time (TIME_MARGIN of what is left)."""
    left = max(0.0, max_minutes * 60 - elapsed_s) * TIME_MARGIN
    return step + max(1, int(left / max(rate_s, 1e-9)))


def parse_config(cls: type, argv: list[str] | None = None, description: str = "") -> Any:
    """`script.py [--config FILE.yaml] [--max-minutes M] [key=value ...]` → an instance of cls."""
    import argparse

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--config", default=None, help="YAML file of overrides (see trainers/configs/)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop cleanly after this many minutes")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. batch_size=32")
    args = p.parse_args(argv)
    values: dict[str, Any] = {}
    if args.config:
        values.update(yaml.safe_load(Path(args.config).read_text()) or {})
    for item in args.overrides:
        if "=" not in item:
            p.error(f"override {item!r} is not key=value")
        key, raw = item.split("=", 1)
        values[key] = yaml.safe_load(raw)
    if args.max_minutes is not None:
        values["max_minutes"] = args.max_minutes
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        p.error(f"unknown config keys {unknown}; known: {sorted(fields)}")
    for key, value in values.items():  # YAML reads 2e-5 as a string (1.1 wants 2.0e-5): coerce numbers
        kind = type(fields[key].default)
        if kind not in (int, float) or isinstance(value, bool) or not isinstance(value, (str, int, float)):
            continue
        try:
            number = float(value)
            if kind is int and not number.is_integer():
                raise ValueError
            values[key] = kind(number)
        except ValueError:
            p.error(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return cls(**values)


def set_threads(n: int) -> None:
    if n > 0:
        torch.set_num_threads(n)


class StopRequest:
    """SIGTERM or SIGINT asks a training loop to stop after the step in flight (then it saves, evaluates
    and exports as at its time limit). The first signal is remembered in `signal_name`; the handlers are
    the previous ones again after it, so a second Ctrl-C interrupts at once. Outside the main thread (where
    Python cannot install handlers) it does nothing."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signal_name = ""
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            self.previous = {s: signal.signal(s, self.handle) for s in self.SIGNALS}

    def handle(self, signum: int, frame: object) -> None:
        self.signal_name = signal.Signals(signum).name
        self.restore()

    def restore(self) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}


class Run:
    """One training run: accelerator, optimizer, EMA, logs and checkpoints around a model."""

    def __init__(
        self, cfg: TrainConfig, model: torch.nn.Module, params: list[torch.nn.Parameter] | None = None
    ):
        set_threads(cfg.num_threads)
        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.accelerator = Accelerator(mixed_precision=cfg.mixed_precision)
        if self.accelerator.device.type == "cuda":  # TF32 matrix products: float32 weights, tensor cores
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.manual_seed(cfg.seed)
        params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
        self.params = params
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        self.ema = EMAModel(params, decay=cfg.ema_decay) if cfg.use_ema else None
        if self.ema is not None:
            self.ema.to(self.accelerator.device)
            self.accelerator.register_for_checkpointing(self.ema)
        self.step = 0
        self.state_dir = self.out / "state"
        if (self.state_dir / "step.json").is_file():
            self.accelerator.load_state(str(self.state_dir))
            self.step = json.loads((self.state_dir / "step.json").read_text())["step"]
            self.accelerator.print(f"resumed {self.out} at step {self.step}")
        self.write_config()

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def write_config(self) -> None:
        """out_dir/config.json: the run's config as it runs (fit_to_time rewrites max_steps)."""
        if self.accelerator.is_main_process:
            (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(self.cfg), indent=2))

    def last_step(self) -> int:
        cfg = self.cfg
        return min(cfg.max_steps, cfg.stop_at) if cfg.stop_at else cfg.max_steps

    def fit_schedule(self, rate_s: float, start: float) -> None:
        """fit_to_time: max_steps such that the cosine schedule ends inside max_minutes at `rate_s` a step."""
        cfg = self.cfg
        cfg.max_steps = fitted_steps(self.step, time.time() - start, rate_s, cfg.max_minutes)
        self.accelerator.print(f"fit_to_time: {rate_s:.3f} s a step, max_steps now {cfg.max_steps}")
        self.write_config()

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to lr_floor × lr (default 10%) over max_steps."""
        cfg = self.cfg
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        t = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
        return cfg.lr * (cfg.lr_floor + (1 - cfg.lr_floor) * 0.5 * (1 + math.cos(math.pi * t)))

    def save(self) -> None:
        self.accelerator.wait_for_everyone()
        self.accelerator.save_state(str(self.state_dir))
        if self.accelerator.is_main_process:
            (self.state_dir / "step.json").write_text(json.dumps({"step": self.step}))

    def train(
        self,
        loss_fn: Callable[[int], tuple[torch.Tensor, dict[str, float]]],
        evaluate: Callable[[int], dict[str, float]] | None = None,
    ) -> None:
        """Run until max_steps or max_minutes; loss_fn(step) returns (loss, metrics). With `evaluate` and
        cfg.eval_every > 0, evaluate(step) runs on the EMA weights every eval_every steps and at the end,
        and its measures are appended to out_dir/curves.csv (see `evaluate_point`)."""
        cfg = self.cfg
        start = time.time()
        curve = (lambda: self.evaluate_point(evaluate, start)) if evaluate and cfg.eval_every else None
        # one log for the run: the main process writes it (with several processes, the loss is their mean)
        log_path = self.out / "log.csv" if self.accelerator.is_main_process else Path(os.devnull)
        new_log = not log_path.exists() or log_path.stat().st_size == 0  # (a run stopped before a row)
        log_file = open(log_path, "a", newline="")  # noqa: SIM115 - closed in finally
        writer = None
        bar = tqdm(
            total=cfg.max_steps,
            initial=self.step,
            desc=self.out.name,
            mininterval=5,
            disable=not self.accelerator.is_main_process or os.environ.get("TQDM_DISABLE") == "1",
        )
        running: dict[str, float] = {}  # metric sums since the last log row, and how many steps measured each
        counts: dict[str, int] = {}
        stop = StopRequest()
        first, marks = self.step, []  # fit_to_time: wall clock at the calibration steps
        try:
            self.model.train()
            last = self.last_step()
            while self.step < last:
                if cfg.fit_to_time and cfg.max_minutes and self.step - first in CALIBRATION:
                    marks.append(time.time())
                    if len(marks) == len(CALIBRATION):
                        self.fit_schedule((marks[1] - marks[0]) / (CALIBRATION[1] - CALIBRATION[0]), start)
                        last, bar.total = self.last_step(), cfg.max_steps
                if cfg.max_minutes and time.time() - start > cfg.max_minutes * 60:
                    self.accelerator.print(f"time limit of {cfg.max_minutes} min reached at step {self.step}")
                    break
                if stop.signal_name:
                    self.accelerator.print(f"{stop.signal_name}: stopping cleanly at step {self.step}")
                    break
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr_at(self.step)
                loss, metrics = loss_fn(self.step)
                self.optimizer.zero_grad(set_to_none=True)
                self.accelerator.backward(loss)
                if cfg.grad_clip:
                    self.accelerator.clip_grad_norm_(self.params, cfg.grad_clip)
                self.optimizer.step()
                if self.ema is not None:
                    self.ema.step(self.params)
                self.step += 1
                bar.update(1)
                metrics = {"loss": float(self.accelerator.reduce(loss.detach(), "mean")), **metrics}
                for k, v in metrics.items():  # a NaN metric is one this step does not measure
                    if not math.isnan(float(v)):
                        running[k] = running.get(k, 0.0) + float(v)
                        counts[k] = counts.get(k, 0) + 1
                    else:
                        running.setdefault(k, 0.0)
                        counts.setdefault(k, 0)
                if self.step % cfg.log_every == 0 or self.step == last:
                    row = {
                        "step": self.step,
                        "minutes": round((time.time() - start) / 60, 3),
                        "lr": self.lr_at(self.step - 1),
                        **{k: v / counts[k] if counts[k] else math.nan for k, v in running.items()},
                    }
                    if writer is None:
                        writer = csv.DictWriter(log_file, fieldnames=list(row))
                        if new_log:
                            writer.writeheader()
                    writer.writerow(row)
                    log_file.flush()
                    bar.set_postfix(loss=f"{row['loss']:.4f}")
                    running, counts = {}, {}
                if self.step % cfg.checkpoint_every == 0:
                    self.save()
                if curve and self.step % cfg.eval_every == 0:
                    curve()
        finally:
            stop.restore()
            bar.close()
            log_file.close()
        self.save()
        if curve:
            curve()

    def evaluate_point(self, evaluate: Callable[[int], dict[str, float]], start: float) -> None:
        """One learning-curve row: evaluate(step) on the EMA weights (model in eval mode), appended to
        out_dir/curves.csv with the step and the wall minutes since this run (re)started. A step that
        already has a row (a resumed run's last point) is not evaluated again."""
        path = self.out / "curves.csv"
        rows = list(csv.DictReader(path.open())) if path.is_file() else []
        if not self.accelerator.is_main_process or any(int(r["step"]) == self.step for r in rows):
            return
        began = time.time()
        try:
            with self.ema_weights() as model:
                model.eval()
                try:
                    measures = evaluate(self.step)
                finally:
                    model.train()
        except Exception as error:  # a failed learning-curve point is reported, never the end of the run
            self.accelerator.print(f"curve: the evaluation at step {self.step} failed: {error!r}")
            return
        row = {
            "step": self.step,
            "minutes": round((began - start) / 60, 3),
            "eval_seconds": round(time.time() - began, 1),
            **measures,
        }
        fields = list(rows[0]) if rows else list(row)
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            if not rows:
                writer.writeheader()
            writer.writerow(row)
        self.accelerator.print(
            "curve: "
            + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        )

    @contextlib.contextmanager
    def ema_weights(self):
        """Inside the block the model holds its EMA weights (for export or evaluation); without EMA
        (use_ema false) it is the model as trained."""
        if self.ema is None:
            yield unwrap(self)
            return
        self.ema.store(self.params)
        self.ema.copy_to(self.params)
        try:
            yield unwrap(self)
        finally:
            self.ema.restore(self.params)


def unwrap(run: Run) -> torch.nn.Module:
    return run.accelerator.unwrap_model(run.model)
