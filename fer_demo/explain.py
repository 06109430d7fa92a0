"""Grad-CAM family explanations of one face (pytorch-grad-cam), their faithfulness, and overlays.

Every CAM object is built inside `with`, so its forward hooks are removed when
it is done, and runs on the Predictor's private `cam_model` under
`Predictor.cam_lock`: CAM calls on a shared model are not thread-safe (hooks,
and AblationCAM swaps a layer of the model while it runs). Gradients are
switched on explicitly, since a caller may sit inside `no_grad`/`inference_mode`.
"""

from __future__ import annotations

import time
from typing import Callable

import cv2
import numpy as np
import torch
from pytorch_grad_cam import (AblationCAM, EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM,
                              XGradCAM)
from pytorch_grad_cam.ablation_layer import AblationLayer
from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

from .faces import Box
from .model import CAM_LAYERS
from .predict import Predictor
from .transforms import to_model_input

METHODS = {
    "GradCAM": GradCAM,
    "GradCAM++": GradCAMPlusPlus,
    "HiResCAM": HiResCAM,
    "XGradCAM": XGradCAM,
    "LayerCAM": LayerCAM,
    "EigenCAM": EigenCAM,
    "ScoreCAM": ScoreCAM,
    "AblationCAM": AblationCAM,
}
SLOW_METHODS = ("ScoreCAM", "AblationCAM")  # one forward pass per channel of the target layer
CLASS_AGNOSTIC = ("EigenCAM",)  # the first principal component of the activations: same map for every class
PERTURBATION_BATCH = 128  # ScoreCAM / AblationCAM forward-pass batch (48x48 inputs are small)
ROAD_PERCENTILES = (20, 40, 60, 80)  # fewer than ROAD's default 9: each needs a sparse solve
FAITHFULNESS_NOTE = (
    "ROAD (Rong et al., 2022): the mean over 20-80% of the pixels removed (in-filled from their "
    "neighbours) of [confidence drop when the LEAST relevant pixels go minus drop when the MOST relevant "
    "go] / 2. Higher is better; near 0 or below means the map does not point at what the model uses. "
    "CAM x image: change in the class's probability when the face is multiplied by the map (closer to 0 "
    "or above is better).")


class ExplainError(ValueError):
    """A bad method, layer or class name; the message says what is allowed."""


def default_layer(map_sizes: dict[str, int]) -> str:
    """The deepest stage whose map is at least 6x6 (at 48x48 the last stage is tiny)."""
    good = [name for name in CAM_LAYERS if map_sizes.get(name, 0) >= 6]
    return good[-1] if good else CAM_LAYERS[-1]


def _check(predictor: Predictor, method: str, layer: str) -> None:
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


def _input(predictor: Predictor, face: np.ndarray) -> torch.Tensor:
    c = predictor.config
    face = torch.from_numpy(np.array(face, dtype=np.uint8))
    return to_model_input(face[None], predictor.input_size, c["mean"], c["std"]).contiguous()


def compute_cams(predictor: Predictor, faces: np.ndarray, classes: list[int], method: str = "GradCAM",
                 layer: str | None = None, progress: Callable[[float, str], None] | None = None) -> np.ndarray:
    """CAMs (K, S, S) in [0, 1] for K faces (K, 48, 48) uint8 and one class each.

    Gradient methods run as one batch; ScoreCAM and AblationCAM run face by face
    (and report progress), since each needs a forward pass per channel.
    """
    layer = layer or default_layer(predictor.map_sizes)
    _check(predictor, method, layer)
    faces = np.asarray(faces, dtype=np.uint8).reshape(-1, *np.asarray(faces).shape[-2:])
    if len(faces) != len(classes):
        raise ExplainError(f"{len(faces)} faces but {len(classes)} target classes")
    model = predictor.cam_model
    x = torch.cat([_input(predictor, f) for f in faces])
    chunks = [[i] for i in range(len(x))] if method in SLOW_METHODS else [list(range(len(x)))]
    out = []
    with predictor.cam_lock, torch.inference_mode(False), torch.enable_grad():
        for n, idx in enumerate(chunks):
            if progress and method in SLOW_METHODS:
                progress(n / len(chunks), f"{method}: map {n + 1} of {len(chunks)}")
            xi = x[idx].clone().requires_grad_(True)  # weights are frozen: gradients flow to the input
            targets = [ClassifierOutputTarget(classes[i]) for i in idx]
            target_layers = [getattr(model, layer)]
            if method == "AblationCAM":
                cam_obj = AblationCAM(model, target_layers, ablation_layer=AblationLayer(),
                                      batch_size=PERTURBATION_BATCH)
            else:
                cam_obj = METHODS[method](model=model, target_layers=target_layers)
                if method == "ScoreCAM":
                    cam_obj.batch_size = PERTURBATION_BATCH
            with cam_obj as cam:
                maps = cam(input_tensor=xi, targets=targets)
            if maps is None:  # BaseCAM.__exit__ swallows IndexError and the call returns nothing
                raise ExplainError(f"{method} failed on {layer}")
            out.append(np.asarray(maps, dtype=np.float32))
    if progress and method in SLOW_METHODS:
        progress(1.0, f"{method}: done")
    cams = np.concatenate(out)
    return np.nan_to_num(np.clip(cams, 0.0, 1.0))


