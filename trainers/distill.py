"""Step-distil a model into a few-step generator with DMD (DESIGN §7).

    python -m trainers.distill        # DMD-PT*: pyramidal-wan-tiny → pyramidal-wan-tiny-dmd (2-2-1)
    python -m trainers.distill method=pt variant=pyramidal-wan-tiny-dmd-pt out_dir=runs/dmd-pt
    python -m trainers.distill method=ot teacher=wan-tiny teacher_lowres_steps=200 \
        variant=pyramidal-wan-tiny-dmd-ot out_dir=runs/dmd-ot
    python -m trainers.distill method=plain generator=wan-tiny teacher=wan-tiny schedule=0-0-4 \
        critic_updates=2 lr=1e-4 variant=wan-tiny-dmd out_dir=runs/wan-tiny-dmd

The generator (initialised from `generator`) samples with the engine's own "x0" rule over `schedule`,
jumps included (engine.sampling.sample). Backward simulation: each step picks one step j of the schedule,
runs the generator without gradients up to j and trains its clean estimate x̂0 at j, so every step of the
few-step schedule is trained on the inputs it meets at inference. Everything stays on the pyramid the
sampler walks (DESIGN §6a): x̂0 is the stage-exact clean estimate Ŷ_k = (x − σ·v − (1−κ)·U)/κ, the
lower-stage signal U is R↑ of the generator's *own* previous stage's final estimate, renoising uses the
stage's path `engine.flow.stage_point` with that U, clean estimates at renoised points use
`engine.flow.stage_clean`, and the regression targets are the teacher's clean estimates at the end
of the same stage (its stage_end events) from the same initial noise.

One class per method (read `PlainDMD.loss` or `Adversarial.loss` top to bottom); `Distillation` holds what
they share (pairs, the unroll, renoising, the regression term, FLOPs):
- `plain` (PlainDMD, the Wan-DMD baseline, schedules such as 0-0-4): the critic — a copy of the teacher —
  follows the generator by flow matching (`critic_updates` per generator step); x̂0 renoised by the
  plain process (the stage path from 1 to 0); grad = (x0_fake − x0_real)/mean|x̂0 − x0_real| applied to
  x̂0 with L = 0.5·‖x̂0 − sg(x̂0 − grad)‖²;
- `ot` (DMDOT): the same with the original plain model as teacher at each stage's resolution;
  `teacher_lowres_steps` first finetunes it by plain flow matching on the lower stages' clean latents
  (DESIGN §7: "first briefly finetuned to work at the low resolutions"; `finetune_lowres`), a run of its
  own on the shared loop in out_dir/teacher-lowres (log.csv, state/, --max-minutes; the weights in
  teacher-lowres/model, reused when the command is rerun);
- `pt` (DMDPT): the pyramidal teacher; x̂0 renoised on its stage's path; real and fake are stage-exact
  clean estimates; the gradient — numerator and normaliser both in clean-signal units — is applied at
  the renoised input, so it reaches x̂0 through the path's linear map (weight (1−ρ)(1−σe));
- `pt-star` (DMDPTStar): the same, applied to x̂0 directly (weight 1) — our reading of the paper's
  simplified weighting;
- `adv` (Adversarial): discriminator heads on the frozen teacher's block features tell renoised real
  clips (the latent cache, their own lower stage) from renoised generator samples (their own lower
  stage), both through the same `renoise`; hinge loss; generator loss λ_adv·adv + λ_rec·rec. Pyramidal
  path when the teacher is pyramidal, plain otherwise.
- `guidance` (GuidanceDistillation): no critic; at the trained step's input the generator's one
  velocity regresses onto the teacher's guided velocity (Meng et al.'s guidance distillation on the
  generator's own trajectory), so it samples without CFG at half the forwards.
`step_rule` (default "x0") is the rule the generator samples with, in the unroll and on its card;
`shared_noise` the frame-shared share of the teacher pairs' and the unroll's noise (DESIGN §6b; default 0,
independent frames, although the cards sample at 0.8: unrolling at 0.8 measured worse, trainers/README.md).
`attribute_weight` > 0 adds, for every method, the latent attribute classifier's cross-entropy between
x̂0 and its pair's caption (top two stages; trainers/attributes.py), as the base and the pyramidal
finetune do (measured on DMD-PT*: it bought a little motion for less shape and a worse FD, so the zoo is
distilled without it; trainers/README.md).
`ode_weight` > 0 adds, for the DMD methods whose teacher walks the generator's own path (pt, pt-star,
plain), ode_weight × MSE between x̂0 and the teacher's guided Euler run of the trained step's stage from
the step's own input and U (`ode_steps` steps over the whole stage; `Distillation.stage_ode`): a
regression target that is a function of what the generator sees, where the pairs' stage outputs are not
(they start from the same noise but meet the teacher's own lower stages); `ode_rule=x0` walks it with the
"x0" rule instead, fresh noise every step, so the target is a sample of the teacher's many-step map.
`top_expert` trains the full-resolution stage only, as a top-stage expert: the unroll walks the lower
stages with the frozen initialisation, and the export writes it as `transformer` beside the trained
`transformer_2` (DESIGN §7; how the shipped `pyramidal-wan-tiny-dmd-expert` is built since the twenty-first
session, trainers/build_zoo.sh step 4g).
`lora_rank` > 0 trains LoRA adapters on the generator's attention and FFN linears instead of all its
weights (DESIGN §7's option for PT and PT*; any method accepts it); the export merges them.
The teacher pairs are generated once into out_dir/pairs.pt (or `pairs_file`); with a plain teacher and a
pyramidal schedule (`ot`) they come from the generator's pyramidal initialisation, the only model here
with stage outputs below full resolution.

Defaults as measured here before the stage-exact formulas (ToyBench 2-2-1, n = 32, 10 CPU-minutes
each): 5 critic updates per generator step at generator lr 2e-5 gave DMD-PT* FD 1132 (the initialisation
itself, same rule: 1239); 2 updates at 1e-4 drifted away from the teacher (FD 1394, and 1874 for DMD-PT).
The plain full-resolution baseline gets only ~100 steps in the same time and lost its objects with the
new defaults (FD 4747 at 0-0-4, against 2796 with 2 updates at 1e-4), so it is built with the earlier
settings, as is the adversarial variant.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.flops import TERA, TransformerSize, forward_flops
from engine.flow import (
    guidance_mix,
    logit_normal,
    masked_text,
    noisy,
    stage_clean,
    stage_point,
    stage_velocity,
    velocity_target,
)
from engine.models import ZOO_DIR, load_model
from engine.sampling import STEP_RULES, cfg_denoiser, sample, x0_step
from engine.schedule import is_plain, parse_schedule, schedule_sigmas, stage_sigmas
from engine.transitions import frame_common_shape, upsample
from engine.zoo import ModelRegistry
from trainers.attributes import DEFAULT_DIR as ATTRIBUTES_DIR
from trainers.attributes import load as load_attributes
from trainers.attributes import stage_caption_loss
from trainers.common import Run, TrainConfig, parse_config, set_threads, unwrap
from trainers.curves import toybench_evaluator
from trainers.data import cached
from trainers.zoo import export_variant, tiny_card, velocity
from world.captions import caption
from world.split import sample_attributes


@dataclasses.dataclass
class DistillConfig(TrainConfig):
    out_dir: str = "runs/pyramidal-wan-tiny-dmd"
    method: str = "pt-star"
    generator: str = "pyramidal-wan-tiny"  # initialisation of the generator (zoo name or folder)
    teacher: str = "pyramidal-wan-tiny"  # real score; the critic starts as a copy of it
    variant: str = "pyramidal-wan-tiny-dmd"  # zoo variant to export ("" to skip)
    zoo_dir: str = str(ZOO_DIR)
    schedule: str = "2-2-1"
    guidance: float = 3.0  # the teacher's CFG scale for the real score and the ODE pairs
    critic_updates: int = 5  # DESIGN §7: about 5 per generator update (2 measured worse here)
    critic_lr: float = 2e-4
    reg_weight: float = 0.01
    pairs: int = 256  # teacher ODE pairs (prompts + initial noise) the training draws from
    pair_schedule: str = ""  # the teacher's schedule for the pairs; empty: the teacher card's default
    pairs_file: str = ""  # where the pairs live (shared between runs with the same teacher); default out_dir
    adv_weight: float = 1.0  # `adv`: generator loss λ_adv·adv + λ_rec·rec (DESIGN §7: 1 and 2)
    gan_weight: float = 0.0  # DMD methods: + this × a GAN term against real clips (DMD2; 0: none)
    rec_weight: float = 2.0
    teacher_lowres_steps: int = 0  # `ot`: plain flow-matching steps of the teacher on lower stages first
    cache: str = "runs/cache/train-17x128x128.pt"  # lower-stage clean latents for teacher_lowres_steps
    cache_clips: int = 6000
    batch_size: int = 16
    lr: float = 2e-5
    weight_decay: float = 0.0
    max_steps: int = 600
    warmup_steps: int = 20
    ema_decay: float = 0.99
    num_threads: int = 1
    lora_rank: int = 0  # > 0: LoRA adapters of this rank train instead of the whole generator
    lora_alpha: float = 0.0  # LoRA scale numerator; 0: the rank (scale 1)
    attribute_weight: float = 0.0  # > 0: + this × the latent attribute classifier's cross-entropy on x̂0
    attribute_classifier: str = str(ATTRIBUTES_DIR)  # ... (top two stages; as the pyramidal finetune)
    eval_schedule: str = ""  # learning curve (eval_every > 0): ToyBench at this schedule; empty: `schedule`
    step_rule: str = "x0"  # the generator's sampling rule, in the unroll and on the exported card
    step_weights: str = ""  # how often each step of `schedule` is the trained one, hyphen-separated (e.g.
    # 1-1-1-1-4 for 2-2-1: the full-resolution step half the time); empty: uniform
    fresh_prompts: bool = False  # each step draws new captions and starting noise instead of picking
    # from the `pairs` (which then only fix the teacher file); needs reg_weight=0 and a method without rec
    shared_noise: float = 0.0  # frame-shared share of the pairs' and the unroll's noise (DESIGN §6b); the
    # card samples at its own 0.8 either way: unrolling at 0.8 too measured worse (trainers/README.md)
    ode_weight: float = 0.0  # DMD methods: + this × the regression of x̂0 onto the teacher's guided Euler
    # solution of the trained step's stage from the step's own input (`Distillation.stage_ode`); 0: none
    ode_steps: int = 10  # the teacher's Euler steps over a whole stage for that target
    ode_rule: str = "euler"  # the teacher's step rule for that target: "euler" (its ODE, a function of the
    # input) or "x0" (the generator's rule: fresh noise at `shared_noise` every step, so a sample)
    top_expert: bool = False  # train only the full-resolution stage, as a top-stage expert: the unroll walks
    # the lower stages with the frozen initialisation, which the export keeps as `transformer` beside the
    # trained `transformer_2` (trainers/expert.py, DESIGN §7); step_weights default to the top steps. An
    # initialisation that already has an expert (a zoo variant's transformer_2) trains that expert further


class _Reached(Exception):
    """Stops the no-gradient unroll at the step being trained."""


def dmd_gradient(x0_fake: torch.Tensor, x0_real: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """DMD's normalised gradient (x0_fake − x0_real) / mean|x̂0 − x0_real| (mean per sample), numerator
    and normaliser both in the clean stage signal's units; zero when the critic agrees with the teacher."""
    norm = (x0 - x0_real).abs().mean(dim=tuple(range(1, x0.ndim)), keepdim=True).clamp_min(1e-4)
    return (x0_fake - x0_real) / norm


