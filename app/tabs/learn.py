"""The Learn tab: σ and resolution over the steps, one renoising jump, and the compute table (the paper's
Table 1), each recomputed by the handlers from app/learn.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from app.handlers import Handlers
from app.paper import PAPER_MODEL, PAPER_SCHEDULES, PAPER_SIZE
from app.tabs import CHECKED_BY_HANDLER, PRIVATE
from engine.flops import KNOWN_SIZES


@dataclass
class LearnTab:
    wavelet: gr.Dropdown
    on_load: list[Callable[[gr.events.Dependency], None]]  # each draws one view once the page has loaded


def build(h: Handlers) -> LearnTab:
    gr.Markdown(
        "### Noise level and resolution over the steps\n"
        "Each stage walks σ down its own interval. At a jump the latent is upsampled and "
        "noise is added only in the new detail bands, so σ goes *up* (s = √N·e/(1 − e + √N·e)) "
        "while the resolution doubles. Sizes: Wan2.1-1.3B at 81×448×832."
    )
    with gr.Row():
        schedule = gr.Textbox(value="20-20-10", label="Schedule", scale=2)
        shift = gr.Slider(1.0, 10.0, value=1.0, step=0.5, label="Timestep shift", scale=2)
        plot_btn = gr.Button("Plot", scale=1)
    with gr.Row():
        sigma_plot = gr.LinePlot(
            x="step",
            y="sigma",
            color="stage",
            title="σ over the steps",
            tooltip=["step", "sigma", "stage", "latent"],
            height=280,
        )
        tokens_plot = gr.LinePlot(
            x="step",
            y="tokens",
            color="stage",
            title="resolution: tokens per transformer forward",
            tooltip=["step", "tokens", "latent"],
            height=280,
        )
    gr.Markdown(
        "### One renoising jump\n"
        "A small picture stands in for a latent. The low stage ends at noise level e at 32×32; "
        "the jump upsamples it to 64×64 and adds noise only in the detail bands (zero mean in "
        "every 2×2 block).\nThe result is distributed exactly like a training start point at "
        "level s."
    )
    with gr.Row():
        sigma_end = gr.Slider(
            0.05, 0.95, value=1 / 3, step=0.001, label="e: noise level at the end of the low stage"
        )
        wavelet = gr.Dropdown(["haar"], value="haar", label="Wavelet", allow_custom_value=True)
        seed = gr.Number(value=0, step=1, label="Seed", **CHECKED_BY_HANDLER)
    jump_gallery = gr.Gallery(
        label="The jump",
        columns=3,
        height="auto",
        object_fit="contain",
        elem_classes=["captioned"],
        preview=False,
    )
    jump_note = gr.Markdown()
    gr.Markdown(
        "### Compute (the paper's Table 1)\n"
        "TFLOPs of the transformer per schedule from the engine's FLOPs model "
        "(D·(8Nd² + 4N²d + 4Nd² + 4Ld² + 4NLd + 4Ndf) per forward). Add `cfg` after a schedule "
        "to count two forwards per step."
    )
    with gr.Row():
        spec = gr.Textbox(value=PAPER_SCHEDULES, label="Schedules (comma-separated)", scale=4)
        size = gr.Dropdown(list(KNOWN_SIZES), value=PAPER_MODEL, label="Model size", scale=1)
    with gr.Row():
        frames = gr.Number(value=PAPER_SIZE[0], label="Frames", **CHECKED_BY_HANDLER)
        height = gr.Number(value=PAPER_SIZE[1], label="Height", **CHECKED_BY_HANDLER)
        width = gr.Number(value=PAPER_SIZE[2], label="Width", **CHECKED_BY_HANDLER)
        flops_btn = gr.Button("Compute")
    flops_table = gr.Markdown(elem_id="flops-table")

    views = [
        (h.learn_sigma, [schedule, shift], [sigma_plot, tokens_plot]),
        (h.learn_jump, [sigma_end, wavelet, seed], [jump_gallery, jump_note]),
        (h.learn_flops, [spec, size, frames, height, width], flops_table),
    ]
    triggers = [
        [plot_btn.click, schedule.submit, shift.release],
        [sigma_end.release, wavelet.change, seed.submit],
        [flops_btn.click, spec.submit, size.change],
    ]
    for (fn, inputs, outputs), on in zip(views, triggers, strict=True):
        gr.on(on, fn, inputs, outputs, **PRIVATE)
    on_load = [
        lambda load, fn=fn, inputs=inputs, outputs=outputs: load.then(fn, inputs, outputs, **PRIVATE)
        for fn, inputs, outputs in views
    ]
    return LearnTab(wavelet=wavelet, on_load=on_load)
