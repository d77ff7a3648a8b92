"""The flow-matching conventions, in one place: every module that noises, denoises, guides, trains or
normalises imports them from here (DESIGN §2–3 and §6–6a).

- forward process x_σ = (1−σ)·x0 + σ·ε with velocity target v = ε − x0, so x0 = x − σ·v;
- the model's timestep is t = 1000·σ, the *true* noise level of its input at every stage;
- classifier-free guidance v = v_uncond + g·(v_cond − v_uncond);
- training σ: logit-normal with the timestep shift;
- text embeddings zeroed past each caption's length (as WanPipeline.encode_prompt does);
- latents normalised per channel with the VAE's `latents_mean` / `latents_std`;
- the plain baseline every cost is compared with: Wan's own sampler, 50 steps at full resolution;
- the path inside a pyramid stage and its stage-exact clean estimate (below).
"""

from __future__ import annotations

import torch

from engine.pyramid import DEFAULT_NUM_STAGES
from engine.schedule import format_schedule, shift_sigma
from engine.transitions import upsample

TIMESTEP_SCALE = 1000.0  # Wan's scheduler: t = 1000·σ
PLAIN_STEPS = 50  # the plain Wan sampler: 50 steps at full resolution


def plain_counts(num_stages: int = DEFAULT_NUM_STAGES, steps: int = PLAIN_STEPS) -> tuple[int, ...]:
    """The plain sampler as a pyramid schedule: every step at full resolution, (0, 0, 50) for 3 stages."""
    return (0,) * (num_stages - 1) + (steps,)


PLAIN_BASELINE = format_schedule(plain_counts())  # "0-0-50": what costs and speed-ups are relative to


def timestep(sigma):
    """The transformer's timestep for noise level σ (float or tensor): t = 1000·σ (DESIGN §3)."""
    return TIMESTEP_SCALE * sigma


def noisy(x0: torch.Tensor, eps: torch.Tensor, sigma) -> torch.Tensor:
    """The forward process x_σ = (1−σ)·x0 + σ·ε; σ a float or a tensor broadcastable to x0."""
    return (1 - sigma) * x0 + sigma * eps


