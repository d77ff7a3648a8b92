"""engine.step_invariants: the prompt's projections and rope are computed once per run, with identical
results, and never reused where they could differ."""

import torch
from helpers import tiny_wan_transformer

from engine.flow import guidance_mix
from engine.sampling import cfg_denoiser
from engine.step_invariants import StepInvariants


def _inputs(seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 4, 2, 8, 8, generator=gen)
    cond, uncond = torch.randn(1, 4, 8, generator=gen), torch.zeros(1, 4, 8)
    return x, cond, uncond


def _reference(transformer, x, cond, uncond, guidance, sigma):
    """The velocity computed with no cache at all (what cfg_denoiser did before)."""
    t = torch.full((2,), 1000.0 * sigma)
    with torch.no_grad():
        v = transformer(
            hidden_states=torch.cat([x, x]),
            timestep=t,
            encoder_hidden_states=torch.cat([cond, uncond]),
            return_dict=False,
        )[0]
    return guidance_mix(v[:1], v[1:], guidance)


def test_a_run_reuses_the_prompt_projections_and_gives_the_same_velocities():
    transformer = tiny_wan_transformer().eval()
    x, cond, uncond = _inputs()
    denoise = cfg_denoiser(transformer, cond, uncond, 3.0)
    for step, sigma in enumerate((0.9, 0.5, 0.2)):
        v = denoise(x * (step + 1), sigma, 0)
        torch.testing.assert_close(
            v, _reference(transformer, x * (step + 1), cond, uncond, 3.0, sigma), rtol=0, atol=0
        )
    # per later call: text projection + (to_k, to_v, norm_k) per block + rope
    per_call = 1 + 3 * len(transformer.blocks) + 1
    assert denoise.invariants.hits == 2 * per_call
    # the wrappers are gone between calls: the module is the plain diffusers model again
    assert "forward" not in transformer.condition_embedder.text_embedder.__dict__
    assert "forward" not in transformer.blocks[0].attn2.to_k.__dict__


def test_a_new_shape_recomputes_rope_and_an_edited_prompt_recomputes_its_projections():
    transformer = tiny_wan_transformer().eval()
    x, cond, uncond = _inputs()
    denoise = cfg_denoiser(transformer, cond, uncond, 3.0)
    denoise(x, 0.5, 0)
    small = x[:, :, :1, :4, :4].contiguous()
    # a different stage's shape: rope must not be reused (a wrong table would fail the comparison)
    torch.testing.assert_close(denoise(small, 0.5, 0), _reference(transformer, small, cond, uncond, 3.0, 0.5))
    # the same prompt tensor changed in place: its version counter moves, nothing stale is returned
    invariants = StepInvariants(transformer)
    context = torch.cat([cond, uncond])
    t = torch.full((2,), 500.0)
    with torch.no_grad(), invariants:
        transformer(
            hidden_states=torch.cat([x, x]), timestep=t, encoder_hidden_states=context, return_dict=False
        )
        context.mul_(2.0)
        after = transformer(
            hidden_states=torch.cat([x, x]), timestep=t, encoder_hidden_states=context, return_dict=False
        )[0]
    with torch.no_grad():
        fresh = transformer(
            hidden_states=torch.cat([x, x]), timestep=t, encoder_hidden_states=context, return_dict=False
        )[0]
    torch.testing.assert_close(after, fresh, rtol=0, atol=0)


def test_nothing_is_reused_while_autograd_records():
    """Training runs through the same transformer: with gradients on, every call computes."""
    transformer = tiny_wan_transformer()
    x, cond, uncond = _inputs()
    invariants = StepInvariants(transformer)
    context = torch.cat([cond, uncond])
    t = torch.full((2,), 500.0)
    with invariants:
        for _ in range(2):
            transformer(
                hidden_states=torch.cat([x, x]), timestep=t, encoder_hidden_states=context, return_dict=False
            )[0].sum().backward()
    assert invariants.hits == 0
    assert transformer.blocks[0].attn2.to_k.weight.grad is not None