def dmd_loss(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """0.5·‖x − sg(x − grad)‖² (mean): its gradient with respect to x is grad (divided by x.numel())."""
    return 0.5 * F.mse_loss(x, (x - grad).detach(), reduction="mean")


def parse_step_weights(text: str, steps: int) -> torch.Tensor | None:
    """`step_weights` as a tensor of `steps` non-negative weights (None when empty: uniform)."""
    if not text:
        return None
    try:
        weights = torch.tensor([float(w) for w in text.split("-")])
    except ValueError:
        raise SystemExit(f"step_weights must be hyphen-separated numbers, got {text!r}") from None
    if len(weights) != steps or (weights < 0).any() or weights.sum() <= 0:
        raise SystemExit(
            f"step_weights needs {steps} non-negative weights (one per step of the schedule), not all "
            f"zero; got {text!r}"
        )
    return weights


def guided_velocity(transformer, x, sigma, cond, uncond, guidance: float) -> torch.Tensor:
    if guidance == 1.0:
        return velocity(transformer, x, sigma, cond)
    v = velocity(transformer, torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([cond, uncond]))
    b = x.shape[0]
    return guidance_mix(v[:b], v[b:], guidance)


def random_captions(n: int, seed: int | list[int]) -> list[str]:
    """n captions of the training compositions (one object in four of five clips, two in the rest)."""
    rng = np.random.default_rng(seed)
    return [caption(sample_attributes(rng, "train", None, 0.2), rng) for _ in range(n)]


def make_pairs(
    teacher,
    geometry,
    n: int,
    schedule: str,
    guidance: float,
    seed: int,
    batch: int = 16,
    shared_noise: float = 0.0,
):
    """n (caption, initial noise, teacher outputs) triples, the noise drawn per pair from `seed`.

    "stage_outputs"[k]: the teacher's clean estimate at the end of stage k (its stage_end event; None
    for stages the schedule skips), the regression target of the generator's steps in stage k.
    `shared_noise`: the share of the noise common to all latent frames (DESIGN §6b); its frame-common
    draw is kept per pair ("common") so that the generator's unroll starts from exactly the teacher's
    noise.
    """
    counts = parse_schedule(schedule, geometry.num_stages)
    captions = random_captions(n, seed)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((n, *geometry.full.latent_shape), generator=gen)
    common = torch.randn(frame_common_shape(noise.shape), generator=gen) if shared_noise else None
    stage_outputs: list[list[torch.Tensor]] = [[] for _ in geometry.stages]
    sigmas = schedule_sigmas(geometry, counts)
    for i in range(0, n, batch):
        cond, uncond = teacher.encode_prompt(captions[i : i + batch], [""] * len(captions[i : i + batch]))
        den = cfg_denoiser(teacher.transformer, cond, uncond, guidance)
        chunk = noise[i : i + batch]
        events = sample(
            den,
            geometry,
            sigmas,
            gen,
            batch_size=chunk.shape[0],
            noise=chunk,
            shared_noise=shared_noise,
            common_noise=None if common is None else common[i : i + batch],
        )
        for ev in events:
            if ev.kind == "stage_end":
                stage_outputs[ev.stage].append(ev.x0)
        print(f"teacher pairs {min(i + batch, n)}/{n}", flush=True)
    outputs = [torch.cat(o) if o else None for o in stage_outputs]
    return {
        "captions": captions,
        "noise": noise,
        "shared_noise": shared_noise,
        "common": common,
        "output": outputs[-1],
        "stage_outputs": outputs,
        "schedule": schedule,
    }


class FeatureDiscriminator(torch.nn.Module):
    """Hinge-loss discriminator: one linear head per block of a frozen Wan transformer, on that block's
    output averaged over tokens; the logit is the sum of the heads'. Gradients reach the input through
    the frozen transformer (the generator is trained through it)."""

    def __init__(self, transformer) -> None:
        super().__init__()
        self.transformer = transformer.requires_grad_(False).eval()
        dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
        self.heads = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.LayerNorm(dim), torch.nn.Linear(dim, 1)) for _ in transformer.blocks
        )
        self._features: list[torch.Tensor] | None = None  # collected only inside `forward`, so the
        for block in transformer.blocks:  # same transformer can serve as a real score in between
            block.register_forward_hook(self._collect)

    def _collect(self, _module, _args, out: torch.Tensor) -> None:
        if self._features is not None:
            self._features.append(out.mean(dim=1))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        self._features = []
        try:
            velocity(self.transformer, x, sigma, text)
            return sum(head(f) for head, f in zip(self.heads, self._features)).view(-1)
        finally:
            self._features = None


