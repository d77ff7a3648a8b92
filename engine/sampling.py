"""Samplers: plain and pyramidal, as generators of events (k-diffusion style: the schedule is data,
the model is a callable, progress goes through what the generator yields).

One full-resolution noise draw defines the run: the first active stage starts from its projection to
that stage's resolution, and each jump takes its detail-band noise from the projection one stage up
(orthogonal bands of one Gaussian draw are independent, so every jump is still exactly distributed as
DESIGN §4 requires, and schedules sampled with the same seed share their noise).

A denoiser is `denoiser(x, sigma, stage) -> velocity` with x (B, C, T, H, W) at the stage's resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from engine.flow import guidance_mix, plain_counts, stage_clean, stage_point, timestep
from engine.pyramid import PyramidGeometry
from engine.schedule import schedule_sigmas
from engine.step_invariants import StepInvariants
from engine.transitions import (
    DEFAULT_WAVELET,
    downsample_noise,
    frame_common_shape,
    frame_shared,
    randn_like_shape,
    renoise_jump,
    upsample,
)

STEP_RULES = ("euler", "x0")
Denoiser = Callable[[torch.Tensor, float, int], torch.Tensor]


@dataclass
class Event:
    """What a sampler reports: after every step (kind "step"), at the end of every stage ("stage_end")
    and once at the end ("done", with the final latents in x0 and timings filled in)."""

    kind: str
    stage: int
    step: int  # steps done in this stage
    stage_steps: int
    done_steps: int  # steps done in the whole run
    total_steps: int
    latent_shape: tuple[int, ...]  # (C, T, H, W) of the stage
    pixel_shape: tuple[int, int, int]  # (frames, height, width) the stage decodes to
    sigma: float  # noise level of the latent after this step
    sigma_range: tuple[float, float]  # (start, end) of the stage
    x0: torch.Tensor  # the stage's clean estimate Ŷ (B, C, T, H, W) at its resolution (DESIGN §6a)
    elapsed: float  # seconds since sampling started
    stage_seconds: float = 0.0  # for "stage_end": wall time of the stage
    model_seconds: float = 0.0  # time spent inside denoiser calls so far
    stage_times: list[float] = field(default_factory=list)  # for "done": seconds per active stage
    latent: torch.Tensor | None = None  # "step" and "stage_end": the (noisy) latent x at `sigma`


def cfg_denoiser(
    transformer: torch.nn.Module,
    cond: torch.Tensor,
    uncond: torch.Tensor | None,
    guidance: float,
) -> Denoiser:
    """Wrap a Wan transformer as a velocity denoiser with classifier-free guidance.

    Conditional and unconditional passes run as one batch; the timestep is t = 1000·σ, the *true* noise
    level of the input at every stage (DESIGN §3). Each stage gets its own diffusers cache context, since
    cache hooks break when the resolution changes inside one context (DESIGN §10). The prompt's
    projections and the rotary tables are computed once per run, not once per step
    (engine.step_invariants); the returned denoiser carries that cache as `.invariants`.
    """
    use_cfg = uncond is not None and guidance != 1.0
    context = cond if not use_cfg else torch.cat([cond, uncond])
    param = next(transformer.parameters())
    # sequential offload leaves the weights on the meta device: its hooks move CPU inputs where they run
    device = param.device if param.device.type != "meta" else torch.device("cpu")
    # only a transformer with diffusers cache hooks enabled needs a context (entering one costs ~0.1 ms)
    cache_context = transformer.cache_context if getattr(transformer, "is_cache_enabled", False) else None
    invariants = StepInvariants(transformer)

    def denoise(x: torch.Tensor, sigma: float, stage: int) -> torch.Tensor:
        b = x.shape[0]
        inp = torch.cat([x, x]) if use_cfg else x
        t = torch.full((inp.shape[0],), timestep(sigma), device=device, dtype=torch.float32)
        ctx = cache_context(f"stage{stage}") if cache_context is not None else nullcontext()
        with torch.no_grad(), ctx, invariants:
            v = transformer(
                hidden_states=inp.to(device, param.dtype),
                timestep=t,
                encoder_hidden_states=context,
                return_dict=False,
            )[0].to(x.device, torch.float32)
        if use_cfg:
            v = guidance_mix(v[:b], v[b:], guidance)
        return v

    denoise.invariants = invariants
    return denoise


def stage_denoiser(denoisers: dict[int, Denoiser], default: Denoiser) -> Denoiser:
    """A denoiser that hands stage k to denoisers[k] and every other stage to `default` (a model with a
    top-stage expert: engine.pipeline). Each keeps its own step-invariant cache (`cfg_denoiser`)."""

    def denoise(x: torch.Tensor, sigma: float, stage: int) -> torch.Tensor:
        return denoisers.get(stage, default)(x, sigma, stage)

    return denoise


def noise_pyramid(eps_full: torch.Tensor, geometry: PyramidGeometry, wavelet: str) -> list[torch.Tensor]:
    """Unit noise at every stage's resolution, low → high, all projections of one full-resolution draw."""
    levels = [eps_full]
    for stage in reversed(geometry.stages[:-1]):
        levels.insert(0, downsample_noise(levels[0], wavelet, temporal=stage.temporal_halved))
    return levels


