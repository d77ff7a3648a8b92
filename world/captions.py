"""Captions: attributes -> varied English, and English in this grammar -> attributes.

Generation picks a template and synonyms with the caller's rng:

    "a red circle moving left quickly on a black background"
    "a crimson disc drifts leftwards slowly over black"
    "on a navy gradient background, an amber star rapidly spins"

Parsing is word-level and order-aware: every word must be in the lexicon (`vocabulary()` lists them all),
otherwise a ValueError names the unknown word. Words are color / shape / motion / speed / background words
or fillers ("a", "on", "background", ...). A color word starts an object; the shape word follows it; the
motion and speed words after the shape (up to the next color word) belong to that object; the background
word may sit anywhere. Two objects are joined by "and", "while" or "as".
"""

from __future__ import annotations

import re

import numpy as np

from world.attributes import BACKGROUNDS, MOTIONS, SHAPES, ClipAttributes, ObjectSpec

COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "green": ("green", "emerald", "lime"),
    "blue": ("blue", "azure", "cobalt"),
    "yellow": ("yellow", "golden", "lemon"),
    "orange": ("orange", "amber", "tangerine"),
    "purple": ("purple", "violet", "amethyst"),
    "white": ("white", "ivory", "pearl"),
    "cyan": ("cyan", "turquoise", "aqua"),
}
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "disk", "dot"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
    "cross": ("cross", "plus sign"),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black", "pitch-black"),
    "gray": ("gray", "grey", "slate"),
    "navy": ("navy", "midnight"),
    "sunset": ("sunset", "dusk"),
}
GRADIENT_BACKGROUNDS = ("navy", "sunset")
SPEED_WORDS: dict[str, tuple[str, ...]] = {
    "slow": ("slowly", "gently", "lazily"),
    "fast": ("quickly", "rapidly", "swiftly", "fast"),
}
# Translation = a travel verb + a direction; a few verbs carry their own direction.
TRAVEL_VERBS: dict[str, tuple[str, ...]] = {
    "ing": ("moving", "drifting", "sliding", "gliding", "travelling"),
    "s": ("moves", "drifts", "slides", "glides", "travels"),
}
DIRECTION_WORDS: dict[str, tuple[str, ...]] = {
    "left": ("left", "leftwards", "to the left"),
    "right": ("right", "rightwards", "to the right"),
    "up": ("up", "upwards"),
    "down": ("down", "downwards"),
}
# Self-contained motion phrases, by verb form ("ing": "a circle growing", "s": "a circle grows").
MOTION_PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "up": {"ing": ("rising", "climbing"), "s": ("rises", "climbs")},
    "down": {"ing": ("falling", "sinking"), "s": ("falls", "sinks")},
    "grow": {"ing": ("growing", "expanding", "getting bigger"), "s": ("grows", "expands", "gets bigger")},
    "shrink": {
        "ing": ("shrinking", "contracting", "getting smaller"),
        "s": ("shrinks", "contracts", "gets smaller"),
    },
    "rotate": {"ing": ("rotating", "spinning", "turning"), "s": ("rotates", "spins", "turns")},
    "bounce": {"ing": ("bouncing", "hopping"), "s": ("bounces", "hops")},
    "still": {
        "ing": ("standing still", "staying still", "resting", "sitting motionless"),
        "s": ("stands still", "stays still", "rests", "sits motionless"),
    },
}
FILLER_WORDS: frozenset[str] = frozenset(
    "a an the on over against in front of to background backdrop gradient and while as sign "
    "standing stands staying stays sitting sits getting gets".split()
)

# Single words that carry meaning for the parser. Built from the tables above, so generation and parsing
# share one source of truth.
_LEXICON: dict[str, tuple[str, str]] = {}


def _register(category: str, value: str, phrases: tuple[str, ...]) -> None:
    for phrase in phrases:
        for word in phrase.split():
            if word not in FILLER_WORDS:
                _LEXICON[word] = (category, value)


for _k, _v in COLOR_WORDS.items():
    _register("color", _k, _v)
for _k, _v in SHAPE_WORDS.items():
    _register("shape", _k, _v)
for _k, _v in BACKGROUND_WORDS.items():
    _register("background", _k, _v)
for _k, _v in SPEED_WORDS.items():
    _register("speed", _k, _v)
for _v in TRAVEL_VERBS.values():
    _register("travel", "", _v)
for _k, _v in DIRECTION_WORDS.items():
    _register("direction", _k, _v)
for _k, _forms in MOTION_PHRASES.items():
    for _v in _forms.values():
        _register("direction" if _k in ("up", "down") else "motion", _k, _v)
