"""Step-distil a model into a few-step generator with DMD (DESIGN §7).

    python -m trainers.distill        # DMD-PT*: pyramidal-wan-tiny → pyramidal-wan-tiny-dmd (2-2-1)
    python -m trainers.distill method=pt variant=pyramidal-wan-tiny-dmd-pt out_dir=runs/dmd-pt
    python -m trainers.distill method=ot teacher=wan-tiny teacher_lowres_steps=200 \
        variant=pyramidal-wan-tiny-dmd-ot out_dir=runs/dmd-ot
    python -m trainers.distill method=plain generator=wan-tiny teacher=wan-tiny schedule=0-0-4 \
        critic_updates=2 lr=1e-4 variant=wan-tiny-dmd out_dir=runs/wan-tiny-dmd

The generator (initialised from `generator`) samples with the engine's own "predict x0, renoise" rule
over `schedule`, including the pyramid's jumps. Backward simulation: each step picks one step j of the
schedule at random, runs the generator without gradients up to j and trains its prediction x̂0 at j, so
every step of the few-step schedule is trained on the inputs it meets at inference.

DMD: x̂0 (at its stage's resolution) is renoised, the teacher with CFG gives the real clean estimate and a
critic — a copy of the teacher trained by flow matching on generator samples, `critic_updates` times per
generator step — the fake one; the generator is pushed by their normalised difference:
    grad = (x0_fake − x0_real) / mean|x̂0 − x0_real|,   L = 0.5·‖x − sg(x − grad)‖².
Methods differ in how x̂0 is renoised and where the gradient is applied:
- `pt`: the stage's *pyramidal* forward process (a mix of the stage's end point and its start point built
  from R↑R↓x̂0, trainers.pyramidalize.pyramid_point), teacher = the pyramidal model; the difference is
  taken at the noisy input x and flows back to x̂0 through that linear map;
- `pt-star`: the same renoising, but the difference of the two *clean stage signals* implied by the
  teacher's and critic's velocities is applied to x̂0 directly (no Jacobian of the pyramidal map) — our
  reading of the paper's simplified weighting;
- `ot`: the original plain model as teacher at each stage's resolution, plain renoising
  x = (1−t)·x̂0 + t·ε; `teacher_lowres_steps` first finetunes the teacher by plain flow matching on the
  lower stages' clean latents (DESIGN §7: "first briefly finetuned to work at the low resolutions");
- `plain`: the same as `ot` for a full-resolution schedule such as 0-0-4 (the Wan-DMD baseline).
- `adv`: no critic; discriminator heads on the frozen teacher's block features (mean over tokens) tell
  renoised real clips (the latent cache) from renoised generator samples; hinge loss; the generator's
  loss is λ_adv·adv + λ_rec·rec with rec the regression below. Pyramidal renoising when the teacher is
  pyramidal, plain otherwise.
`lora_rank` > 0 trains LoRA adapters on the generator's attention and FFN linears instead of all its
weights (DESIGN §7's option for PT and PT*; any method accepts it); the export merges them.
A supervised term (`reg_weight`, ≈ 0.01) regresses x̂0 onto the teacher's own ODE output from the same
initial noise, projected to the stage's resolution; the pairs are generated once into out_dir/pairs.pt.

Defaults as measured here (ToyBench 2-2-1, n = 32, 10 CPU-minutes each): 5 critic updates per generator
step at generator lr 2e-5 gave DMD-PT* FD 1132 (the initialisation itself, same rule: 1239); 2 updates at
1e-4 drifted away from the teacher (FD 1394, and 1874 for DMD-PT). The plain full-resolution baseline gets
only ~100 steps in the same time and lost its objects with the new defaults (FD 4747 at 0-0-4, against
2796 with 2 updates at 1e-4), so it is built with the earlier settings, as is the adversarial variant.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine.flops import TransformerSize, forward_flops
from engine.models import ZOO_DIR, load_model
from engine.pyramid import stage_geometry
from engine.sampling import cfg_denoiser, sample
from engine.schedule import parse_schedule
from engine.transitions import downsample
from trainers.common import Run, TrainConfig, parse_config, set_threads
from trainers.data import cached
from trainers.pyramidalize import pyramid_point, pyramid_sample
from trainers.zoo import export_variant, tiny_card, velocity
from world.captions import caption
from world.split import sample_attributes

METHODS = ("pt", "pt-star", "ot", "plain", "adv")


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


class _Reached(Exception):
    """Stops the no-gradient unroll at the step being trained."""


def project_to_stage(y: torch.Tensor, k: int, geometry) -> torch.Tensor:
    """Full-resolution latents → stage k's resolution (R↓ once per stage above k)."""
    for kk in range(geometry.num_stages - 1, k, -1):
        y = downsample(y, temporal=geometry.stages[kk - 1].temporal_halved)
    return y