def shared_noise_levels(
    levels: list[torch.Tensor],
    share: float,
    generator: torch.Generator,
    wavelet: str = DEFAULT_WAVELET,
    common: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """The run's noise at every stage (`noise_pyramid`) with `share` of its variance common to all latent
    frames: √share·S + √(1−share)·ε at each stage's resolution.

    S is one unit draw per channel and pixel, the same in every latent frame, drawn at full resolution
    after the run's own draw and projected spatially to each stage (so plain and pyramidal runs of a seed
    share it). Each element stays unit Gaussian; any two latent frames correlate by `share`. The sampler
    starts from its first stage's level and each jump takes its detail-band noise from the next one, so
    the noise the model meets is frame-correlated at every stage. Wan trains on independent frames, so
    this is a sampling choice, not the model's prior: it makes the high-noise steps, which decide the
    layout, decide one layout for all frames (DESIGN §6b). share = 0 returns `levels` and draws nothing.
    `common`: that full-resolution draw (B, C, 1, H, W) given instead of drawn."""
    if share == 0:
        return levels
    shape = frame_common_shape(levels[-1].shape)
    if common is None:
        common = torch.randn(shape, generator=generator, device=generator.device)
    elif tuple(common.shape) != shape:
        raise ValueError(f"common noise must have shape {shape}, got {tuple(common.shape)}")
    commons = [common.float().cpu()]
    while len(commons) < len(levels):
        commons.insert(0, downsample_noise(commons[0], wavelet, temporal=False))
    return [frame_shared(eps, c, share) for c, eps in zip(commons, levels, strict=True)]


def renoise_draw(x: torch.Tensor, generator: torch.Generator, share: float) -> torch.Tensor:
    """Fresh unit noise shaped like x for the "x0" rule's renoising, with `share` of it common to all
    latent frames (DESIGN §6b; share = 0: independent, one draw as before)."""
    eps = randn_like_shape(x.shape, generator, x)
    if share == 0:
        return eps
    return frame_shared(eps, randn_like_shape(frame_common_shape(x.shape), generator, x), share)


def x0_step(
    x: torch.Tensor,
    y: torch.Tensor,
    lower: torch.Tensor | None,
    s_next: float,
    path: tuple[float, float],
    generator: torch.Generator,
    share: float,
) -> torch.Tensor:
    """The "x0" rule's move from x to σ' = s_next: the stage's clean estimate y renoised on the stage's
    path (σs, σe) with fresh noise (`renoise_draw`), or y itself at σ' = 0."""
    if s_next > 0:
        return stage_point(y, lower, renoise_draw(x, generator, share), s_next, *path)
    return y


def sample(
    denoiser: Denoiser,
    geometry: PyramidGeometry,
    sigmas: Sequence[torch.Tensor | None],
    generator: torch.Generator,
    batch_size: int = 1,
    step_rule: str = "euler",
    wavelet: str = DEFAULT_WAVELET,
    noise: torch.Tensor | None = None,
    shared_noise: float = 0.0,
    common_noise: torch.Tensor | None = None,
) -> Iterator[Event]:
    """Pyramidal sampling over the stages of `geometry`, low → high, along the σ grids `sigmas`.

    `sigmas[k]` is stage k's grid (steps + 1 levels from its start down to its end, as
    `engine.schedule.schedule_sigmas` builds them) or None for a stage the schedule skips. Leading skipped
    stages are passed over and the first active stage starts from noise at its own resolution; a grid for
    the full-resolution stage alone is therefore exactly the plain sampler.
    `noise`: the full-resolution initial draw (batch_size, *full latent shape) instead of one from
    `generator` (which still supplies any later noise); lower stages use its projections.
    `shared_noise`: the share of the noise's variance common to all latent frames, at the start, in every
    jump (`shared_noise_levels`) and in the "x0" rule's renoising (`renoise_draw`); 0, Wan's own
    independent frames, by default. `common_noise`: its frame-common full-resolution draw (batch_size, C,
    1, H, W) instead of one from `generator` (with `noise`, a batch whose clips match their solo runs).
    Step rules: "euler" (ODE step x ← x + (σ' − σ)·v) and "x0" (predict the stage's clean signal Ŷ,
    renoise it to σ' with fresh noise on the stage's own path; the rule few-step distilled generators are
    trained with).

    Inside a stage that starts below σ = 1 and ends above 0 the path mixes the stage's clean signal Y
    with U = R↑ of the lower stage's, and x − σ·v is κ·Y + (1−κ)·U, not Y (DESIGN §6a). So the sampler
    carries U across every jump — R↑ of the previous stage's final clean estimate — and both the clean
    estimate every event reports and the "x0" rule's renoising go through engine.flow's
    `stage_clean` and `stage_point`.
    """
    if step_rule not in STEP_RULES:
        raise ValueError(f"step_rule must be one of {STEP_RULES}, got {step_rule!r}")
    if len(sigmas) != geometry.num_stages or sigmas[-1] is None:
        raise ValueError(
            f"need one σ grid per stage ({geometry.num_stages}, None for a skipped stage, the last one "
            f"present), got {len(sigmas)}; build them with engine.schedule.schedule_sigmas"
        )
    counts = [0 if grid is None else len(grid) - 1 for grid in sigmas]
    first = next(k for k, c in enumerate(counts) if c > 0)
    total = sum(counts)
    start_time = time.perf_counter()
    model_seconds = 0.0
    done = 0
    stage_times: list[float] = []

    def event(kind: str, k: int, grid: list[float], **fields) -> Event:
        stage = geometry.stages[k]
        return Event(
            kind=kind,
            stage=k,
            stage_steps=counts[k],
            done_steps=done,
            total_steps=total,
            latent_shape=stage.latent_shape,
            pixel_shape=stage.pixel_shape,
            sigma_range=(float(grid[0]), float(grid[-1])),
            elapsed=time.perf_counter() - start_time,
            model_seconds=model_seconds,
            **fields,
        )

    shape = (batch_size, *geometry.full.latent_shape)
    if noise is not None and tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
    eps_full = (
        noise if noise is not None else torch.randn(shape, generator=generator, device=generator.device)
    )
    if not 0.0 <= shared_noise < 1.0:
        raise ValueError(f"shared_noise must be in [0, 1), got {shared_noise}")
    eps = shared_noise_levels(
        noise_pyramid(eps_full.float().cpu(), geometry, wavelet),
        shared_noise,
        generator,
        wavelet,
        common_noise,
    )
    x = eps[first].clone()
    x0 = x
    lower = None  # U = R↑ of the previous stage's final clean estimate; not needed where σ starts at 1
    for k in range(first, geometry.num_stages):
        stage = geometry.stages[k]
        stage_start = time.perf_counter()
        grid = sigmas[k].tolist()
        path = (grid[0], grid[-1])  # (σs, σe): the first active stage starts at 1, not at its jump
        for i in range(counts[k]):
            s, s_next = grid[i], grid[i + 1]
            t0 = time.perf_counter()
            v = denoiser(x, s, k)
            model_seconds += time.perf_counter() - t0
            x0 = stage_clean(x, v, lower, s, *path)
            if step_rule == "euler":
                x = torch.add(x, v, alpha=s_next - s)
            else:
                x = x0_step(x, x0, lower, s_next, path, generator, shared_noise)
            done += 1
            yield event("step", k, grid, step=i + 1, sigma=float(s_next), x0=x0, latent=x)
        stage_times.append(time.perf_counter() - stage_start)
        last = k == geometry.num_stages - 1
        yield event(
            "stage_end",
            k,
            grid,
            step=counts[k],
            sigma=float(stage.sigma_end),
            x0=x if last else x0,
            latent=x,
            stage_seconds=stage_times[-1],
        )
        if not last:
            x, _ = renoise_jump(x, stage.sigma_end, generator, wavelet, stage.temporal_halved, eps[k + 1])
            lower = upsample(x0, wavelet, stage.temporal_halved)
    yield event(
        "done", geometry.num_stages - 1, grid, step=counts[-1], sigma=0.0, x0=x, stage_times=stage_times
    )


def sample_plain(
    denoiser: Denoiser,
    geometry: PyramidGeometry,
    steps: int,
    generator: torch.Generator,
    shift: float = 1.0,
    **kwargs,
) -> Iterator[Event]:
    """The plain Wan sampler: all `steps` at full resolution from σ = 1 (schedule "0-…-0-steps")."""
    sigmas = schedule_sigmas(geometry, plain_counts(geometry.num_stages, steps), shift)
    return sample(denoiser, geometry, sigmas, generator, **kwargs)
