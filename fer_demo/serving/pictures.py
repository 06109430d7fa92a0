"""The pictures of an analysis: the photo with each face's numbered box and top label, and with each face's
top-class Grad-CAM mapped back onto it. The Predict tab, the live webcam and `fer-demo predict --out` draw
these."""

from __future__ import annotations

import numpy as np

from ..vision.drawing import annotate, cam_on_photo
from .cams import top_class_cams
from ..core.labels import FACE_SIZE
from .predictor import Analysis, Face, Predictor


def caption(a: Analysis, face: Face) -> str:
    """The label drawn beside a face's box: "2 happy 87%"."""
    return f"{face.index} {a.labels[int(face.probs.argmax())]} {face.probs.max():.0%}"


def labelled(a: Analysis, rgb: np.ndarray | None = None) -> np.ndarray:
    """The photo (or `rgb`, a picture of it) with each face's numbered box and top label."""
    return annotate(a.image.rgb if rgb is None else rgb, [f.box for f in a.faces], [caption(a, f) for f in a.faces])


def face_cams(predictor: Predictor, a: Analysis) -> np.ndarray:
    """The top-class Grad-CAM (48x48, 0-1) of each detailed face."""
    detailed = a.detailed()
    if not detailed:
        return np.zeros((0, FACE_SIZE, FACE_SIZE), np.float32)
    return top_class_cams(predictor, np.stack([f.face for f in detailed]), [int(f.probs.argmax()) for f in detailed])


def photo_with_cams(predictor: Predictor, a: Analysis, opacity: float, cams=None) -> np.ndarray:
    """The photo with each detailed face's top-class Grad-CAM on its crop square, under numbered boxes."""
    detailed = a.detailed()
    if cams is None:
        cams = face_cams(predictor, a)
    shown = cam_on_photo(a.image.rgb, [f.crop for f in detailed], list(cams), opacity) if detailed else a.image.rgb
    return labelled(a, shown)