# --- what every method shares: the generator's own sampling and the stage path --------------------


PLAIN_PATH = (1.0, 0.0)  # the plain process x = (1−σ)·x0 + σ·ε is the stage path from 1 to 0, no U


@dataclasses.dataclass
class Trained:
    """The generator's step being trained: its input (x at σ in stage k, from its own unrolled
    sampling), the lower-stage signal U = R↑ of its own previous stage's final clean estimate (None
    where the stage starts at σ = 1), and its clean estimate x̂0 = Ŷ_k (with gradient)."""

    rows: torch.Tensor | None  # which pairs (None: fresh prompts)
    captions: list[str]
    text: torch.Tensor
    step: int  # index j of the step in the schedule
    k: int
    x: torch.Tensor
    sigma: float
    lower: torch.Tensor | None
    x0: torch.Tensor
    v: torch.Tensor | None = None  # the generator's velocity at x (with gradient)


class Distillation:
    """The shared part of every method: the data (teacher pairs), the generator's backward simulation,
    renoising on a stage path and the regression term. Methods subclass it and define `loss`."""

    pyramidal = True  # renoise on the pyramid's stage path (False: the plain process)
    lower_net = None  # `top_expert`: the frozen initialisation that samples the lower stages (`setup`)

    def __init__(self, cfg: DistillConfig, run: Run, teacher, teacher_net, geometry, pairs, out: Path):
        self.cfg, self.run, self.teacher, self.teacher_net = cfg, run, teacher, teacher_net
        self.geometry, self.pairs, self.out = geometry, pairs, out
        self.counts = parse_schedule(cfg.schedule, geometry.num_stages)
        # (σs, σe) of every stage as the sampler walks it: the first active stage starts at 1
        self.paths = [
            None if g is None else (g[0].item(), g[-1].item()) for g in schedule_sigmas(geometry, self.counts)
        ]
        self.step_of = [k for k, c in enumerate(self.counts) for _ in range(c)]  # stage of each step
        self.step_weights = parse_step_weights(cfg.step_weights, len(self.step_of))
        if cfg.top_expert:  # only the last stage's steps are trained
            top = torch.tensor([float(k == geometry.num_stages - 1) for k in self.step_of])
            if self.step_weights is None:
                self.step_weights = top
            elif (self.step_weights * (1 - top)).any() or not top.any():
                raise SystemExit(
                    "top_expert trains the full-resolution stage only: give step_weights on its steps"
                )
        self.cond, uncond = teacher.encode_prompt(pairs["captions"], [""] * len(pairs["captions"]))
        self.uncond = uncond[:1]
        size = TransformerSize.from_config(
            dict(teacher_net.config), text_len=teacher.card.max_sequence_length
        )
        self.stage_tflops = [forward_flops(s.tokens, size) / TERA for s in geometry.stages]
        self.tflops_file = out / "state" / "distill.json"  # training TFLOPs so far, kept across resumes
        resumed = run.step and self.tflops_file.is_file()
        self.tflops = json.loads(self.tflops_file.read_text())["train_tflops"] if resumed else 0.0
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.classifier = (
            load_attributes(cfg.attribute_classifier).to(run.device) if cfg.attribute_weight else None
        )

    # the generator's own sampling ------------------------------------------------------------------

    def prompts(self, step: int):
        """(rows, captions, text embeddings, noise, frame-common noise or None) of one step: a draw from
        the pairs, or with `fresh_prompts` new captions (fixed by seed and step, so a resumed run draws
        what it would have) and new noise at `shared_noise`."""
        cfg, gen = self.cfg, self.gen
        if not cfg.fresh_prompts:
            rows = torch.randint(0, len(self.pairs["captions"]), (cfg.batch_size,), generator=gen)
            captions = [self.pairs["captions"][i] for i in rows.tolist()]
            common = self.pairs.get("common")
            common = None if common is None else common[rows]
            return rows, captions, self.cond[rows], self.pairs["noise"][rows], common
        captions = random_captions(cfg.batch_size, [cfg.seed, step])
        with torch.no_grad():
            text, _ = self.teacher.encode_prompt(captions, None)
        noise = torch.randn((cfg.batch_size, *self.geometry.full.latent_shape), generator=gen)
        common = torch.randn(frame_common_shape(noise.shape), generator=gen) if cfg.shared_noise else None
        return None, captions, text, noise, common

    def trained_step(self, step: int) -> Trained:
        """Pick the step's prompts and noise (`prompts`) and a step j of the schedule; run the generator's
        sampling (the engine's, by its `step_rule`, jumps included, from that noise at its frame-shared
        share) without gradients up to j; predict x̂0 at j with gradients."""
        gen, model = self.gen, self.run.model
        rows, captions, text, noise, common = self.prompts(step)
        if self.step_weights is None:
            j = int(torch.randint(0, len(self.step_of), (1,), generator=gen))
        else:
            j = int(torch.multinomial(self.step_weights, 1, generator=gen))
        reached, finals = [], {}

        last = self.geometry.num_stages - 1

        def denoiser(x, s, k):
            if len(reached) == j:
                reached.append((x, s, k))
                raise _Reached
            reached.append(None)
            net = self.lower_net if self.lower_net is not None and k < last else model
            with torch.no_grad():
                return velocity(net, x, torch.full((x.shape[0],), s), text)

        try:
            sigmas = schedule_sigmas(self.geometry, self.counts)
            events = sample(
                denoiser,
                self.geometry,
                sigmas,
                gen,
                len(captions),
                self.cfg.step_rule,
                noise=noise,
                shared_noise=self.cfg.shared_noise,  # the pairs' own: load_pairs regenerates them otherwise
                common_noise=common,
            )
            for ev in events:
                if ev.kind == "stage_end":
                    finals[ev.stage] = ev.x0
        except _Reached:
            x, s, k = reached[-1]
        else:
            raise RuntimeError(f"step {j} is past the schedule {self.cfg.schedule}")
        lower = None
        if self.paths[k][0] < 1.0:  # U as the sampler carries it: R↑ of its previous stage's Ŷ
            lower = upsample(finals[k - 1], temporal=self.geometry.stages[k - 1].temporal_halved)
        v = velocity(model, x, torch.full((len(captions),), s), text)
        x0 = stage_clean(x, v, lower, s, *self.paths[k])
        return Trained(rows, captions, text, j, k, x, s, lower, x0, v)

    # renoising on a path -----------------------------------------------------------------------------

    def path(self, t: Trained) -> tuple[float, float]:
        return self.paths[t.k] if self.pyramidal else PLAIN_PATH

    def renoise(self, y: torch.Tensor, lower, t: Trained, sigma: torch.Tensor | None = None):
        """(x, σ, velocity target) of the clean stage signal y on the method's path at stage t.k: the
        stage path with lower-stage signal `lower` (pyramidal) or the plain process. σ uniform over the
        inner 96% of the path unless given; differentiable in y."""
        s_start, s_end = self.path(t)
        if sigma is None:
            u = torch.rand(y.shape[0], generator=self.gen) * 0.96 + 0.02
            sigma = s_end + u * (s_start - s_end)
        s = sigma.view(-1, 1, 1, 1, 1)
        lower = lower if self.pyramidal else None
        eps = torch.randn(y.shape, generator=self.gen)
        x = stage_point(y, lower, eps, s, s_start, s_end)
        return x, sigma, stage_velocity(y, lower, eps, s_start, s_end)

    def clean(self, x, sigma: torch.Tensor, v, t: Trained) -> torch.Tensor:
        """The clean stage signal a velocity implies at a renoised point (DESIGN §6a)."""
        return stage_clean(
            x, v, t.lower if self.pyramidal else None, sigma.view(-1, 1, 1, 1, 1), *self.path(t)
        )

    # the regression term and bookkeeping -------------------------------------------------------------

    def regression(self, t: Trained) -> torch.Tensor:
        """x̂0 against the teacher's own clean estimate at the end of the same stage, same noise."""
        return F.mse_loss(t.x0, self.pairs["stage_outputs"][t.k][t.rows])

    def stage_ode(self, t: Trained) -> tuple[torch.Tensor, int]:
        """(target, teacher forwards): the teacher's guided Euler solution of stage t.k from the trained
        step's own input x at σ, with the generator's own U, on the teacher's `ode_steps`-step grid of the
        stage (the points below σ); with `ode_rule=x0`, its "x0"-rule walk over that grid instead (Ŷ
        renoised on the stage's path with fresh noise each step, as `engine.sampling.sample` does). The
        stage's clean signal as the sampler carries it: the final latent at the last stage (σe = 0), the
        last step's Ŷ elsewhere. Unlike the pairs' stage outputs, which start from the same initial noise
        but meet other lower stages, the Euler target is a function of the generator's own input, so the
        regression asks for the teacher's many-step map, not an average (the "x0" target is a sample of
        that map, so the regression asks for its conditional mean)."""
        cfg = self.cfg
        s_start, s_end = self.paths[t.k]
        grid = stage_sigmas(s_start, s_end, cfg.ode_steps).tolist()
        grid = [t.sigma] + [g for g in grid if g < t.sigma - 1e-6]  # the teacher's steps below σ
        uncond = self.uncond.expand_as(t.text)
        x, y, n = t.x, t.x, len(t.captions)
        with torch.no_grad():
            for s, s_next in zip(grid[:-1], grid[1:]):
                v = guided_velocity(self.teacher_net, x, torch.full((n,), s), t.text, uncond, cfg.guidance)
                y = stage_clean(x, v, t.lower, s, s_start, s_end)
                if cfg.ode_rule == "euler":
                    x = torch.add(x, v, alpha=s_next - s)
                else:
                    x = x0_step(x, y, t.lower, s_next, (s_start, s_end), self.gen, cfg.shared_noise)
        forwards = (len(grid) - 1) * (2 if cfg.guidance != 1.0 else 1)
        return (x if s_end == 0 else y), forwards

    def with_stage_ode(self, t: Trained, loss: torch.Tensor, metrics: dict) -> tuple[torch.Tensor, int]:
        """(loss + ode_weight × MSE(x̂0, `stage_ode`), the teacher forwards it took); unchanged at 0."""
        if not self.cfg.ode_weight:
            return loss, 0
        target, forwards = self.stage_ode(t)
        ode = F.mse_loss(t.x0, target)
        metrics["ode"] = float(ode.detach())
        return loss + self.cfg.ode_weight * ode, forwards

    def with_attribute(self, t: Trained, loss: torch.Tensor, metrics: dict) -> torch.Tensor:
        """loss + attribute_weight × the latent classifier's cross-entropy between x̂0 and the pairs'
        captions (trainers/attributes.py; the top two stages only): the same signal that keeps the base's
        and the pyramid's shape and motion binding, here so that distillation does not wash it out."""
        if self.classifier is None:
            return loss
        extra = stage_caption_loss(self.classifier, t.x0, t.k, self.geometry, t.captions)
        metrics["attribute_ce"] = math.nan if extra is None else float(extra.detach())
        return loss if extra is None else loss + self.cfg.attribute_weight * extra

    def count_flops(self, t: Trained, forwards_at_k: int) -> float:
        """Training TFLOPs so far: the unroll's forwards, then `forwards_at_k` forwards at stage k."""
        flops = sum(self.stage_tflops[self.step_of[i]] for i in range(t.step))
        self.tflops += len(t.captions) * (flops + self.stage_tflops[t.k] * forwards_at_k)
        return self.tflops

    def save(self) -> None:
        """The TFLOPs count; methods with models of their own beside the generator save them too."""
        self.tflops_file.parent.mkdir(parents=True, exist_ok=True)
        self.tflops_file.write_text(json.dumps({"train_tflops": self.tflops}))

    def loss(self, step: int) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError


