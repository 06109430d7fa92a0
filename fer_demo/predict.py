"""Prediction: the batched forward pass (`predict_probs`, which serving, evaluation and training share),
and a Predictor that holds the model and the face detector once and turns photos into JSON-friendly
face predictions: detect, align and crop like FER2013, classify (with test-time augmentation)."""

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
from .detectors import DEFAULT_DETECTOR, DETECT_SIDE, Box, Detection, open_detector
from .faces import (MAX_FACES, MAX_FACES_CLASSIFIED, Crop, detector_crop, extract, is_face_crop,
                    reading_order, whole_image_box, whole_image_crop)
from .images import LoadedImage, load_image
from .labels import FACE_SIZE, NUM_CLASSES, PROB_DIGITS, rounded_label_probs
from .model import eval_mode, stage_map_sizes
from .transforms import FULL_TTA, NO_TTA, TTA, to_model_input, tta_name

# Chosen on validation faces, end to end in synthetic photos (`python bench/end_to_end.py --split validation
# --tta-sweep --detectors yunet`: 10 views 0.686 / 0.685 upright / turned, flip 0.686 / 0.658, none 0.679 / 0.671)
# and directly (0.6854, 0.6812, 0.6793): the shifted views also absorb a crop's misalignment.
DEFAULT_TTA = FULL_TTA
WHOLE_IMAGE = "whole image"


def autocast_for(device: torch.device | str):
    """bf16 autocast where the hardware runs it natively; otherwise a no-op context."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if device.type == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


@torch.inference_mode()
def predict_probs(model, faces: torch.Tensor, config: dict, tta: bool | str = False,
                  batch_size: int = 128, progress=None) -> torch.Tensor:
    """Softmax probabilities (N, 7) for uint8 faces (N, 48, 48); `tta` (a `transforms.TTA` name, or
    True for the evaluator's 10 views) averages the softmax over its views. Runs under `autocast_for`.

    `model` is a torch module or any callable from input to logits with a `device`
    (backends.OnnxClassifier). The default batch of 128 faces, which evaluation and training use, ran
    faster on CPU than 512 (it stays in cache). `Predictor.classify` passes all of its faces as one batch
    instead: a photo's faces, or the 512 at a time that the Test set tab (testset.py) hands it.
    """
    device = getattr(model, "device", None) or next(model.parameters()).device
    with eval_mode(model):
        return _predict_batches(model, faces, config, tta, batch_size, progress, device)


def _predict_batches(model, faces, config, tta, batch_size, progress, device) -> torch.Tensor:
    out = []
    batches = range(0, len(faces), batch_size)
    for start in (progress(batches) if progress else batches):
        x = to_model_input(faces[start:start + batch_size].to(device), config["input_size"],
                           config["mean"], config["std"]).contiguous(memory_format=torch.channels_last)
        views = TTA[tta_name(tta)].make(x)
        with autocast_for(device):
            logits = model(torch.cat(views))
        probs = logits.float().softmax(-1).view(len(views), len(x), -1).mean(0)
        out.append(probs.cpu())
    return torch.cat(out) if out else torch.empty(0, NUM_CLASSES)


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
    """One photo's faces and their predictions; `to_json()` is what the API returns."""

    image: LoadedImage
    faces: list[Face]
    labels: tuple[str, ...]
    n_detected: int
    whole_image: bool
    detector: str
    tta: str
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def no_face(self) -> bool:
        return not self.faces

    def message(self) -> str:
        if self.no_face:
            return ("No face found. Tick \"Classify the whole image as one face\" to classify the image anyway.")
        if self.whole_image:
            return " ".join(["Classified the whole image (its centred square) as one face.", *self.notes])
        text = f"{self.n_detected} face{'s' * (self.n_detected != 1)} found."
        return " ".join([text, *self.notes])

    def caption(self, face: Face) -> str:
        """The label drawn beside a face's box: "2 happy 87%"."""
        return f"{face.index} {self.labels[int(face.probs.argmax())]} {face.probs.max():.0%}"

    def detailed(self, limit: int = MAX_FACES) -> list[Face]:
        """The faces that get probabilities and Grad-CAM in the UI: the `limit` largest, in reading order."""
        largest = sorted(self.faces, key=lambda f: -f.box.area)[:limit]
        return sorted(largest, key=lambda f: f.index)

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
            "message": self.message(),
            "seconds": round(self.seconds, 4),
        }


