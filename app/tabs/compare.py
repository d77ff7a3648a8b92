"""The Compare tab: one prompt and one seed (so every run starts from the same noise), 2–4 run slots of
schedule and model side by side. /compare's inputs are built from `CompareParams` by name."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import gradio as gr

from app.handlers import MAX_RUNS, QUICK_COMPARES, Handlers
from app.params import CompareParams
from app.prompts import EXAMPLES
from app.tabs import CHECKED_BY_HANDLER, PRIVATE, stage_gallery

DEFAULT_SCHEDULES = ["20-20-10", "0-0-50", "2-2-1", "0-0-1"]  # slot 1 … 4


@dataclass
class CompareTab:
    models: list  # the slots' model dropdowns, 1 → 4


def build(h: Handlers, engine_events: dict) -> CompareTab:
    gr.Markdown(
        "Same prompt, same seed (so the runs share their noise), different schedules or "
        "model variants, side by side."
    )
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", value=EXAMPLES[0], lines=1, scale=3)
        seed = gr.Number(label="Seed", value=0, step=1, scale=1, **CHECKED_BY_HANDLER)
        randomize = gr.Checkbox(label="Randomise seed", value=True, scale=1)
        n_runs = gr.Radio([2, 3, 4], value=2, label="Runs", scale=1)
    with gr.Row():
        quick_btns = {name: gr.Button(name) for name in QUICK_COMPARES}
        compare_btn = gr.Button("Compare", variant="primary", elem_id="compare-btn")
        stop = gr.Button("Stop", variant="stop")
    with gr.Accordion("Negative prompt", open=False):
        negative = gr.Textbox(label="Negative prompt", placeholder="empty: each model's default")
    summary = gr.Markdown(label="Summary", elem_id="compare-summary")
    columns, widgets, slot_outputs = [], {}, []
    with gr.Row(equal_height=False):
        for i in range(1, MAX_RUNS + 1):
            with gr.Column(visible=i <= 2, min_width=260) as column:
                widgets[f"schedule_{i}"] = gr.Textbox(
                    value=DEFAULT_SCHEDULES[i - 1], label=f"Run {i}: schedule"
                )
                widgets[f"model_{i}"] = gr.Dropdown(
                    [], value=None, allow_custom_value=True, label=f"Run {i}: model"
                )
                slot_outputs += [
                    stage_gallery("Stages"),
                    gr.Video(label="Video", height=260, autoplay=True, loop=True, interactive=False),
                    gr.Markdown(label="Readout"),
                ]
            columns.append(column)
    with gr.Accordion("Details (JSON, one entry per run)", open=False):
        summary_json = gr.JSON(label="Runs")

    widgets.update(
        prompt=prompt, negative_prompt=negative, seed=seed, randomize_seed=randomize, n_runs=n_runs
    )
    inputs = CompareParams.widget_list(widgets)
    outputs = [summary, summary_json, *slot_outputs]
    slot_videos = slot_outputs[1::3]
    events = [
        compare_btn.click(
            h.compare, inputs, outputs, api_name="compare", show_progress_on=slot_videos, **engine_events
        )
    ]
    for name, btn in quick_btns.items():
        setup = btn.click(
            partial(h.quick_compare, name),
            None,
            [n_runs, widgets["schedule_1"], widgets["schedule_2"]],
            queue=False,
            **PRIVATE,
        )
        events.append(
            setup.then(h.compare, inputs, outputs, show_progress_on=slot_videos, **engine_events, **PRIVATE)
        )
    for event in events:  # the seed used (drawn when "Randomise" is ticked) goes back into its box
        event.success(h.compare_seed, summary_json, seed, queue=False, **PRIVATE)
    stop.click(h.stop, None, summary, cancels=events, queue=False, **PRIVATE)
    n_runs.change(
        lambda n: [gr.Column(visible=i < int(n)) for i in range(MAX_RUNS)],
        n_runs,
        columns,
        queue=False,
        **PRIVATE,
    )
    return CompareTab(models=[widgets[f"model_{i}"] for i in range(1, MAX_RUNS + 1)])
