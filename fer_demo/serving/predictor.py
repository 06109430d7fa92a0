"""Serving: a Predictor that holds the model and the face detector once and turns photos into
JSON-friendly face predictions (an `Analysis`): detect, align and crop like FER2013, classify with
test-time augmentation. The forward pass itself is `inference.predict_probs`. `Predictor.predict` is the
app's `/predict` answer, built by the same code that the endpoint runs (ui/predict_tab.py), and what
`fer_demo.predict` returns."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core import checkpoint as ckpt
from ..core.backends import load_classifier
from ..vision.detectors import DEFAULT_DETECTOR, DETECT_SIDE, Box, Detection, open_detector
from ..vision.faces import (MAX_FACES, MAX_FACES_CLASSIFIED, Crop, detector_crop, extract, is_face_crop,
                            reading_order, whole_image_box, whole_image_crop)
from ..vision.images import LoadedImage, load_image
from ..core.inference import predict_probs
from ..core.labels import FACE_SIZE, PROB_DIGITS, rounded_label_probs
from ..core.model import stage_map_sizes
from ..core.transforms import FULL_TTA, NO_TTA, TTA, tta_name

# Chosen on validation faces, end to end in synthetic photos (`python -m bench.end_to_end --split validation
# --tta-sweep --detectors yunet`; the figures are in docs/detection.md): 10 views and the mirror alone tie within
# one face there, and the same faces classified directly break the tie for the 10 views.
DEFAULT_TTA = FULL_TTA
WHOLE_IMAGE = "whole image"


@dataclass
class Face:
    index: int  # 1-based, in reading order
    detection: Detection  # in the loaded image's pixels
    crop: Crop  # the square the 48x48 face was cut from
    face: np.ndarray  # (48, 48) uint8
    probs: np.ndarray  # (7,)

    @property
    def box(self) -> Box:
        return self.detection.box


@dataclass
class Analysis:
    """One photo's faces and their predictions; `to_json()` is the `/predict` answer, less the backend and
    the `message` that words these facts."""

    image: LoadedImage
    faces: list[Face]
    labels: tuple[str, ...]
    n_detected: int
    whole_image: bool
    detector: str
    tta: str
    max_faces: int  # at most this many of the detected faces were classified: the largest
    small_as_face: bool = False  # the image was too small to search, so it was taken as one face crop
    seconds: float = 0.0

    @property
    def no_face(self) -> bool:
        return not self.faces

    def detailed(self, limit: int = MAX_FACES) -> list[Face]:
        """The faces that get probabilities and Grad-CAM in the UI: the `limit` largest, in reading order."""
        largest = sorted(self.faces, key=lambda f: -f.box.area)[:limit]
        return sorted(largest, key=lambda f: f.index)

    @property
    def message(self) -> str:
        """What the Predict tab (and /predict's "message") says about the analysis, in plain words."""
        if self.no_face:
            return "No face found. Tick \"Classify the whole image as one face\" to classify the image anyway."
        if self.whole_image:
            text = "Classified the whole image (its centred square) as one face."
        else:
            text = f"{self.n_detected} face{'s' * (self.n_detected != 1)} found."
        notes = [
            self.small_as_face and "The image is small, so it was taken as one face crop.",
            self.n_detected > self.max_faces and f"Classified the {self.max_faces} largest.",
            len(self.faces) > MAX_FACES and (f"Probabilities and Grad-CAM are shown for the {MAX_FACES} largest; "
                                             "every face gets a box and its top label."),
        ]
        return " ".join([text, *filter(None, notes)])

    def to_json(self) -> dict:
        inv = 1.0 / self.image.scale
        return {
            "faces": [{
                "index": f.index,
                **f.detection.scaled(inv).to_json(),
                "crop": f.crop.scaled(inv).to_json(),
                "label": self.labels[int(f.probs.argmax())],
                "confidence": round(float(f.probs.max()), PROB_DIGITS),
                "probabilities": rounded_label_probs(f.probs, self.labels),
            } for f in self.faces],
            "n_faces": len(self.faces),
            "n_detected": self.n_detected,
            "no_face": self.no_face,
            "whole_image": self.whole_image,
            "image_size": {"width": self.image.original_size[0], "height": self.image.original_size[1]},
            "detector": WHOLE_IMAGE if self.whole_image else self.detector,
            "tta": {"name": self.tta, "views": list(TTA[self.tta].views)},
            "seconds": round(self.seconds, 4),
        }


class Predictor:
    """Loads a checkpoint and a face detector once; classifies faces in batches. Safe to share between threads.

        >>> from fer_demo import Predictor
        >>> p = Predictor(backend="torch", tta="flip")  # the shipped model; or Predictor("runs/r18", device="cuda")
        >>> answer = p.predict("photo.jpg")  # the app's /predict answer, as fer_demo.predict gives it
        >>> [(f["label"], f["confidence"]) for f in answer["faces"]]  # one pair per face found
        >>> cam = p.explain("face.png", method="GradCAM++")  # the app's /explain answer

    `checkpoint`: a folder written by train.train or train.export (default: the shipped fer-resnet18);
    `device`: "cpu" or "cuda"; `backend`: "auto" (the int8 ONNX copy when the checkpoint has a fresh one, else
    PyTorch), "torch" or "onnx-int8"; `detector`: "yunet", "yunet-opencv" or "haar" (`detector_model`: another
    model file, `detect_side`: the longest side the detector sees); `tta`: "10-view", "flip" or "none".

    Plain predictions use `classifier` (the model, or its int8 ONNX copy) under a lock. Grad-CAM gets its own copy
    (`cam_model`, with its own lock, see cams.py), so that a slow explanation
    never holds up predictions and CAM hooks never see a prediction's forward pass.
    `detector` falls back to the Haar cascade when YuNet's model file is missing or broken;
    `notes` says so, in one line each.
    """

    def __init__(self, checkpoint: str | Path = ckpt.SHIPPED_CHECKPOINT, device: str = "cpu",
                 backend: str = "auto", detector: str = DEFAULT_DETECTOR, detector_model: str | Path | None = None,
                 tta: str = DEFAULT_TTA, detect_side: int = DETECT_SIDE):
        self.folder = ckpt.resolve(checkpoint)
        self.model, self.config = ckpt.load_model(self.folder, device)
        # what classify() runs: the model itself, or its int8 ONNX copy (see fer_demo/core/backends.py)
        self.classifier, self.backend, self.backend_note = load_classifier(self.folder, self.model, backend, device)
        self.detector, self.detector_note = open_detector(detector, detector_model, detect_side)
        self.tta = tta_name(tta)
        self.labels = tuple(self.config["labels"])
        self.input_size = int(self.config["input_size"])
        self.lock = threading.Lock()
        self.cam_lock = threading.Lock()  # held for a whole explanation (see cams.py)
        self._cam_init_lock = threading.Lock()
        self._cam_model = None
        self.map_sizes = stage_map_sizes(self.model, self.input_size)

    @property
    def notes(self) -> list[str]:
        """What fell back at start, one line each (the app prints them)."""
        return [n for n in (self.backend_note and f"classifier: {self.backend_note}",
                            self.detector_note and f"face detector: {self.detector_note}") if n]

    @property
    def cam_model(self) -> torch.nn.Module:
        """A private copy of the model for Grad-CAM: eval mode, weights frozen (input gradients only)."""
        with self._cam_init_lock:
            if self._cam_model is None:
                m = copy.deepcopy(self.model).eval()
                for p in m.parameters():
                    p.requires_grad_(False)
                self._cam_model = m
            return self._cam_model

    def classify(self, faces: np.ndarray | torch.Tensor, tta: str | None = None) -> np.ndarray:
        """uint8 faces (N, 48, 48) -> probabilities (N, 7), in one batched forward pass (all views at once)."""
        faces = faces.to(torch.uint8) if isinstance(faces, torch.Tensor) else \
            torch.from_numpy(np.array(faces, dtype=np.uint8))  # a copy: inputs may be read-only
        if faces.dim() == 2:
            faces = faces.unsqueeze(0)
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        with self.lock, torch.inference_mode():
            probs = predict_probs(self.classifier, faces, self.config, tta=tta_name(tta or NO_TTA),
                                  batch_size=max(1, len(faces)))
        return probs.float().numpy()

    def analyze(self, source, whole_image: bool = False, max_faces: int = MAX_FACES_CLASSIFIED,
                tta: str | None = None) -> Analysis:
        """Load a photo, find its faces (or take the whole image), crop them like FER2013 and classify."""
        start = time.perf_counter()
        image = source if isinstance(source, LoadedImage) else load_image(source)
        rgb = image.rgb
        small_as_face = not whole_image and is_face_crop(rgb)
        whole_image = whole_image or small_as_face
        found = [] if whole_image else self.detector.detect(rgb)
        if whole_image:
            detections, crops = [Detection(whole_image_box(rgb))], [whole_image_crop(rgb)]
        else:
            detections = reading_order(found[:max_faces])
            crops = [detector_crop(d, self.detector) for d in detections]
        faces48 = np.stack([extract(rgb, c) for c in crops]) if crops else np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8)
        tta = self._tta(tta)
        probs = self.classify(faces48, tta)
        faces = [Face(i + 1, d, c, f, p) for i, (d, c, f, p) in enumerate(zip(detections, crops, faces48, probs))]
        return Analysis(image, faces, self.labels, len(found), whole_image, self.detector.name, tta, max_faces,
                        small_as_face, time.perf_counter() - start)

    def _tta(self, tta: str | None) -> str:
        """A request's TTA: the named one, or the Predictor's own when none is named."""
        return tta_name(self.tta if tta is None else tta)

    def serving_tta(self, on: bool) -> str:
        """The TTA of a /predict request's switch: the Predictor's own, or none when switched off."""
        return self.tta if on else NO_TTA

    def answer(self, a: Analysis) -> dict:
        """/predict's JSON answer for an analysis: `Analysis.to_json`, the backend and the message."""
        return {**a.to_json(), "backend": self.backend, "message": a.message}

    def predict(self, source, whole_image: bool = False, tta: str | bool | None = None) -> dict:
        """One photo's /predict answer (`tta`: a name, the Predictor's own when None; True is the 10 views)."""
        return self.answer(self.analyze(source, whole_image, tta=tta))

    def explain(self, source, method: str | None = None, layer: str | None = None, target: str = "predicted",
                all_classes: bool = False, progress=None) -> dict:
        """One face's /explain answer: CAM maps (48x48, 0-1) with faithfulness scores (see cams.py)."""
        from .cams import DEFAULT_METHOD, explain_image

        return explain_image(self, source, method or DEFAULT_METHOD, layer, target, all_classes, progress)