def dmd_gradient(
    x0_fake: torch.Tensor, x0_real: torch.Tensor, x0: torch.Tensor, real_clean: torch.Tensor | None = None
) -> torch.Tensor:
    """DMD's normalised gradient (x0_fake − x0_real) / mean|x̂0 − x0_real| (mean per sample); zero when
    the critic agrees with the teacher. `real_clean`: the teacher's estimate in x̂0's own space, when
    x0_real lives elsewhere (DMD-PT takes the difference at the noisy input)."""
    ref = x0_real if real_clean is None else real_clean
    norm = (x0 - ref).abs().mean(dim=tuple(range(1, x0.ndim)), keepdim=True).clamp_min(1e-4)
    return (x0_fake - x0_real) / norm


def dmd_loss(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """0.5·‖x − sg(x − grad)‖² (mean): its gradient with respect to x is grad (divided by x.numel())."""
    return 0.5 * F.mse_loss(x, (x - grad).detach(), reduction="mean")


def stage_clean(x: torch.Tensor, sigma: torch.Tensor, v: torch.Tensor, eps: torch.Tensor, sigma_end: float):
    """The clean stage signal Y implied by velocity v at the pyramidal point x (level σ) with noise eps:
    the predicted end point E = x − (σ − σ_end)·v = (1 − σ_end)·Y + σ_end·ε, solved for Y."""
    s = sigma.view(-1, 1, 1, 1, 1)
    end = x - (s - sigma_end) * v
    return (end - sigma_end * eps) / (1.0 - sigma_end)


def guided_velocity(transformer, x, sigma, cond, uncond, guidance: float) -> torch.Tensor:
    if guidance == 1.0:
        return velocity(transformer, x, sigma, cond)
    v = velocity(transformer, torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([cond, uncond]))
    b = x.shape[0]
    return torch.lerp(v[b:], v[:b], guidance)


def random_captions(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [caption(sample_attributes(rng, "train", None, 0.2), rng) for _ in range(n)]


def make_pairs(teacher, geometry, n: int, schedule: str, guidance: float, seed: int, batch: int = 16):
    """n (caption, initial noise, teacher ODE output) triples, the noise drawn per pair from `seed`."""
    counts = parse_schedule(schedule, geometry.num_stages)
    captions = random_captions(n, seed)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn((n, *geometry.full.latent_shape), generator=gen)
    outputs = []
    for i in range(0, n, batch):
        cond, uncond = teacher.encode_prompt(captions[i : i + batch], [""] * len(captions[i : i + batch]))
        den = cfg_denoiser(teacher.transformer, cond, uncond, guidance)
        chunk = noise[i : i + batch]
        *_, done = sample(den, geometry, counts, gen, batch_size=chunk.shape[0], noise=chunk)
        outputs.append(done.x0)
        print(f"teacher pairs {min(i + batch, n)}/{n}", flush=True)
    return {"captions": captions, "noise": noise, "output": torch.cat(outputs), "schedule": schedule}


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
        self._features: list[torch.Tensor] = []
        for block in transformer.blocks:
            block.register_forward_hook(lambda _m, _a, out: self._features.append(out.mean(dim=1)))

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        self._features = []
        velocity(self.transformer, x, sigma, text)
        return sum(head(f) for head, f in zip(self.heads, self._features)).view(-1)


def main(argv: list[str] | None = None) -> None:
    cfg = parse_config(DistillConfig, argv, __doc__.splitlines()[0])
    if cfg.method not in METHODS:
        raise SystemExit(f"method must be one of {', '.join(METHODS)}, got {cfg.method!r}")
    set_threads(cfg.num_threads)  # before the teacher pairs: Run sets it too, but only after them
    zoo = Path(cfg.zoo_dir)

    def load(name: str):
        path = zoo / name
        return load_model(str(path) if path.is_dir() else name, device="cpu", dtype="float32")

    teacher = load(cfg.teacher)
    init = load(cfg.generator)
    card = init.card
    geometry = stage_geometry(
        card.frames, card.height, card.width, card.num_stages, init.latent_channels, card.boundaries
    )
    counts = parse_schedule(cfg.schedule, geometry.num_stages)
    adversarial = cfg.method == "adv"
    pyramidal_renoise = cfg.method in ("pt", "pt-star") or (adversarial and teacher.card.pyramidal)
    if pyramidal_renoise and not teacher.card.pyramidal:
        raise SystemExit(f"method {cfg.method} needs a pyramidal teacher; {cfg.teacher} is not one")

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs_file = Path(cfg.pairs_file) if cfg.pairs_file else out / "pairs.pt"
    if pairs_file.exists():
        pairs = torch.load(pairs_file)
    else:
        schedule = cfg.pair_schedule or teacher.card.schedule
        pairs = make_pairs(teacher, geometry, cfg.pairs, schedule, cfg.guidance, cfg.seed)
        pairs_file.parent.mkdir(parents=True, exist_ok=True)
        torch.save(pairs, pairs_file)
    cond_all, uncond = teacher.encode_prompt(pairs["captions"], [""] * len(pairs["captions"]))
    uncond = uncond[:1]

    teacher_net = teacher.transformer.requires_grad_(False).eval()
    if cfg.method == "ot" and cfg.teacher_lowres_steps and not (out / "teacher-lowres").is_dir():
        finetune_lowres(teacher_net, teacher, card, geometry, cfg, out / "teacher-lowres")
    if (out / "teacher-lowres").is_dir():
        from diffusers import WanTransformer3DModel

        teacher_net = WanTransformer3DModel.from_pretrained(out / "teacher-lowres").requires_grad_(False)
    if adversarial:
        critic = FeatureDiscriminator(teacher_net)
        real_data = clean_latents(teacher, card, geometry, cfg)
    else:
        critic = copy.deepcopy(teacher_net).requires_grad_(True).train()
    generator = copy.deepcopy(init.transformer).float().requires_grad_(True).train()
    del init
    if cfg.lora_rank:
        add_lora(generator, cfg.lora_rank, cfg.lora_alpha or cfg.lora_rank)
    run = Run(cfg, generator)  # trains the parameters that require grad: all, or the adapters
    critic_params = [p for p in critic.parameters() if p.requires_grad]
    critic_opt = torch.optim.AdamW(critic_params, lr=cfg.critic_lr, betas=(0.0, 0.99))
    critic, critic_opt = run.accelerator.prepare(critic, critic_opt)
    critic_state = out / "state" / "critic.pt"
    if critic_state.exists():
        saved = torch.load(critic_state)
        run.accelerator.unwrap_model(critic).load_state_dict(saved["model"])
        critic_opt.load_state_dict(saved["opt"])

    size = TransformerSize.from_config(dict(teacher_net.config), text_len=card.max_sequence_length)
    stage_flops = [forward_flops(s.tokens, size) / 1e12 for s in geometry.stages]
    step_of = [k for k, c in enumerate(counts) for _ in range(c)]  # stage of each step of the schedule
    tflops = [0.0]
    gen = torch.Generator().manual_seed(cfg.seed + 1)

    def unroll(rows: torch.Tensor, j: int):
        """(x, σ, stage) at step j of the generator's own sampling, without gradients."""
        text = cond_all[rows]
        calls = []

        def denoiser(x, s, k):
            if len(calls) == j:
                calls.append((x, s, k))
                raise _Reached
            calls.append(None)
            with torch.no_grad():
                return velocity(run.model, x, torch.full((x.shape[0],), s), text)

        try:
            for _ in sample(
                denoiser,
                geometry,
                counts,
                gen,
                batch_size=len(rows),
                step_rule="x0",
                noise=pairs["noise"][rows],
            ):
                pass
        except _Reached:
            return calls[-1]
        raise RuntimeError(f"step {j} is past the schedule {cfg.schedule}")

    def clean_levels(x0: torch.Tensor, k: int) -> list:
        """The clean signals pyramid_point reads for stage k: x̂0 and, below it, R↓x̂0 (differentiable)."""
        y = [None] * k + [x0]
        if k > 0:
            y[k - 1] = downsample(x0, temporal=geometry.stages[k - 1].temporal_halved)
        return y

    def renoise(x0: torch.Tensor, k: int):
        """(x, σ, ε) of x̂0 renoised at stage k, differentiable in x̂0."""
        b = x0.shape[0]
        eps = torch.randn(x0.shape, generator=gen)
        u = torch.rand(b, generator=gen) * 0.96 + 0.02
        if pyramidal_renoise:
            x, sigma, _ = pyramid_point(clean_levels(x0, k), k, geometry, eps, u)
            return x, sigma, eps
        s = u.view(-1, 1, 1, 1, 1)
        return (1 - s) * x0 + s * eps, u, eps

    def critic_loss(x0: torch.Tensor, k: int, text: torch.Tensor) -> torch.Tensor:
        if pyramidal_renoise:
            x, sigma, target = pyramid_sample(clean_levels(x0, k), k, geometry, gen)
        else:
            eps = torch.randn(x0.shape, generator=gen)
            sigma = torch.sigmoid(torch.randn(x0.shape[0], generator=gen))
            s = sigma.view(-1, 1, 1, 1, 1)
            x, target = (1 - s) * x0 + s * eps, eps - x0
        return F.mse_loss(velocity(critic, x, sigma, text).float(), target.float())

    def rec_loss(x0: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
        return F.mse_loss(x0, project_to_stage(pairs["output"][rows], k, geometry))

    def adversarial_step(x0, k, text, rows, step, metrics):
        latents, captions = real_data.sample(step, len(rows))
        with torch.no_grad():
            real_text, _ = teacher.encode_prompt(captions, None)
        y_real = [lat.to(x0) for lat in latents[: k + 1]]
        if pyramidal_renoise:
            x_real, s_real, _ = pyramid_sample(y_real, k, geometry, gen)
        else:
            x_real, s_real, _ = renoise(y_real[k], k)
        x_fake, s_fake, _ = renoise(x0, k)
        for _ in range(max(1, cfg.critic_updates)):
            d_loss = F.relu(1 - critic(x_real, s_real, real_text)).mean()
            d_loss = d_loss + F.relu(1 + critic(x_fake.detach(), s_fake, text)).mean()
            critic_opt.zero_grad(set_to_none=True)
            run.accelerator.backward(d_loss)
            critic_opt.step()
        adv = -critic(x_fake, s_fake, text).mean()  # through the frozen teacher to x̂0
        rec = rec_loss(x0, rows, k)
        metrics.update(critic=float(d_loss.detach()), adv=float(adv.detach()), reg=float(rec.detach()))
        forwards = 3 + 3 * max(1, cfg.critic_updates) * 2 + 3  # generator, D on real + fake, G's D pass
        tflops[0] += len(rows) * stage_flops[k] * forwards
        metrics["train_tflops"] = tflops[0]
        return cfg.adv_weight * adv + cfg.rec_weight * rec, metrics

    def loss_fn(step: int):
        rows = torch.randint(0, len(pairs["captions"]), (cfg.batch_size,), generator=gen)
        j = int(torch.randint(0, len(step_of), (1,), generator=gen))
        x_j, s_j, k = unroll(rows, j)
        text = cond_all[rows]
        b = len(rows)
        v = velocity(run.model, x_j, torch.full((b,), s_j), text)
        x0 = x_j - s_j * v
        metrics = {"stage": k, "sigma": s_j}

        if adversarial:
            return adversarial_step(x0, k, text, rows, step, metrics)
        for _ in range(cfg.critic_updates):  # the critic follows the generator's current samples
            c_loss = critic_loss(x0.detach(), k, text)
            critic_opt.zero_grad(set_to_none=True)
            run.accelerator.backward(c_loss)
            critic_opt.step()
        metrics["critic"] = float(c_loss.detach()) if cfg.critic_updates else 0.0

        x, sigma, eps = renoise(x0, k)
        with torch.no_grad():
            v_real = guided_velocity(teacher_net, x, sigma, text, uncond.expand_as(text), cfg.guidance)
            v_fake = velocity(critic, x, sigma, text)
        s = sigma.view(-1, 1, 1, 1, 1)
        if cfg.method == "pt":
            sigma_end = geometry.stages[k].sigma_end
            real = stage_clean(x, sigma, v_real, eps, sigma_end)
            grad = dmd_gradient(x - s * v_fake, x - s * v_real, x0.detach(), real_clean=real)
            loss = dmd_loss(x, grad)  # flows back to x̂0 through the pyramidal renoising map
        elif cfg.method == "pt-star":
            sigma_end = geometry.stages[k].sigma_end
            fake = stage_clean(x, sigma, v_fake, eps, sigma_end)
            real = stage_clean(x, sigma, v_real, eps, sigma_end)
            loss = dmd_loss(x0, dmd_gradient(fake, real, x0.detach()))
        else:
            loss = dmd_loss(x0, dmd_gradient(x - s * v_fake, x - s * v_real, x0.detach()))
        metrics["dmd"] = float(loss.detach())
        if cfg.reg_weight:
            reg = rec_loss(x0, rows, k)
            metrics["reg"] = float(reg.detach())
            loss = loss + cfg.reg_weight * reg
        # forwards: unroll j, generator 3 (fwd + bwd), critic 3 per update + 1, teacher 1 or 2 (CFG)
        flops = sum(stage_flops[step_of[i]] for i in range(j)) + stage_flops[k] * (
            3 + 3 * cfg.critic_updates + 1 + (2 if cfg.guidance != 1.0 else 1)
        )
        tflops[0] += b * flops
        metrics["train_tflops"] = tflops[0]
        if step and step % cfg.checkpoint_every == 0:
            save_critic()
        return loss, metrics

    def save_critic() -> None:
        critic_state.parent.mkdir(parents=True, exist_ok=True)
        state = {"model": run.accelerator.unwrap_model(critic).state_dict(), "opt": critic_opt.state_dict()}
        torch.save(state, critic_state)

    run.train(loss_fn)
    save_critic()
    if run.accelerator.is_main_process and cfg.variant:
        with run.ema_weights() as ema:
            distilled = tiny_card(
                description=f"{cfg.variant}: {cfg.generator} step-distilled with DMD ({cfg.method}, "
                f"teacher {cfg.teacher}) for {cfg.schedule}",
                pyramidal=card.pyramidal,
                schedule=cfg.schedule,
                step_rule="x0",
                guidance=1.0,
                boundaries=card.boundaries,
                frames=card.frames,
                height=card.height,
                width=card.width,
            )
            plain = merged_lora(ema) if cfg.lora_rank else ema
            print(f"exported {export_variant(cfg.variant, plain, distilled, zoo)}")


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


def finetune_lowres(teacher_net, teacher, card, geometry, cfg: DistillConfig, out: Path) -> None:
    """DMD-OT's preparation: plain flow matching of the original model on the lower stages' clean
    latents (all σ ∈ (0, 1)), so its real score is meaningful at low resolution."""
    from trainers.zoo import tokenize

    data = clean_latents(teacher, card, geometry, cfg)
    net = copy.deepcopy(teacher_net).requires_grad_(True).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr * 4)
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    text_encoder = teacher.pipe.text_encoder
    for step in range(cfg.teacher_lowres_steps):
        latents, captions = data.sample(step, cfg.batch_size)
        k = step % (geometry.num_stages - 1)  # the lower stages in turn
        x0 = latents[k]
        ids, mask = tokenize(teacher.tokenizer, captions, "cpu")
        with torch.no_grad():
            hidden = text_encoder(ids, mask).last_hidden_state * mask.unsqueeze(-1)
        eps = torch.randn(x0.shape, generator=gen)
        sigma = torch.sigmoid(torch.randn(x0.shape[0], generator=gen))
        s = sigma.view(-1, 1, 1, 1, 1)
        loss = F.mse_loss(velocity(net, (1 - s) * x0 + s * eps, sigma, hidden.float()), eps - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == cfg.teacher_lowres_steps - 1:
            done = f"{step + 1}/{cfg.teacher_lowres_steps}"
            print(f"teacher low-res finetune {done} loss {float(loss.detach()):.4f}", flush=True)
    net.save_pretrained(out)
    assert math.isfinite(float(loss.detach()))


if __name__ == "__main__":
    main()
