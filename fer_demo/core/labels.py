"""FER2013 label names and face size (what the model takes in and puts out), and mapping of any data set's
label names onto them by name."""

from __future__ import annotations

FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES = len(FER_LABELS)
FACE_SIZE = 48  # FER2013 faces are 48 x 48 grey pixels: the crops the app cuts and the model's native input
PROB_DIGITS = 6  # decimals of a probability in the JSON answers

# Names that FER2013 copies on the Hub use for the same classes.
_SYNONYMS = {
    "angry": "angry", "anger": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "happily": "happy",
    "sad": "sad", "sadness": "sad", "unhappy": "sad",
    "surprise": "surprise", "surprised": "surprise", "surprising": "surprise",
    "neutral": "neutral", "calm": "neutral",
}


def label_probs(probs, labels=FER_LABELS) -> dict[str, float]:
    """{label name: probability}, the shape gr.Label and the JSON answers use."""
    return {name: float(p) for name, p in zip(labels, probs)}


def rounded_label_probs(probs, labels=FER_LABELS, digits: int = PROB_DIGITS) -> dict[str, float]:
    """`label_probs` rounded to `digits` decimals, as the JSON answers and the video CSV give them."""
    return {name: round(p, digits) for name, p in label_probs(probs, labels).items()}


class LabelError(ValueError):
    """A data set's labels cannot be mapped onto FER2013's seven classes."""


def canonical_label(name: str) -> str:
    """Return FER2013's name for `name` ('Happiness' -> 'happy'), or raise LabelError."""
    key = str(name).strip().lower().replace("-", "_").replace(" ", "_")
    if key.isdigit() and len(key) == 1:
        raise LabelError(f"label {name!r} is a number, not a name: cannot map it by name")
    if key not in _SYNONYMS:
        raise LabelError(f"unknown class {name!r}; expected one of {', '.join(FER_LABELS)} or a synonym")
    return _SYNONYMS[key]


def fer_index_map(names: list[str] | tuple[str, ...]) -> list[int]:
    """Map a data set's class names, in its own order, to FER2013 indices.

    Returns `m` with `m[source_index] == fer_index`. Every FER2013 class must
    appear exactly once.
    """
    mapped = [FER_LABELS.index(canonical_label(n)) for n in names]
    seen: dict[int, str] = {}
    for src, fer in zip(names, mapped):
        if fer in seen:
            raise LabelError(f"classes {seen[fer]!r} and {src!r} both mean {FER_LABELS[fer]!r}")
        seen[fer] = src
    missing = [FER_LABELS[i] for i in range(NUM_CLASSES) if i not in seen]
    if missing:
        raise LabelError(f"missing class(es): {', '.join(missing)} (data set has {list(names)})")
    return mapped
