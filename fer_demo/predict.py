"""A Predictor that holds the model once and turns photos into JSON-friendly face predictions."""

from __future__ import annotations

import copy
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint as ckpt
from .backends import load_classifier
from .evaluation import predict_probs
from .faces import (DETECTOR_NAME, FACE_SIZE, MAX_FACES, MAX_FACES_CLASSIFIED, SMALL_IMAGE_SIDE, Box, crop_box, crop_region, detect_faces,
                    reading_order, to_face, whole_image_region)
from .images import LoadedImage, load_image
from .model import stage_map_sizes


@dataclass
class Face:
    index: int  # 1-based, in reading order
    box: Box  # detected box, in the loaded image's pixels
    region: Box  # the square the crop covers
    face: np.ndarray  # (48, 48) uint8
    probs: np.ndarray  # (7,)


@dataclass
class Analysis:
    """One photo's faces and their predictions; `to_json()` is what the API returns."""

    image: LoadedImage
    faces: list[Face]
    labels: tuple[str, ...]
    n_detected: int
    whole_image: bool
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def no_face(self) -> bool:
        return not self.faces

    def message(self) -> str:
        if self.no_face:
            return ("No face found. The detector looks for upright, roughly frontal faces; tick "
                    "\"Classify the whole image as one face\" to classify the image anyway.")
        if self.whole_image:
            return " ".join(["Classified the whole image (its centred square) as one face.", *self.notes])
        text = f"{self.n_detected} face{'s' * (self.n_detected != 1)} found."
        return " ".join([text, *self.notes])

    def detailed(self, limit: int = MAX_FACES) -> list[Face]:
        """The faces that get probabilities and Grad-CAM in the UI: the `limit` largest, in reading order."""
        largest = sorted(self.faces, key=lambda f: -f.box.area)[:limit]
        return sorted(largest, key=lambda f: f.index)

    def to_json(self) -> dict:
        inv = 1.0 / self.image.scale
        return {
            "faces": [{
                "index": f.index,
                "box": f.box.scaled(inv).to_json(),
                "label": self.labels[int(f.probs.argmax())],
                "confidence": round(float(f.probs.max()), 6),
                "probabilities": {name: round(float(p), 6) for name, p in zip(self.labels, f.probs)},
            } for f in self.faces],
            "n_faces": len(self.faces),
            "n_detected": self.n_detected,
            "no_face": self.no_face,
            "whole_image": self.whole_image,
            "image_size": {"width": self.image.original_size[0], "height": self.image.original_size[1]},
            "detector": "whole image" if self.whole_image else DETECTOR_NAME,
            "message": self.message(),
            "seconds": round(self.seconds, 4),
        }


class Predictor:
    """Loads a checkpoint once; classifies faces in batches. Safe to share between threads.

    Plain predictions use `classifier` (the model, or its int8 ONNX copy) under a lock. Grad-CAM gets its own copy
    (`cam_model`, with its own lock, see explain.py), so that a slow explanation
    never holds up predictions and CAM hooks never see a prediction's forward pass.
    """

    def __init__(self, checkpoint: str | Path = ckpt.SHIPPED_CHECKPOINT, device: str = "cpu",
                 backend: str = "auto"):
        self.folder = ckpt.resolve(checkpoint)
        self.model, self.config = ckpt.load_model(self.folder, device)
        # what classify() runs: the model itself, or its int8 ONNX copy (see backends.py)
        self.classifier, self.backend, self.backend_note = load_classifier(self.folder, self.model, backend, device)
        self.device = torch.device(device)
        self.labels = tuple(self.config["labels"])
        self.input_size = int(self.config["input_size"])
        self.lock = threading.Lock()
        self.cam_lock = threading.Lock()  # held for a whole explanation (see explain.py)
        self._cam_init_lock = threading.Lock()
        self._cam_model = None
        self._last_analysis = None
        self.map_sizes = stage_map_sizes(self.model, self.input_size)

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

    def classify(self, faces: np.ndarray | torch.Tensor) -> np.ndarray:
        """uint8 faces (N, 48, 48) -> probabilities (N, 7), in one batched forward pass."""
        faces = faces.to(torch.uint8) if isinstance(faces, torch.Tensor) else \
            torch.from_numpy(np.array(faces, dtype=np.uint8))  # a copy: inputs may be read-only
        if faces.dim() == 2:
            faces = faces.unsqueeze(0)
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        with self.lock, torch.inference_mode():
            probs = predict_probs(self.classifier, faces, self.config, batch_size=max(1, len(faces)))
        return probs.float().numpy()

    def analyze(self, source, whole_image: bool = False, max_faces: int = MAX_FACES_CLASSIFIED) -> Analysis:
        """Load a photo, find its faces (or take the whole image), crop them like FER2013 and classify."""
        analysis = self._analyze(source, whole_image, max_faces)
        key = _file_key(source, whole_image, max_faces)
        if key is not None:
            self._last_analysis = (key, analysis)
        return analysis

    def recall(self, source, whole_image: bool = False, max_faces: int = MAX_FACES_CLASSIFIED) -> Analysis:
        """The last `analyze` answer when it was for this same file and options, else a fresh one.

        The UI draws its result right after `/predict` answered; this spares it decoding,
        detecting and classifying the same photo a second time.
        """
        key, last = _file_key(source, whole_image, max_faces), self._last_analysis
        if key is not None and last is not None and last[0] == key:
            return last[1]
        return self.analyze(source, whole_image, max_faces)

    def _analyze(self, source, whole_image: bool, max_faces: int) -> Analysis:
        start = time.perf_counter()
        image = source if isinstance(source, LoadedImage) else load_image(source)
        rgb = image.rgb
        notes: list[str] = []
        found = [] if whole_image else detect_faces(rgb)
        n_detected = len(found)
        if not found and not whole_image and max(rgb.shape[:2]) <= SMALL_IMAGE_SIDE:
            whole_image = True  # a small image without a detectable face: most likely a face crop already
            notes.append("The image is small, so it was taken as one face crop.")
        if whole_image:
            boxes, regions = [whole_image_region(rgb)], [whole_image_region(rgb)]
        else:
            if n_detected > max_faces:
                notes.append(f"Classified the {max_faces} largest.")
            boxes = reading_order(found[:max_faces])
            regions = [crop_box(b) for b in boxes]
            if len(boxes) > MAX_FACES:
                notes.append(f"Probabilities and Grad-CAM are shown for the {MAX_FACES} largest; "
                             "every face gets a box and its top label.")
        crops = np.stack([to_face(crop_region(rgb, r)) for r in regions]) if boxes else \
            np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8)
        probs = self.classify(crops)
        faces = [Face(i + 1, b, r, c, p) for i, (b, r, c, p) in enumerate(zip(boxes, regions, crops, probs))]
        return Analysis(image, faces, self.labels, n_detected, whole_image, time.perf_counter() - start, notes)

    def predict(self, source, whole_image: bool = False) -> dict:
        """The `/predict` answer for one photo (see `Analysis.to_json`)."""
        return {**self.analyze(source, whole_image).to_json(), "backend": self.backend}


def _file_key(source, whole_image: bool, max_faces: int):
    """(path, size, mtime, options) for a file path; None for anything else (arrays, bytes, images)."""
    if not isinstance(source, (str, Path)):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    return str(source), st.st_size, st.st_mtime_ns, bool(whole_image), max_faces