def velocity_target(x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """The flow-matching target dx_σ/dσ = ε − x0."""
    return eps - x0


def clean_estimate(x: torch.Tensor, v: torch.Tensor, sigma) -> torch.Tensor:
    """x0 implied by velocity v at x_σ: x − σ·v (exact on the plain path; see `stage_clean` in a stage)."""
    return x - sigma * v


def guidance_mix(v_cond: torch.Tensor, v_uncond: torch.Tensor, guidance: float) -> torch.Tensor:
    """Classifier-free guidance v_uncond + guidance·(v_cond − v_uncond): guidance 1 is the conditional
    velocity, larger values push away from the unconditional one (one lerp kernel)."""
    return torch.lerp(v_uncond, v_cond, guidance)


def logit_normal(n: int, generator: torch.Generator | None = None, shift: float = 1.0) -> torch.Tensor:
    """Training σ: sigmoid(N(0, 1)), then the timestep shift s·σ / (1 + (s−1)·σ) (DESIGN §2; s = 3 raises
    P(σ > 0.85) from 4% to 26%). Shape (n,), on the CPU."""
    return shift_sigma(torch.sigmoid(torch.randn(n, generator=generator)), shift)


def masked_text(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Text-encoder states (B, L, D) with the positions past each caption's length zeroed, as
    WanPipeline.encode_prompt returns them; mask (B, L) is the tokenizer's attention mask."""
    return hidden * mask.unsqueeze(-1).to(hidden.dtype)


def _latent_stats(vae_config, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (1, -1, 1, 1, 1)
    mean = torch.tensor(vae_config.latents_mean, dtype=torch.float32, device=latents.device).view(shape)
    std = torch.tensor(vae_config.latents_std, dtype=torch.float32, device=latents.device).view(shape)
    return mean, std


def normalise_latents(latents: torch.Tensor, vae_config) -> torch.Tensor:
    """VAE latents (B, C, T, H, W) → the model's normalised latents (x − latents_mean) / latents_std."""
    mean, std = _latent_stats(vae_config, latents)
    return (latents - mean) / std


def denormalise_latents(latents: torch.Tensor, vae_config) -> torch.Tensor:
    """The inverse of `normalise_latents`, what the VAE decodes."""
    mean, std = _latent_stats(vae_config, latents)
    return latents * std + mean


# --- The path inside a stage (DESIGN §6 and §6a) ---------------------------------------------------
#
# Stage k trains on the straight line between its end point E and its start point B, one noise draw ε
# shared by both ends, with Y the stage's clean signal and U = R↑ of the clean signal one stage down:
#     E = (1−σe)·Y + σe·ε          B = (1−σs)·U + σs·ε
#     x = (1−ρ)·E + ρ·B,  σ = (1−ρ)·σe + ρ·σs,  so ρ = (σ − σe)/(σs − σe) and
#     x = (1−ρ)(1−σe)·Y + ρ(1−σs)·U + σ·ε,    velocity v = (B − E)/(σs − σe).
# Then x − σ·v = κ·Y + (1−κ)·U with κ = σs(1−σe)/(σs−σe): the ε terms cancel, Y's coefficient is
# (1−σe)·(1 − ρ + σ/(σs−σe)) = κ and U's is −σe(1−σs)/(σs−σe) = 1 − κ. κ = 1 when σs = 1 (a stage that
# starts from pure noise, U is not needed) or σe = 0 (the last stage): only there is x − σ·v the clean
# signal. All functions broadcast: σ may be a float or a tensor shaped (B, 1, 1, 1, 1).


def stage_kappa(sigma_start: float, sigma_end: float) -> float:
    """κ = σs(1−σe)/(σs−σe): the weight of the stage's clean signal Y in x − σ·v (1.097 in the middle
    stage of the default 3-stage pyramid)."""
    return sigma_start * (1.0 - sigma_end) / (sigma_start - sigma_end)


def _lower_term(lower, coefficient, sigma_start: float):
    if sigma_start >= 1.0:
        return 0.0  # the start point is pure noise: U has weight 0 (and may be None)
    if lower is None:
        raise ValueError(
            f"a stage starting at σ = {sigma_start:.4g} < 1 needs the lower-stage signal U = R↑(Y_(k−1))"
        )
    return coefficient * lower


def stage_point(y, lower, eps, sigma, sigma_start: float, sigma_end: float):
    """The point of the stage's path at level σ: x = (1−ρ)(1−σe)·y + ρ(1−σs)·lower + σ·eps.

    y: the stage's clean signal; lower: U = R↑ of the lower stage's clean signal (None when σs = 1);
    eps: unit noise. Training samples its inputs with it (`pyramid_point`), and the "x0" step rule
    renoises its clean estimate with it, so both stay on the path the model was trained on.
    """
    rho = (sigma - sigma_end) / (sigma_start - sigma_end)
    u_term = _lower_term(lower, rho * (1 - sigma_start), sigma_start)
    return (1 - rho) * (1 - sigma_end) * y + u_term + sigma * eps


def stage_velocity(y, lower, eps, sigma_start: float, sigma_end: float):
    """The path's velocity in σ-units, (B − E)/(σs − σe) = ((1−σs)·U − (1−σe)·Y)/(σs−σe) + ε: the
    pyramidal flow-matching target (constant along the path)."""
    u_term = _lower_term(lower, (1 - sigma_start) / (sigma_start - sigma_end), sigma_start)
    return u_term - (1 - sigma_end) / (sigma_start - sigma_end) * y + eps


def stage_clean(x, v, lower, sigma, sigma_start: float, sigma_end: float):
    """The stage's clean signal implied by velocity v at x (level σ): Ŷ = (x − σ·v − (1−κ)·U)/κ.

    This is the clean estimate of a pyramid stage (DESIGN §6a): the engine's stage previews, its "x0"
    step rule and every distillation method use it. Where κ = 1 it is the plain x − σ·v and `lower` may
    be None; otherwise lower must be U = R↑ of the previous stage's final clean estimate.
    """
    if sigma_start >= 1.0 or sigma_end <= 0.0:
        return clean_estimate(x, v, sigma)  # κ = 1
    kappa = stage_kappa(sigma_start, sigma_end)
    return (x - sigma * v - _lower_term(lower, 1.0 - kappa, sigma_start)) / kappa


def pyramid_point(
    y: list[torch.Tensor], k: int, geometry, eps: torch.Tensor, rho: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training point of stage k at position ρ ∈ [0, 1] (0: the end point, 1: the start point) for
    clean latents y (per stage, low → high) and noise eps: (x, σ (B,), velocity target), on the stage
    path above with U = R↑(y[k−1]) (DESIGN §6)."""
    stage = geometry.stages[k]
    s_end = stage.sigma_end
    s_start = 1.0 if k == 0 else stage.sigma_start
    lower = None if k == 0 else upsample(y[k - 1], temporal=geometry.stages[k - 1].temporal_halved)
    sigma = s_end + rho.view(-1, 1, 1, 1, 1) * (s_start - s_end)
    x = stage_point(y[k], lower, eps, sigma, s_start, s_end)
    return x, sigma.view(-1), stage_velocity(y[k], lower, eps, s_start, s_end)