def faithfulness(predictor: Predictor, faces: np.ndarray, cams: np.ndarray, classes: list[int]) -> list[dict]:
    """pytorch-grad-cam's metrics for each (face, map, class), on the class's softmax probability."""
    model = predictor.cam_model
    x = torch.cat([_input(predictor, f) for f in np.asarray(faces, dtype=np.uint8).reshape(-1, *cams.shape[-2:])])
    targets = [ClassifierOutputSoftmaxTarget(c) for c in classes]
    cams = np.asarray(cams, dtype=np.float32)
    with predictor.cam_lock, torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # ROAD's in-filling adds noise: make the scores repeatable
        road = ROADCombined(percentiles=list(ROAD_PERCENTILES))(x, cams, targets, model)
        mult = CamMultImageConfidenceChange()(x, cams, targets, model)
    return [{"road": round(float(r), 5), "cam_x_image_change": round(float(m), 5)}
            for r, m in zip(np.ravel(road), np.ravel(mult))]


def explain_face(predictor: Predictor, face: np.ndarray, method: str = "GradCAM", layer: str | None = None,
                 target="predicted", with_faithfulness: bool = True,
                 progress: Callable[[float, str], None] | None = None) -> dict:
    """Explain one 48x48 face: the `/explain` answer, JSON-friendly (maps as lists of floats)."""
    start = time.perf_counter()
    layer = layer or default_layer(predictor.map_sizes)
    _check(predictor, method, layer)
    face = np.asarray(face, dtype=np.uint8)
    probs = predictor.classify(face[None])[0]
    classes = resolve_classes(predictor, target, probs)
    faces = np.repeat(face[None], len(classes), axis=0)
    cams = compute_cams(predictor, faces, classes, method, layer, progress)
    scores = faithfulness(predictor, faces, cams, classes) if with_faithfulness else [{}] * len(classes)
    predicted = int(probs.argmax())
    maps = [{"class": predictor.labels[c], "probability": round(float(probs[c]), 6), **s,
             "cam": np.round(cam, 3).tolist()} for c, cam, s in zip(classes, cams, scores)]
    notes = []
    if method in CLASS_AGNOSTIC:
        notes.append(f"{method} does not depend on the target class: every class gets the same map.")
    return {
        "method": method,
        "layer": layer,
        "map_size": int(predictor.map_sizes[layer]),
        "target": "all" if len(classes) > 1 else predictor.labels[classes[0]],
        "predicted": predictor.labels[predicted],
        "confidence": round(float(probs[predicted]), 6),
        "probabilities": {name: round(float(p), 6) for name, p in zip(predictor.labels, probs)},
        "maps": maps,
        "faithfulness": FAITHFULNESS_NOTE if with_faithfulness else None,
        "notes": notes,
        "seconds": round(time.perf_counter() - start, 3),
    }


# --- drawing -----------------------------------------------------------------------------------

def _jet(cam: np.ndarray) -> np.ndarray:
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), cv2.COLORMAP_JET)
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)


def overlay(face: np.ndarray, cam: np.ndarray, opacity: float = 0.5, size: int = 192) -> np.ndarray:
    """A face (gray or RGB uint8) with its CAM as a jet heatmap, `opacity` of heatmap, size x size RGB."""
    face = np.asarray(face, dtype=np.uint8)
    rgb = np.repeat(face[..., None], 3, axis=2) if face.ndim == 2 else face
    rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_CUBIC)
    mask = cv2.resize(np.asarray(cam, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    return show_cam_on_image(np.float32(rgb) / 255.0, np.clip(mask, 0, 1), use_rgb=True,
                             image_weight=1.0 - opacity)


def enlarge(face: np.ndarray, size: int = 192) -> np.ndarray:
    """A 48x48 gray face as a size x size RGB image (nearest-neighbour would look blocky: cubic)."""
    face = np.asarray(face, dtype=np.uint8)
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.repeat(big[..., None], 3, axis=2) if big.ndim == 2 else big


def cam_on_photo(rgb: np.ndarray, regions: list[Box], cams: list[np.ndarray], opacity: float = 0.5) -> np.ndarray:
    """Map each face's CAM back onto the full photo, inside the square its crop covered."""
    h, w = rgb.shape[:2]
    heat = np.zeros((h, w), np.float32)
    alpha = np.zeros((h, w), np.float32)
    for region, cam in zip(regions, cams):
        m = cv2.resize(np.asarray(cam, np.float32), (region.w, region.h), interpolation=cv2.INTER_LINEAR)
        x0, y0 = max(region.x, 0), max(region.y, 0)
        x1, y1 = min(region.x + region.w, w), min(region.y + region.h, h)
        if x1 <= x0 or y1 <= y0:
            continue
        part = m[y0 - region.y:y1 - region.y, x0 - region.x:x1 - region.x]
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], part)
        alpha[y0:y1, x0:x1] = float(np.clip(opacity, 0, 1))
    colored = _jet(heat).astype(np.float32)
    out = rgb.astype(np.float32) * (1 - alpha[..., None]) + colored * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _palette(i: int) -> tuple[int, int, int]:
    colors = [(0, 200, 255), (255, 80, 80), (80, 220, 80), (255, 200, 0), (200, 80, 255), (255, 140, 0)]
    return colors[i % len(colors)]


def annotate(rgb: np.ndarray, boxes: list[Box], captions: list[str]) -> np.ndarray:
    """Numbered boxes with a caption each ("1 happy 87%")."""
    out = np.ascontiguousarray(rgb.copy())
    scale = max(out.shape[:2]) / 800
    thick = max(2, round(3 * scale))
    font = 0.6 * max(scale, 0.6)
    for i, (b, text) in enumerate(zip(boxes, captions)):
        color = _palette(i)
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, thick // 2))
        ty = b.y - 6 if b.y - th - base - 6 >= 0 else b.y + b.h + th + 6
        tx = max(0, min(b.x, out.shape[1] - tw - 6))  # keep the caption inside the photo
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 6, ty + base // 2), color, -1)
        cv2.putText(out, text, (tx + 3, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0),
                    max(1, thick // 2), cv2.LINE_AA)
    return out
