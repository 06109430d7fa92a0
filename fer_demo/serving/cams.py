"""Grad-CAM family explanations of one face (pytorch-grad-cam) and their faithfulness.

Every CAM object is built inside `with`, so its forward hooks are removed when
it is done, and runs on the Predictor's private `cam_model` under
`Predictor.cam_lock`: CAM calls on a shared model are not thread-safe (hooks,
and AblationCAM swaps a layer of the model while it runs). Gradients are
switched on explicitly, since a caller may sit inside `no_grad`/`inference_mode`.
The pictures are drawn by fer_demo/vision/drawing.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from pytorch_grad_cam import (AblationCAM, EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM,
                              XGradCAM)
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

from ..vision.faces import single_face
from ..vision.images import ImageLoadError, load_image
from ..core.labels import PROB_DIGITS, rounded_label_probs
from ..core.model import CAM_LAYERS
from .predictor import Predictor
from ..core.transforms import to_model_input

Progress = Callable[[float, str], None]  # (fraction done, what is running)


@dataclass(frozen=True)
class CamMethod:
    """One pytorch-grad-cam method and how it runs here."""

    cam: type[BaseCAM]
    slow: bool = False  # one forward pass per channel of the target layer: face by face, with progress
    class_agnostic: bool = False  # the map does not depend on the target class
    options: Callable[[], dict] = dict  # extra constructor arguments, made fresh for each CAM object

    def build(self, model: torch.nn.Module, layer: str) -> BaseCAM:
        cam = self.cam(model=model, target_layers=[getattr(model, layer)], **self.options())
        if self.slow:
            cam.batch_size = PERTURBATION_BATCH  # they read it; ScoreCAM's constructor does not take it
        return cam


METHODS = {
    "GradCAM": CamMethod(GradCAM),
    "GradCAM++": CamMethod(GradCAMPlusPlus),
    "HiResCAM": CamMethod(HiResCAM),
    "XGradCAM": CamMethod(XGradCAM),
    "LayerCAM": CamMethod(LayerCAM),
    "EigenCAM": CamMethod(EigenCAM, class_agnostic=True),  # first principal component of the activations
    "ScoreCAM": CamMethod(ScoreCAM, slow=True),
    "AblationCAM": CamMethod(AblationCAM, slow=True, options=lambda: {"ablation_layer": AblationLayer()}),
}
DEFAULT_METHOD = "GradCAM"  # also what the Predict and Test set tabs show for each face's class
SLOW_METHODS = tuple(name for name, m in METHODS.items() if m.slow)
METHOD_HINT = f"{' and '.join(SLOW_METHODS)} run one forward pass per channel: slower"
PERTURBATION_BATCH = 128  # the slow methods' forward-pass batch (48x48 inputs are small)
ROAD_PERCENTILES = (20, 40, 60, 80)  # fewer than ROAD's default 9: each needs a sparse solve
FAITHFULNESS_NOTE = (
    "ROAD (Rong et al., 2022): the mean over 20-80% of the pixels removed (in-filled from their "
    "neighbours) of [confidence drop when the MOST relevant pixels go minus drop when the LEAST relevant "
    "go] / 2. Higher is better; near 0 or below means the map does not point at what the model uses. "
    "CAM x image: change in the class's probability when the face is multiplied by the map (closer to 0 "
    "or above is better).")


class ExplainError(ValueError):
    """A bad method, layer or class name; the message says what is allowed."""


def default_layer(map_sizes: dict[str, int]) -> str:
    """The deepest stage whose map is at least 6x6 (at 48x48 the last stage is tiny)."""
    good = [name for name in CAM_LAYERS if map_sizes.get(name, 0) >= 6]
    return good[-1] if good else CAM_LAYERS[-1]


def _check(method: str, layer: str) -> None:
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if layer not in CAM_LAYERS:
        raise ExplainError(f"unknown layer {layer!r}; choose one of {', '.join(CAM_LAYERS)}")


def resolve_classes(predictor: Predictor, target, probs: np.ndarray) -> list[int]:
    """'predicted' / None -> [argmax]; 'all' -> all 7; a label name or index -> [it]."""
    if target is None or (isinstance(target, str) and target.strip().lower() in ("predicted", "")):
        return [int(probs.argmax())]
    if isinstance(target, str) and target.strip().lower() in ("all", "all 7", "all classes"):
        return list(range(len(predictor.labels)))
    if isinstance(target, (int, np.integer)) and 0 <= int(target) < len(predictor.labels):
        return [int(target)]
    if isinstance(target, str) and target.strip().lower() in predictor.labels:
        return [predictor.labels.index(target.strip().lower())]
    raise ExplainError(f"unknown target class {target!r}; use 'predicted', 'all' or one of "
                       f"{', '.join(predictor.labels)}")


def _as_faces(faces: np.ndarray) -> np.ndarray:
    """One face (H, W) or a batch (K, H, W) -> a uint8 batch (K, H, W)."""
    faces = np.asarray(faces, dtype=np.uint8)
    return faces.reshape(-1, *faces.shape[-2:])


def _inputs(predictor: Predictor, faces: np.ndarray) -> torch.Tensor:
    """uint8 faces (K, H, W) -> the model's normalized input (K, 1, S, S)."""
    c = predictor.config
    faces = torch.from_numpy(_as_faces(faces).copy())  # a copy: inputs may be read-only
    return to_model_input(faces, predictor.input_size, c["mean"], c["std"]).contiguous()


