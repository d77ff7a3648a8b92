"""Example prompts in the procedural world's grammar, and "surprise me" (a fresh caption from the world's
caption sampler).

`world` is imported inside the functions: it imports torch, and the page must come up before that."""

from __future__ import annotations

import numpy as np

EXAMPLES = [
    "a red circle moving left on a black background",
    "a blue square rotating slowly on a gray background",
    "a yellow star bouncing on a sunset gradient background",
    "a green triangle growing on a navy gradient background",
    "a white cross moving up quickly on a black background",
    "a purple circle shrinking and an orange square moving right on a gray background",
]


def surprise_prompt(seed: int | None = None) -> str:
    """A random caption the world can render (so the embedded models know every word in it)."""
    import world

    rng = np.random.default_rng(seed)
    return world.caption(world.sample_attributes(rng), rng)


def grammar_note(prompt: str) -> str | None:
    """Why the procedural world's grammar (what the embedded models learnt) reads `prompt` differently from
    what it says, e.g. "white" named as a background (a colour there, not a background); None when it
    parses."""
    from world import parse

    try:
        parse(prompt)
    except ValueError as err:
        return str(err)
    return None
