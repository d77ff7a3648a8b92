"""PyramidalWan Studio's Gradio web app: `python app.py` starts it; `app.ui.build_studio` builds the page.

Modules: config (operator settings) · ui (page layout and event wiring) · handlers (thin handlers) ·
runs (one generation: stage previews, final mp4, readout) · learn (teaching views) · registry (models
offered, lazy loading, per-model concurrency) · outputs (per-request folders) · serving (cancel flags,
errors, ZeroGPU) · prompts (examples, "surprise me") · paper (the paper's reference settings).
"""
