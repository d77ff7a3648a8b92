"""One module per tab of the page, in the order the user sees them: generate, compare, learn.

Each has a `build(handlers, …)` that lays out its widgets and wires its own events, and returns what the
page needs to wire across tabs (dropdowns filled on page load, the load-time steps).
"""

from __future__ import annotations

import gradio as gr

PRIVATE = {"api_visibility": "private"}
# No precision or bounds on number inputs: gradio would round 1.5 to 2 and fail with a generic or empty
# message on "abc", NaN or Infinity from the API; the handlers check them and name the field instead.
CHECKED_BY_HANDLER = {"precision": None, "minimum": None, "maximum": None}


def stage_gallery(label: str, **kwargs) -> gr.Gallery:
    """A one-column gallery of stage previews with their captions under each picture."""
    settings = {"columns": 1, "height": "auto", "object_fit": "contain", "preview": False}
    return gr.Gallery(label=label, elem_classes=["captioned"], **{**settings, **kwargs})