class Predictor:
    """Loads a checkpoint and a face detector once; classifies faces in batches. Safe to share between threads.

    Plain predictions use `classifier` (the model, or its int8 ONNX copy) under a lock. Grad-CAM gets its own copy
    (`cam_model`, with its own lock, see explain.py), so that a slow explanation
    never holds up predictions and CAM hooks never see a prediction's forward pass.
    `detector` falls back to the Haar cascade when YuNet's model file is missing or broken;
    `notes` says so, in one line each.
    """

    def __init__(self, checkpoint: str | Path = ckpt.SHIPPED_CHECKPOINT, device: str = "cpu",
                 backend: str = "auto", detector: str = DEFAULT_DETECTOR, detector_model: str | Path | None = None,
                 tta: str = DEFAULT_TTA, detect_side: int = DETECT_SIDE):
        self.folder = ckpt.resolve(checkpoint)
        self.model, self.config = ckpt.load_model(self.folder, device)
        # what classify() runs: the model itself, or its int8 ONNX copy (see backends.py)
        self.classifier, self.backend, self.backend_note = load_classifier(self.folder, self.model, backend, device)
        self.detector, self.detector_note = open_detector(detector, detector_model, detect_side)
        self.tta = tta_name(tta)
        self.labels = tuple(self.config["labels"])
        self.input_size = int(self.config["input_size"])
        self.lock = threading.Lock()
        self.cam_lock = threading.Lock()  # held for a whole explanation (see explain.py)
        self._cam_init_lock = threading.Lock()
        self._cam_model = None
        self._last_analysis = None
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
        tta = self._tta(tta)
        analysis = self._analyze(source, whole_image, max_faces, tta)
        key = _file_key(source, whole_image, max_faces, tta)
        if key is not None:
            self._last_analysis = (key, analysis)
        return analysis

    def recall(self, source, whole_image: bool = False, max_faces: int = MAX_FACES_CLASSIFIED,
               tta: str | None = None) -> Analysis:
        """The last `analyze` answer when it was for this same file and options, else a fresh one.

        The UI draws its result right after `/predict` answered; this spares it decoding,
        detecting and classifying the same photo a second time.
        """
        tta = self._tta(tta)
        key, last = _file_key(source, whole_image, max_faces, tta), self._last_analysis
        if key is not None and last is not None and last[0] == key:
            return last[1]
        return self.analyze(source, whole_image, max_faces, tta)

    def _tta(self, tta: str | None) -> str:
        """A request's TTA: the named one, or the Predictor's own when none is named."""
        return tta_name(self.tta if tta is None else tta)

    def _analyze(self, source, whole_image: bool, max_faces: int, tta: str) -> Analysis:
        start = time.perf_counter()
        image = source if isinstance(source, LoadedImage) else load_image(source)
        rgb = image.rgb
        notes: list[str] = []
        if not whole_image and is_face_crop(rgb):
            whole_image = True
            notes.append("The image is small, so it was taken as one face crop.")
        found = [] if whole_image else self.detector.detect(rgb)
        n_detected = len(found)
        if whole_image:
            detections, crops = [Detection(whole_image_box(rgb))], [whole_image_crop(rgb)]
        else:
            if n_detected > max_faces:
                notes.append(f"Classified the {max_faces} largest.")
            detections = reading_order(found[:max_faces])
            crops = [detector_crop(d, self.detector) for d in detections]
            if len(detections) > MAX_FACES:
                notes.append(f"Probabilities and Grad-CAM are shown for the {MAX_FACES} largest; "
                             "every face gets a box and its top label.")
        faces48 = np.stack([extract(rgb, c) for c in crops]) if crops else np.zeros((0, FACE_SIZE, FACE_SIZE), np.uint8)
        probs = self.classify(faces48, tta)
        faces = [Face(i + 1, d, c, f, p) for i, (d, c, f, p) in enumerate(zip(detections, crops, faces48, probs))]
        return Analysis(image, faces, self.labels, n_detected, whole_image, self.detector.name, tta,
                        time.perf_counter() - start, notes)

    def predict(self, source, whole_image: bool = False, tta: str | None = None) -> dict:
        """The `/predict` answer for one photo (see `Analysis.to_json`)."""
        return {**self.analyze(source, whole_image, tta=tta).to_json(), "backend": self.backend}


def _file_key(source, *options):
    """(path, size, mtime, options) for a file path; None for anything else (arrays, bytes, images)."""
    if not isinstance(source, (str, Path)):
        return None
    try:
        st = os.stat(source)
    except OSError:
        return None
    return (str(source), st.st_size, st.st_mtime_ns, *options)