class _CriticState:
    """An extra trained model and its optimiser, checkpointed in out_dir/state/<name>.pt."""

    def __init__(self, run: Run, model: torch.nn.Module, lr: float, path: Path):
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=lr, betas=(0.0, 0.99))
        self.model, self.opt = run.accelerator.prepare(model, opt)
        self.run, self.path = run, path
        if path.exists():
            saved = torch.load(path)
            run.accelerator.unwrap_model(self.model).load_state_dict(saved["model"])
            self.opt.load_state_dict(saved["opt"])

    def update(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.run.accelerator.backward(loss)
        self.opt.step()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        model = self.run.accelerator.unwrap_model(self.model)
        torch.save({"model": model.state_dict(), "opt": self.opt.state_dict()}, self.path)


class GANTerm:
    """Real clips against the generator's x̂0 at the trained step's stage, through a FeatureDiscriminator
    on the frozen teacher. Both are renoised by the method's `renoise` on the same path with σ drawn the
    same way; the real lower-stage signal comes from the data, the fake one from the generator's own
    previous stage (Trained.lower). Hinge loss. Used by Adv as its whole adversarial part and by DMD as
    DMD2's extra GAN term (`gan_weight`)."""

    def __init__(self, method: Distillation, state_file: str) -> None:
        self.method = method
        cfg, teacher = method.cfg, method.teacher
        self.real_data = clean_latents(teacher, teacher.card, method.geometry, cfg)
        d = FeatureDiscriminator(method.teacher_net)
        self.disc = _CriticState(method.run, d, cfg.critic_lr, method.out / "state" / state_file)

    def forwards(self, updates: int) -> int:
        """Forwards at stage k per step: D on real and fake per update (counted as 3 each, as a backward),
        and the generator's pass through D (forward + backward)."""
        return 6 * updates + 3

    def loss(self, t: Trained, step: int, updates: int) -> tuple[torch.Tensor, float]:
        """`updates` discriminator steps, then the generator's adversarial loss −D(fake) (its gradient
        reaches x̂0 through the frozen teacher) and the last discriminator loss."""
        m = self.method
        latents, captions = self.real_data.sample(step, len(t.captions))
        with torch.no_grad():
            real_text, _ = m.teacher.encode_prompt(captions, None)
        real_lower = None
        if t.lower is not None and m.pyramidal:
            stage_below = m.geometry.stages[t.k - 1]
            real_lower = upsample(latents[t.k - 1].to(t.x0), temporal=stage_below.temporal_halved)
        x_real, s_real, _ = m.renoise(latents[t.k].to(t.x0), real_lower, t)
        x_fake, s_fake, _ = m.renoise(t.x0, t.lower, t)
        d = self.disc.model
        for _ in range(updates):
            d_loss = F.relu(1 - d(x_real, s_real, real_text)).mean()
            d_loss = d_loss + F.relu(1 + d(x_fake.detach(), s_fake, t.text)).mean()
            self.disc.update(d_loss)
        return -d(x_fake, s_fake, t.text).mean(), float(d_loss.detach())


# --- the methods ------------------------------------------------------------------------------------


class PlainDMD(Distillation):
    """DMD (Wan-DMD; DESIGN §7). Each step:
    1. the critic (a copy of the teacher) follows the generator: `critic_updates` flow-matching steps on
       x̂0 renoised on the method's path, target the path's velocity;
    2. x̂0 is renoised once more; the teacher (with CFG) and the critic give the real and fake clean
       estimates there;
    3. grad = (fake − real)/mean|x̂0 − real|, applied to x̂0 (L = 0.5·‖x̂0 − sg(x̂0 − grad)‖²), plus
       reg_weight × the regression onto the teacher's stage outputs.
    The plain process is the stage path from σ = 1 to 0, so here the clean estimate is x − σ·v."""

    pyramidal = False
    grad_at_noisy_input = False  # DMD-PT applies the gradient at the renoised input instead

    def __init__(self, *args):
        super().__init__(*args)
        critic = copy.deepcopy(self.teacher_net).requires_grad_(True).train()
        self.critic = _CriticState(self.run, critic, self.cfg.critic_lr, self.out / "state" / "critic.pt")
        self.gan = GANTerm(self, "discriminator.pt") if self.cfg.gan_weight else None

    def critic_sigma(self, n: int, t: Trained) -> torch.Tensor:
        """σ as the critic's own model was trained: logit-normal (plain) or uniform along the stage."""
        if self.pyramidal:
            s_start, s_end = self.path(t)
            return s_end + torch.rand(n, generator=self.gen) * (s_start - s_end)
        return logit_normal(n, self.gen)

    def loss(self, step: int):
        cfg, t = self.cfg, self.trained_step(step)
        x0 = t.x0.detach()
        for _ in range(cfg.critic_updates):
            x, sigma, target = self.renoise(x0, t.lower, t, self.critic_sigma(len(x0), t))
            c_loss = F.mse_loss(velocity(self.critic.model, x, sigma, t.text).float(), target.float())
            self.critic.update(c_loss)

        x, sigma, _ = self.renoise(t.x0, t.lower, t)  # differentiable in x̂0
        with torch.no_grad():
            uncond = self.uncond.expand_as(t.text)
            v_real = guided_velocity(self.teacher_net, x, sigma, t.text, uncond, cfg.guidance)
            v_fake = velocity(self.critic.model, x, sigma, t.text)
        grad = dmd_gradient(self.clean(x, sigma, v_fake, t), self.clean(x, sigma, v_real, t), x0)
        # DMD-PT: at x the gradient reaches x̂0 through the path, scaled by ∂x/∂x̂0 = (1−ρ)(1−σe)
        loss = dmd_loss(x, grad) if self.grad_at_noisy_input else dmd_loss(t.x0, grad)
        metrics = {"stage": t.k, "sigma": t.sigma, "dmd": float(loss.detach())}
        metrics["critic"] = float(c_loss.detach()) if cfg.critic_updates else 0.0
        if cfg.reg_weight:
            reg = self.regression(t)
            metrics["reg"] = float(reg.detach())
            loss = loss + cfg.reg_weight * reg
        # forwards at stage k: generator 3 (fwd + bwd), critic 3 per update + 1, teacher 1 or 2 (CFG)
        forwards = 3 + 3 * cfg.critic_updates + 1 + (2 if cfg.guidance != 1.0 else 1)
        if self.gan is not None:  # DMD2: + gan_weight × the generator's adversarial loss
            adv, metrics["disc"] = self.gan.loss(t, step, 1)
            metrics["adv"] = float(adv.detach())
            loss = loss + cfg.gan_weight * adv
            forwards += self.gan.forwards(1)
        loss, ode_forwards = self.with_stage_ode(t, loss, metrics)
        forwards += ode_forwards
        loss = self.with_attribute(t, loss, metrics)
        metrics["train_tflops"] = self.count_flops(t, forwards)
        if step and step % cfg.checkpoint_every == 0:
            self.save()
        return loss, metrics

    def save(self) -> None:
        super().save()
        self.critic.save()
        if self.gan is not None:
            self.gan.disc.save()


class DMDOT(PlainDMD):
    """DMD-OT: the original (plain) model as teacher at every stage's resolution, plain renoising;
    `teacher_lowres_steps` first finetunes it by plain flow matching on the lower stages' clean latents
    (DESIGN §7) — see `finetune_lowres`, its own run in out_dir/teacher-lowres."""


class DMDPT(PlainDMD):
    """DMD-PT: the pyramidal teacher; x̂0 is renoised on its stage's path (the generator's own U), the
    real and fake clean estimates are the stage-exact Ŷ (DESIGN §6a) and the gradient, computed in the
    clean signal's units, is applied at the renoised input, so it reaches x̂0 through the path's linear
    map: an effective weight (1−ρ)(1−σe) per sample."""

    pyramidal = True
    grad_at_noisy_input = True


class DMDPTStar(DMDPT):
    """DMD-PT*: DMD-PT with the gradient applied to x̂0 directly (weight 1 at every σ) — our reading of
    the paper's simplified weighting."""

    grad_at_noisy_input = False


class Adversarial(Distillation):
    """Adv: the GANTerm alone (discriminator heads on the frozen teacher's block features, hinge loss,
    real clips from the latent cache) plus the regression; the generator's loss is λ_adv·adv + λ_rec·rec.
    Pyramidal path when the teacher is pyramidal."""

    def __init__(self, *args):
        super().__init__(*args)
        self.pyramidal = self.teacher.card.pyramidal
        self.gan = GANTerm(self, "critic.pt")

    def loss(self, step: int):
        cfg, t = self.cfg, self.trained_step(step)
        updates = max(1, cfg.critic_updates)
        adv, d_loss = self.gan.loss(t, step, updates)
        rec = self.regression(t)
        metrics = {"stage": t.k, "sigma": t.sigma, "critic": d_loss}
        metrics.update(adv=float(adv.detach()), reg=float(rec.detach()))
        metrics["train_tflops"] = self.count_flops(t, 3 + self.gan.forwards(updates))
        if step and step % cfg.checkpoint_every == 0:
            self.save()
        return self.with_attribute(t, cfg.adv_weight * adv + cfg.rec_weight * rec, metrics), metrics

    def save(self) -> None:
        super().save()
        self.gan.disc.save()


class GuidanceDistillation(Distillation):
    """Guidance distillation (Meng et al.), on the generator's own trajectory: at the input x of the
    trained step (its own unroll, jumps included), its single velocity regresses onto the teacher's
    guided one, v_u + g·(v_c − v_u), plus reg_weight × the regression onto the teacher's stage outputs.
    The generator then samples without CFG — one forward a step instead of two — as the teacher samples
    with it; with `step_rule=euler` its few-step run is the teacher's guided Euler run at that schedule.
    No critic: the teacher is the only other model."""

    def loss(self, step: int):
        cfg, t = self.cfg, self.trained_step(step)
        sigma = torch.full((len(t.captions),), t.sigma)
        with torch.no_grad():
            uncond = self.uncond.expand_as(t.text)
            target = guided_velocity(self.teacher_net, t.x, sigma, t.text, uncond, cfg.guidance)
        loss = F.mse_loss(t.v.float(), target.float())
        metrics = {"stage": t.k, "sigma": t.sigma, "guided": float(loss.detach())}
        if cfg.reg_weight:
            reg = self.regression(t)
            metrics["reg"] = float(reg.detach())
            loss = loss + cfg.reg_weight * reg
        loss = self.with_attribute(t, loss, metrics)
        # forwards at stage k: generator 3 (fwd + bwd), teacher 1 or 2 (CFG)
        metrics["train_tflops"] = self.count_flops(t, 3 + (2 if cfg.guidance != 1.0 else 1))
        if step and step % cfg.checkpoint_every == 0:
            self.save()
        return loss, metrics


METHODS = {
    "pt": DMDPT,
    "pt-star": DMDPTStar,
    "ot": DMDOT,
    "plain": PlainDMD,
    "adv": Adversarial,
    "guidance": GuidanceDistillation,
}
# the methods whose teacher walks the generator's own path, so `ode_weight` can follow it (not `ot`: its
# teacher is the plain model at each stage's resolution)
ODE_METHODS = ("pt", "pt-star", "plain")


def load_pairs(cfg: DistillConfig, pair_model, geometry, out: Path) -> dict:
    """The teacher ODE pairs (shared file; regenerated when it lacks the per-stage outputs or its noise
    has another frame-shared share than `cfg.shared_noise`)."""
    path = Path(cfg.pairs_file) if cfg.pairs_file else out / "pairs.pt"
    if path.exists():
        pairs = torch.load(path)
        if "stage_outputs" in pairs and pairs.get("shared_noise", 0.0) == cfg.shared_noise:
            return pairs
        print(f"{path} has no per-stage teacher outputs or other shared noise: regenerating it")
    schedule = cfg.pair_schedule or pair_model.card.schedule
    pairs = make_pairs(
        pair_model, geometry, cfg.pairs, schedule, cfg.guidance, cfg.seed, shared_noise=cfg.shared_noise
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(pairs, path)
    return pairs


def setup(cfg: DistillConfig) -> tuple[Distillation, object]:
    """Load the teacher and the generator's initialisation, the pairs and (for `ot`) the low-resolution
    teacher; return the method, ready to train, and the initialisation's model card."""
    if cfg.method not in METHODS:
        raise SystemExit(f"method must be one of {', '.join(METHODS)}, got {cfg.method!r}")
    if cfg.step_rule not in STEP_RULES:
        raise SystemExit(f"step_rule must be one of {', '.join(STEP_RULES)}, got {cfg.step_rule!r}")
    if cfg.fresh_prompts and (cfg.reg_weight or cfg.method == "adv"):
        raise SystemExit(
            "fresh_prompts draws new noise every step, which has no teacher outputs to regress onto: "
            "set reg_weight=0 (and use a method other than adv, whose loss needs the regression)"
        )
    if cfg.ode_weight and (cfg.method not in ODE_METHODS or cfg.ode_steps < 1):
        raise SystemExit(
            f"ode_weight needs a method whose teacher walks the generator's own path "
            f"({', '.join(ODE_METHODS)}) and ode_steps ≥ 1; got method={cfg.method}, "
            f"ode_steps={cfg.ode_steps}"
        )
    if cfg.ode_rule not in STEP_RULES:
        raise SystemExit(f"ode_rule must be one of {', '.join(STEP_RULES)}, got {cfg.ode_rule!r}")
    set_threads(cfg.num_threads)  # before the teacher pairs: Run sets it too, but only after them
    zoo = ModelRegistry(cfg.zoo_dir)

    def load(name: str):
        return load_model(zoo.locate(name), device="cpu", dtype="float32")

    teacher = load(cfg.teacher)
    init = load(cfg.generator)
    card, geometry = init.card, init.geometry
    counts = parse_schedule(cfg.schedule, geometry.num_stages)
    if cfg.method in ("pt", "pt-star") and not teacher.card.pyramidal:
        raise SystemExit(f"method {cfg.method} needs a pyramidal teacher; {cfg.teacher} is not one")

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # regression targets are stage outputs: a plain teacher has none below full resolution, so a
    # pyramidal schedule then takes its pairs from the generator's (pyramidal) initialisation
    pair_model = teacher if teacher.card.pyramidal or is_plain(counts) else init
    pairs = load_pairs(cfg, pair_model, geometry, out)
    missing = [k for k, c in enumerate(counts) if c and pairs["stage_outputs"][k] is None]
    if missing:
        raise SystemExit(
            f"the teacher pairs were sampled with {pairs['schedule']}, which skips stage(s) {missing} that "
            f"{cfg.schedule} trains; regression targets are the teacher's stage outputs: give a "
            f"pair_schedule with steps at every stage (e.g. 20-20-10) or a new pairs_file"
        )

    teacher_net = teacher.transformer.requires_grad_(False).eval()
    lowres = out / "teacher-lowres"  # the low-resolution teacher finetune's own run (`ot`)
    if cfg.method == "ot" and cfg.teacher_lowres_steps:
        if not finetune_lowres(teacher_net, teacher, card, geometry, cfg, lowres):
            print(
                f"the teacher's low-resolution finetune stopped at its time limit: rerun to resume {lowres}"
            )
            raise SystemExit(0)
    if (lowres / "model").is_dir():
        from diffusers import WanTransformer3DModel

        teacher_net = WanTransformer3DModel.from_pretrained(lowres / "model").requires_grad_(False)
    # top_expert from an initialisation that has one (a zoo expert) trains that expert further
    start = init.top_expert if cfg.top_expert and init.top_expert is not None else init.transformer
    generator = copy.deepcopy(start).float().requires_grad_(True).train()
    # top_expert: the initialisation itself (never the resumed state) samples the lower stages, frozen
    lower_net = init.transformer.float().requires_grad_(False).eval() if cfg.top_expert else None
    del init
    if cfg.lora_rank:
        add_lora(generator, cfg.lora_rank, cfg.lora_alpha or cfg.lora_rank)
    run = Run(cfg, generator)  # trains the parameters that require grad: all, or the adapters
    method = METHODS[cfg.method](cfg, run, teacher, teacher_net, geometry, pairs, out)
    method.lower_net = lower_net
    return method, card


def distilled_card(cfg: DistillConfig, card):
    """The exported variant's card: the generator's pyramid, sampled over `schedule` by `step_rule`."""
    how = {"adv": "adversarially", "guidance": f"by guidance distillation (g = {cfg.guidance})"}
    return tiny_card(
        description=f"{cfg.variant}: {Path(cfg.generator).name} step-distilled "
        + how.get(cfg.method, "with DMD")
        + f" ({cfg.method}, teacher {cfg.teacher}) for {cfg.schedule}"
        + (", its full-resolution stage as a top-stage expert" if cfg.top_expert else ""),
        pyramidal=card.pyramidal,
        schedule=cfg.schedule,
        step_rule=cfg.step_rule,
        guidance=1.0,
        boundaries=card.boundaries,
        frames=card.frames,
        height=card.height,
        width=card.width,
        shared_noise=card.shared_noise,  # samples as its generator's initialisation does (DESIGN §6b)
    )


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(DistillConfig, argv, __doc__.splitlines()[0])
    method, card = setup(cfg)
    run, zoo = method.run, Path(cfg.zoo_dir)
    distilled = distilled_card(cfg, card)
    evaluate = None
    if cfg.eval_every:  # the learning curve: ToyBench of the EMA generator as the variant will sample
        teacher = method.teacher
        # top_expert: the frozen initialisation samples the lower stages, the trained model the top one
        trained = unwrap(run)
        below, top = (trained, None) if method.lower_net is None else (method.lower_net, trained)
        evaluate = toybench_evaluator(
            dataclasses.replace(cfg, eval_schedule=cfg.eval_schedule or cfg.schedule),
            below,
            teacher.pipe.text_encoder,
            teacher.tokenizer,
            teacher.vae,
            distilled,
            lambda step: method.tflops,
            top_expert=top,
        )
    run.train(method.loss, evaluate)
    method.save()
    if run.accelerator.is_main_process and cfg.variant:
        with run.ema_weights() as ema:
            plain = merged_lora(ema) if cfg.lora_rank else ema
            if cfg.top_expert:  # the frozen initialisation below, the trained model at the top stage
                folder = export_variant(cfg.variant, method.lower_net, distilled, zoo, top_expert=plain)
            else:
                folder = export_variant(cfg.variant, plain, distilled, zoo)
            print(f"exported {folder}")


LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "net.0.proj", "net.2")  # attention and FFN linears


def add_lora(transformer: torch.nn.Module, rank: int, alpha: float) -> None:
    """Freeze the transformer and give its attention and FFN linears LoRA adapters (peft, through
    diffusers' adapter API); only the adapters train. Their B matrices start at zero, so training starts
    from the unchanged model."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(LORA_TARGETS)))


def merged_lora(transformer: torch.nn.Module) -> torch.nn.Module:
    """A copy of a transformer with LoRA adapters, the adapters merged into its weights: a plain
    diffusers model the engine loads like any other."""
    plain = copy.deepcopy(transformer)
    plain.fuse_lora()
    plain.unload_lora()
    return plain


def clean_latents(teacher, card, geometry, cfg: DistillConfig):
    """The procedural world's clean latents at every stage (the shared latent cache, built if missing)."""
    return cached(
        teacher.vae,
        cfg.cache,
        clips=cfg.cache_clips,
        seed=cfg.seed,
        frames=card.frames,
        height=card.height,
        width=card.width,
        num_stages=geometry.num_stages,
    )


def finetune_lowres(teacher_net, teacher, card, geometry, cfg: DistillConfig, out: Path) -> bool:
    """DMD-OT's preparation: plain flow matching of the original model on the lower stages' clean
    latents (all σ ∈ (0, 1)), so its real score is meaningful at low resolution.

    A run of its own on the shared loop in `out` (out_dir/teacher-lowres): log.csv, a resumable state/,
    --max-minutes; `teacher_lowres_steps` steps of `batch_size` clips at a constant 4 × lr, no EMA and no
    gradient clipping. The finetuned weights go to out/model; a rerun that asks for no more steps reuses
    them without building the run. Returns whether the finetune is complete (False: the time limit
    stopped it; rerunning the command resumes it)."""
    from trainers.zoo import tokenize

    steps = cfg.teacher_lowres_steps
    state = out / "state" / "step.json"
    if (out / "model").is_dir() and state.is_file() and json.loads(state.read_text())["step"] >= steps:
        return True
    data = clean_latents(teacher, card, geometry, cfg)
    text_encoder = teacher.pipe.text_encoder
    run = Run(
        TrainConfig(
            out_dir=str(out),
            seed=cfg.seed + 2,
            batch_size=cfg.batch_size,
            lr=4 * cfg.lr,
            weight_decay=0.01,  # AdamW's default, as this finetune always had
            warmup_steps=0,
            lr_floor=1.0,  # constant
            max_steps=steps,
            max_minutes=cfg.max_minutes,
            use_ema=False,
            grad_clip=0.0,
            log_every=cfg.log_every,
            checkpoint_every=cfg.checkpoint_every,
            num_threads=cfg.num_threads,
            mixed_precision=cfg.mixed_precision,
        ),
        copy.deepcopy(teacher_net).requires_grad_(True).train(),
    )

    def loss(step: int):
        latents, captions = data.sample(step, cfg.batch_size)
        k = step % (geometry.num_stages - 1)  # the lower stages in turn
        x0 = latents[k].to(run.device)
        ids, mask = tokenize(teacher.tokenizer, captions, "cpu")
        with torch.no_grad():
            text = masked_text(text_encoder(ids, mask).last_hidden_state, mask).float().to(run.device)
        eps = torch.randn(x0.shape).to(run.device)
        sigma = logit_normal(x0.shape[0]).to(run.device)
        x = noisy(x0, eps, sigma.view(-1, 1, 1, 1, 1))
        return F.mse_loss(velocity(run.model, x, sigma, text), velocity_target(x0, eps)), {"stage": k}

    run.train(loss)
    if run.step < steps:
        return False
    if run.accelerator.is_main_process:
        unwrap(run).save_pretrained(out / "model")
    run.accelerator.wait_for_everyone()
    return True


if __name__ == "__main__":
    main()