_register("motion", "still", ("still", "motionless"))
_register("motion", "grow", ("bigger",))
_register("motion", "shrink", ("smaller",))

_TOKEN_RE = re.compile(r"[^\s,.;:!?]+")


def tokenize(caption: str) -> list[str]:
    """Lower-case words of a caption; spaces and the punctuation , . ; : ! ? separate words."""
    return _TOKEN_RE.findall(caption.lower())


def vocabulary() -> list[str]:
    """Every word the caption grammar can produce (sorted); the parser accepts exactly these words."""
    return sorted(set(_LEXICON) | FILLER_WORDS)


# ----------------------------------------------------------------------------------------------- generation


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _article(next_word: str) -> str:
    return "an" if next_word[0] in "aeiou" else "a"


def _noun_phrase(obj: ObjectSpec, rng: np.random.Generator) -> str:
    color = _pick(rng, COLOR_WORDS[obj.color])
    return f"{_article(color)} {color} {_pick(rng, SHAPE_WORDS[obj.shape])}"


def _motion_phrase(obj: ObjectSpec, form: str, rng: np.random.Generator) -> str:
    if obj.motion in DIRECTION_WORDS and (obj.motion not in MOTION_PHRASES or rng.random() < 0.6):
        core = f"{_pick(rng, TRAVEL_VERBS[form])} {_pick(rng, DIRECTION_WORDS[obj.motion])}"
    else:
        core = _pick(rng, MOTION_PHRASES[obj.motion][form])
    if obj.speed is None:
        return core
    adverb = _pick(rng, SPEED_WORDS[obj.speed])
    return f"{adverb} {core}" if rng.random() < 0.4 else f"{core} {adverb}"


def _background_phrase(background: str, rng: np.random.Generator) -> str:
    word = _pick(rng, BACKGROUND_WORDS[background])
    if background in GRADIENT_BACKGROUNDS:
        templates = (
            "on a {w} gradient background",
            "against a {w} gradient backdrop",
            "over a {w} gradient",
            "in front of a {w} gradient",
        )
    else:
        templates = (
            "on a {w} background",
            "against a {w} backdrop",
            "over {w}",
            "in front of a {w} background",
        )
    return _pick(rng, templates).format(w=word)


def caption(attrs: ClipAttributes, rng: np.random.Generator | None = None) -> str:
    """A caption for `attrs`, template and synonyms drawn from `rng` (None: the canonical caption,
    e.g. "a red circle moving left quickly on a black background")."""
    if rng is None:
        objs = attrs.objects
        parts = [f"{_noun_phrase_canonical(o)} {_motion_canonical(o)}" for o in objs]
        return f"{' and '.join(parts)} on a {_background_canonical(attrs.background)}"
    bg = _background_phrase(attrs.background, rng)
    objs = attrs.objects
    template = int(rng.integers(4))
    if len(objs) == 1:
        (o,) = objs
        if template == 0:
            return f"{_noun_phrase(o, rng)} {_motion_phrase(o, 'ing', rng)} {bg}"
        if template == 1:
            return f"{_noun_phrase(o, rng)} {_motion_phrase(o, 's', rng)} {bg}"
        if template == 2:
            return f"{bg}, {_noun_phrase(o, rng)} {_motion_phrase(o, 's', rng)}"
        return f"{_noun_phrase(o, rng)} {bg}, {_motion_phrase(o, 'ing', rng)}"
    a, b = objs
    if template in (0, 3):
        return (
            f"{_noun_phrase(a, rng)} {_motion_phrase(a, 'ing', rng)} and "
            f"{_noun_phrase(b, rng)} {_motion_phrase(b, 'ing', rng)} {bg}"
        )
    if template == 1:
        return (
            f"{bg}, {_noun_phrase(a, rng)} {_motion_phrase(a, 's', rng)} while "
            f"{_noun_phrase(b, rng)} {_motion_phrase(b, 's', rng)}"
        )
    return (
        f"{_noun_phrase(a, rng)} {_motion_phrase(a, 's', rng)} {bg} as "
        f"{_noun_phrase(b, rng)} {_motion_phrase(b, 's', rng)}"
    )


def _noun_phrase_canonical(o: ObjectSpec) -> str:
    return f"{_article(o.color)} {o.color} {o.shape}"


def _motion_canonical(o: ObjectSpec) -> str:
    core = {
        "grow": "growing",
        "shrink": "shrinking",
        "rotate": "rotating",
        "bounce": "bouncing",
        "still": "standing still",
    }.get(o.motion, f"moving {o.motion}")
    if o.speed is None:
        return core
    return f"{core} {SPEED_WORDS[o.speed][0]}"


