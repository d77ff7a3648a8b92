"""The Generate tab: prompt, model and schedule on the left; stage previews, the video and the readout on
the right. /generate's inputs are built from `GenerateParams` by name."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from app.handlers import SCHEDULE_PRESETS, Handlers, frame_choices, size_choices
from app.params import GenerateParams
from app.prompts import EXAMPLES
from app.tabs import CHECKED_BY_HANDLER, PRIVATE, stage_gallery


@dataclass
class GenerateTab:
    model: gr.Dropdown
    settings: list  # schedule, guidance, frames, height, width, shared noise, then the model's info line
    wavelet: gr.Dropdown


def build(h: Handlers, engine_events: dict) -> GenerateTab:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=360):
            prompt = gr.Textbox(
                label="Prompt",
                lines=2,
                elem_id="prompt",
                placeholder="a red circle moving left on a black background",
            )
            with gr.Row():
                run_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-btn")
                surprise_btn = gr.Button("Surprise me", elem_id="surprise-btn")
            gr.Examples(EXAMPLES, inputs=[prompt], label="Examples (the procedural world's grammar)")
            model = gr.Dropdown(
                [], value=None, label="Model variant", allow_custom_value=True, elem_id="model"
            )
            model_info = gr.Markdown(elem_id="model-info")
            schedule = gr.Textbox(
                value="",
                max_lines=1,
                elem_id="schedule",
                label="Schedule: steps per stage, low → high resolution",
                info="type your own, e.g. 8-8-4 (0-0-N is the plain sampler), or pick a preset",
            )
            presets = gr.Radio(
                SCHEDULE_PRESETS, value=None, show_label=False, container=False, elem_id="presets"
            )
            schedule_note = gr.Markdown(elem_id="schedule-note")
            with gr.Row():
                seed = gr.Number(label="Seed", value=0, step=1, elem_id="seed", **CHECKED_BY_HANDLER)
                randomize = gr.Checkbox(
                    label="Randomise seed", value=True, info="untick to reuse the seed shown"
                )
            with gr.Accordion("Advanced options", open=False):
                negative = gr.Textbox(label="Negative prompt", placeholder="empty: the model's default")
                guidance = gr.Number(
                    label="Guidance (1 = no classifier-free guidance, at most 30)",
                    value=None,
                    step=0.5,
                    **CHECKED_BY_HANDLER,
                )
                with gr.Row():
                    frames = gr.Dropdown(frame_choices(), value=None, label="Frames", allow_custom_value=True)
                    height = gr.Dropdown(size_choices(), value=None, label="Height", allow_custom_value=True)
                    width = gr.Dropdown(size_choices(), value=None, label="Width", allow_custom_value=True)
                wavelet = gr.Dropdown(
                    ["haar"], value="haar", label="Wavelet of the jump (R↓, R↑)", allow_custom_value=True
                )
                shared_noise = gr.Number(
                    label="Noise shared by all frames (0 = independent, as Wan trains; below 1)",
                    info="the share of the starting noise that every latent frame has in common: "
                    "objects keep their place and size between frames, at some cost to fast motion",
                    value=None,
                    step=0.1,
                    elem_id="shared-noise",
                    **CHECKED_BY_HANDLER,
                )
        with gr.Column(scale=3, min_width=420):
            previews = stage_gallery(
                "Stage previews: x0 estimate decoded at each stage's own resolution", elem_id="stage-previews"
            )
            video = gr.Video(
                label="Final video (H.264 mp4)",
                elem_id="final-video",
                height=360,
                autoplay=True,
                loop=True,
                interactive=False,
            )
            readout = gr.Markdown(label="Readout", elem_id="readout")
            with gr.Accordion("Details (JSON)", open=False):
                details = gr.JSON(label="Run details")

    inputs = GenerateParams.widget_list(
        {
            "prompt": prompt,
            "negative_prompt": negative,
            "seed": seed,
            "randomize_seed": randomize,
            "model": model,
            "schedule": schedule,
            "guidance": guidance,
            "frames": frames,
            "height": height,
            "width": width,
            "wavelet": wavelet,
            "shared_noise": shared_noise,
        }
    )
    gen_event = gr.on(
        [run_btn.click, prompt.submit],
        h.generate,
        inputs,
        [previews, video, readout, seed, details],
        api_name="generate",
        show_progress_on=[video],
        **engine_events,
    )
    stop_btn.click(h.stop, None, readout, cancels=[gen_event], queue=False, **PRIVATE)
    surprise_btn.click(h.surprise, None, prompt, queue=False, **PRIVATE)
    settings = [schedule, guidance, frames, height, width, shared_noise, model_info]
    model.input(h.model_settings, model, settings, **PRIVATE)
    presets.input(lambda preset: preset, presets, schedule, queue=False, **PRIVATE)
    schedule.change(
        lambda text: text.strip() if text.strip() in SCHEDULE_PRESETS else None,
        schedule,
        presets,
        queue=False,
        **PRIVATE,
    )
    gr.on(
        [schedule.change, model.change],
        h.check_schedule,
        [schedule, model],
        schedule_note,
        queue=False,
        **PRIVATE,
    )
    return GenerateTab(model=model, settings=settings, wavelet=wavelet)
