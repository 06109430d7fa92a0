"""The in-process API: `fer_demo.predict` and `fer_demo.explain` give the app's /predict and /explain answers,
made by the same Predictor methods that the endpoints call (ui/predict_tab.py, ui/explorer_tab.py).

    import fer_demo
    fer_demo.predict("photo.jpg")["faces"]                  # boxes, labels, probabilities
    fer_demo.explain("face.png", method="GradCAM++", layer="layer4", target="predicted")
    fer_demo.predict(["a.jpg", "b.jpg"])                    # a list of answers, with a progress bar when long

An image is a path, bytes, a PIL image or an RGB numpy array. Without `predictor=`, one shared Predictor of the
shipped model (made on the first call, like the app's: `Predictor()`) answers.
"""

from __future__ import annotations

import threading

from .predictor import Predictor

PROGRESS_FROM = 10  # a list of at least this many images shows a progress bar (tqdm, on stderr)

_shared: Predictor | None = None
_shared_lock = threading.Lock()


def shared_predictor() -> Predictor:
    """The Predictor `predict` and `explain` use when given none: the shipped model, made once."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Predictor()
        return _shared


def _each(images, answer, desc: str):
    """answer(image), or a list of answers for a list (or tuple) of images."""
    if not isinstance(images, (list, tuple)):
        return answer(images)
    from tqdm.auto import tqdm

    return [answer(x) for x in tqdm(images, desc=desc, unit="image", disable=len(images) < PROGRESS_FROM)]


def predict(images, whole_image: bool = False, tta: bool = True, predictor: Predictor | None = None):
    """/predict's answer for an image (or a list of answers for a list): each face's box, eye landmarks, crop,
    top label, confidence and 7 probabilities, and a message in words. `whole_image` classifies the whole image
    as one face; `tta` false classifies each face alone instead of averaging it with its views."""
    p = predictor or shared_predictor()
    return _each(images, lambda x: p.predict(x, bool(whole_image), p.serving_tta(tta)), "predict")


def explain(images, method: str = "GradCAM", layer: str | None = None, target: str = "predicted",
            all_classes: bool = False, predictor: Predictor | None = None):
    """/explain's answer for a face image (a photo works: its largest face is used), or a list of answers:
    CAM maps (48x48, 0-1) for the `target` class ("predicted" or a label; every class with `all_classes`) at
    `layer` (a ResNet stage; default: the one the app uses), with faithfulness scores."""
    p = predictor or shared_predictor()
    return _each(images, lambda x: p.explain(x, method, layer, target, bool(all_classes)), "explain")