def _background_canonical(background: str) -> str:
    return (
        f"{background} gradient background"
        if background in GRADIENT_BACKGROUNDS
        else f"{background} background"
    )


# -------------------------------------------------------------------------------------------------- parsing


def _describe(obj: dict) -> str:
    return " ".join(w for w in (obj.get("color_word"), obj.get("shape_word")) if w) or "object"


def parse(caption_text: str) -> ClipAttributes:
    """Map a caption in this grammar back to its attributes.

    Raises ValueError naming the offending word when a word is outside the vocabulary, and a ValueError
    saying what is missing or contradictory otherwise (no background, no motion, two shapes, ...).
    """
    words = tokenize(caption_text)
    if not words:
        raise ValueError("empty caption")
    backgrounds: set[str] = set()
    objects: list[dict] = []
    for word in words:
        if word in FILLER_WORDS:
            continue
        if word not in _LEXICON:
            raise ValueError(
                f"unknown word {word!r} in caption {caption_text!r}; the world's grammar does not know it "
                f"(world.captions.vocabulary() lists the {len(vocabulary())} known words)"
            )
        category, value = _LEXICON[word]
        if category == "background":
            backgrounds.add(value)
            continue
        if category == "color":
            objects.append(
                {
                    "color": value,
                    "color_word": word,
                    "directions": set(),
                    "motions": set(),
                    "speeds": set(),
                    "travel": None,
                }
            )
            continue
        if not objects:
            raise ValueError(
                f"word {word!r} in caption {caption_text!r} comes before any color word; "
                "an object is written '<color> <shape> <motion>', e.g. 'a red circle moving left'"
            )
        obj = objects[-1]
        if category == "shape":
            if "shape" in obj:
                raise ValueError(
                    f"two shapes ({obj['shape_word']!r}, {word!r}) for one object in "
                    f"{caption_text!r}; give each object its own color word"
                )
            obj["shape"], obj["shape_word"] = value, word
        elif "shape" not in obj:
            raise ValueError(
                f"word {word!r} in {caption_text!r} follows the color {obj['color_word']!r} "
                "but no shape was named yet"
            )
        elif category == "travel":
            obj["travel"] = word
        elif category == "direction":
            obj["directions"].add(value)
        elif category == "motion":
            obj["motions"].add(value)
        elif category == "speed":
            obj["speeds"].add(value)
    if len(backgrounds) != 1:
        found = f"two backgrounds ({', '.join(sorted(backgrounds))})" if backgrounds else "no background"
        raise ValueError(
            f"{found} in caption {caption_text!r}; name exactly one of "
            f"{', '.join(BACKGROUNDS)} (e.g. 'on a black background')"
        )
    if not objects:
        raise ValueError(f"no object in caption {caption_text!r}; expected e.g. 'a red circle moving left'")
    if len(objects) > 2:
        raise ValueError(f"{len(objects)} objects in caption {caption_text!r}; a clip has one or two")
    specs = [_object_spec(obj, caption_text) for obj in objects]
    return ClipAttributes(background=backgrounds.pop(), objects=tuple(specs))


def _object_spec(obj: dict, caption_text: str) -> ObjectSpec:
    name = _describe(obj)
    if "shape" not in obj:
        raise ValueError(
            f"the color {obj['color_word']!r} in {caption_text!r} is not followed by a shape "
            f"({', '.join(SHAPES)})"
        )
    kinds = obj["directions"] | obj["motions"]
    if len(kinds) > 1:
        raise ValueError(f"contradictory motions {sorted(kinds)} for the {name} in {caption_text!r}")
    if not kinds:
        if obj["travel"]:
            raise ValueError(
                f"{obj['travel']!r} needs a direction (left, right, up or down) for the {name} "
                f"in {caption_text!r}"
            )
        raise ValueError(
            f"no motion for the {name} in {caption_text!r}; expected one of {', '.join(MOTIONS)}"
        )
    motion = kinds.pop()
    if len(obj["speeds"]) > 1:
        raise ValueError(f"contradictory speeds for the {name} in {caption_text!r}")
    speed = obj["speeds"].pop() if obj["speeds"] else None
    if motion == "still" and speed is not None:
        raise ValueError(f"the {name} in {caption_text!r} stands still, so it cannot be {speed}")
    return ObjectSpec(shape=obj["shape"], color=obj["color"], motion=motion, speed=speed)