def compute_cams(predictor: Predictor, faces: np.ndarray, classes: list[int], method: str = DEFAULT_METHOD,
                 layer: str | None = None, progress: Progress | None = None) -> np.ndarray:
    """CAMs (K, S, S) in [0, 1] for K faces (K, 48, 48) uint8 and one class each.

    Gradient methods run as one batch; slow ones (`CamMethod.slow`) run face by
    face and report progress, since each needs a forward pass per channel.
    """
    layer = layer or default_layer(predictor.map_sizes)
    _check(method, layer)
    spec = METHODS[method]
    faces = _as_faces(faces)
    if len(faces) != len(classes):
        raise ExplainError(f"{len(faces)} faces but {len(classes)} target classes")
    if not len(faces):
        return np.zeros((0, predictor.input_size, predictor.input_size), np.float32)
    report = progress if spec.slow else None
    model = predictor.cam_model
    x = _inputs(predictor, faces)
    chunks = [[i] for i in range(len(x))] if spec.slow else [list(range(len(x)))]
    out = []
    with predictor.cam_lock, torch.inference_mode(False), torch.enable_grad():
        for n, idx in enumerate(chunks):
            if report:
                report(n / len(chunks), f"{method}: map {n + 1} of {len(chunks)}")
            xi = x[idx].clone().requires_grad_(True)  # weights are frozen: gradients flow to the input
            with spec.build(model, layer) as cam:
                maps = cam(input_tensor=xi, targets=[ClassifierOutputTarget(classes[i]) for i in idx])
            if maps is None:  # BaseCAM.__exit__ swallows IndexError and the call returns nothing
                raise ExplainError(f"{method} failed on {layer}")
            out.append(np.asarray(maps, dtype=np.float32))
    if report:
        report(1.0, f"{method}: done")
    return np.nan_to_num(np.clip(np.concatenate(out), 0.0, 1.0))


def top_class_cams(predictor: Predictor, faces: np.ndarray, classes: list[int] | None = None,
                   layer: str | None = None) -> np.ndarray:
    """The DEFAULT_METHOD map (K, S, S) of each face for its class: the top class when `classes` is None."""
    faces = _as_faces(faces)
    if classes is None:
        classes = [int(c) for c in predictor.classify(faces).argmax(1)]
    return compute_cams(predictor, faces, classes, DEFAULT_METHOD, layer)


def faithfulness(predictor: Predictor, faces: np.ndarray, cams: np.ndarray, classes: list[int]) -> list[dict]:
    """pytorch-grad-cam's metrics for each (face, map, class), on the class's softmax probability."""
    model = predictor.cam_model
    x = _inputs(predictor, faces)
    targets = [ClassifierOutputSoftmaxTarget(c) for c in classes]
    cams = np.asarray(cams, dtype=np.float32)
    with predictor.cam_lock, torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # ROAD's in-filling adds noise: make the scores repeatable
        road = ROADCombined(percentiles=list(ROAD_PERCENTILES))(x, cams, targets, model)
        mult = CamMultImageConfidenceChange()(x, cams, targets, model)
    return [{"road": round(float(r), 5), "cam_x_image_change": round(float(m), 5)}
            for r, m in zip(np.ravel(road), np.ravel(mult))]


def explain_face(predictor: Predictor, face: np.ndarray, method: str = DEFAULT_METHOD, layer: str | None = None,
                 target="predicted", with_faithfulness: bool = True, progress: Progress | None = None) -> dict:
    """Explain one 48x48 face: the `/explain` answer, JSON-friendly (maps as lists of floats)."""
    start = time.perf_counter()
    layer = layer or default_layer(predictor.map_sizes)
    _check(method, layer)
    face = np.asarray(face, dtype=np.uint8)
    probs = predictor.classify(face[None])[0]
    classes = resolve_classes(predictor, target, probs)
    faces = np.repeat(face[None], len(classes), axis=0)
    cams = compute_cams(predictor, faces, classes, method, layer, progress)
    scores = faithfulness(predictor, faces, cams, classes) if with_faithfulness else [{}] * len(classes)
    predicted = int(probs.argmax())
    maps = [{"class": predictor.labels[c], "probability": round(float(probs[c]), PROB_DIGITS), **s,
             "cam": np.round(cam, 3).tolist()} for c, cam, s in zip(classes, cams, scores)]
    notes = [f"{method} does not depend on the target class: every class gets the same map."] \
        if METHODS[method].class_agnostic else []
    return {
        "method": method,
        "layer": layer,
        "map_size": int(predictor.map_sizes[layer]),
        "target": "all" if len(classes) > 1 else predictor.labels[classes[0]],
        "predicted": predictor.labels[predicted],
        "confidence": round(float(probs[predicted]), PROB_DIGITS),
        "probabilities": rounded_label_probs(probs, predictor.labels),
        "maps": maps,
        "faithfulness": FAITHFULNESS_NOTE if with_faithfulness else None,
        "notes": notes,
        "seconds": round(time.perf_counter() - start, 3),
    }


def explain_image(predictor: Predictor, source, method: str = DEFAULT_METHOD, layer: str | None = None,
                  target="predicted", all_classes: bool = False, progress: Progress | None = None) -> dict:
    """The `/explain` answer for an image (a path, bytes, PIL image or RGB array): `explain_face` of its
    face (see `faces.single_face`), plus that face ("face", 48x48 ints) and how it was chosen ("face_source")."""
    if source is None:
        raise ImageLoadError("No face image was given: upload one, pick an example or a test-set face.")
    face, how = single_face(load_image(source).rgb, predictor.detector)
    out = explain_face(predictor, face, method, layer, "all" if all_classes else target, progress=progress)
    return {**out, "face": face.astype(int).tolist(), "face_source": how}
