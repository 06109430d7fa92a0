"""Face detectors, as a table: YuNet (the default) and OpenCV's Haar cascade (the fallback).

YuNet (OpenCV model zoo, MIT licence, `models/yunet/`) is a small CNN run by
OpenCV's own `cv2.FaceDetectorYN`. It finds three-quarter views and tilted
heads, and gives five landmarks per face, which `faces.py` uses to level the
eyes. The Haar cascade ships inside the opencv-python wheel; it finds upright,
roughly frontal faces only, gives no landmarks, and boxes more non-faces.

Both run on a copy of the photo scaled to `side` px on its longest side (up or
down) and report boxes in the photo's own pixels, largest first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .checkpoint import REPO_ROOT
from .images import to_gray

DETECT_SIDE = 640  # longest side of the copy a detector sees (see YUNET_SCORE for how it was chosen)
MIN_FACE_FRACTION = 0.04  # smallest face side, as a fraction of the detector copy's shorter side
MIN_FACE_PIXELS = 20  # ... and never under this many pixels of the copy
YUNET_FILE = REPO_ROOT / "models" / "yunet" / "face_detection_yunet_2026may.onnx"
# Chosen on the real photos and validation faces (`python bench/end_to_end.py --split validation --thresholds`):
# the most faces found with no wrong count on a real photo and extra boxes on under 0.5% of synthetic photos.
YUNET_SCORE = 0.5
YUNET_NMS = 0.3
CASCADE_FILE = "haarcascade_frontalface_default.xml"


class DetectorError(RuntimeError):
    """A detector that cannot run here (missing or broken model file); the message says why."""


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def to_json(self) -> dict:
        return {"x": int(self.x), "y": int(self.y), "w": int(self.w), "h": int(self.h)}

    def scaled(self, factor: float) -> "Box":
        return Box(round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor))


@dataclass(frozen=True)
class Detection:
    """One face: its box, the detector's score, and YuNet's five landmarks (x, y) when it has them:
    the subject's right eye, left eye, nose tip, right and left mouth corners."""

    box: Box
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    def scaled(self, factor: float) -> "Detection":
        points = None if self.landmarks is None else tuple((x * factor, y * factor) for x, y in self.landmarks)
        return Detection(self.box.scaled(factor), self.score, points)

    @property
    def eye_angle(self) -> float:
        """Degrees the line from the subject's right eye to the left eye dips below the horizontal
        (image y points down); 0 without landmarks."""
        if self.landmarks is None:
            return 0.0
        (rx, ry), (lx, ly) = self.landmarks[:2]
        return float(np.degrees(np.arctan2(ly - ry, lx - rx)))

    def to_json(self) -> dict:
        out = {"box": self.box.to_json(), "score": round(float(self.score), 4)}
        if self.landmarks is not None:
            out["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks]
        return out


def min_face_side(shape: tuple[int, ...]) -> int:
    """The smallest face side worth classifying in a detector copy of this shape."""
    return max(MIN_FACE_PIXELS, int(MIN_FACE_FRACTION * min(shape[:2])))


class FaceDetector:
    """Base class: scale the photo to `side`, run `_detect` on the copy under a lock (OpenCV's
    detector objects keep per-call state), map the faces back and sort them largest first."""

    key = ""  # the name in DETECTORS and in GEOMETRY (faces.py)
    name = ""  # what the UI and /predict say ran

    def __init__(self, side: int = DETECT_SIDE):
        self.side = side
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """The faces in an RGB (or gray) uint8 photo, seen at `side` px on its longest side."""
        h, w = rgb.shape[:2]
        factor = self.side / max(h, w)
        small = rgb if factor == 1 else cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))),
                                                   interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        min_side = min_face_side(small.shape)
        if min(small.shape[:2]) < min_side:
            return []
        with self._lock:
            found = self._detect(small, min_side)
        found = [d for d in found if max(d.box.w, d.box.h) >= min_side]
        return sorted((d.scaled(1 / factor) for d in found), key=lambda d: -d.box.area)

    def _detect(self, small: np.ndarray, min_side: int) -> list[Detection]:
        raise NotImplementedError


class YuNetDetector(FaceDetector):
    key = "yunet"
    name = "YuNet (OpenCV FaceDetectorYN)"

    def __init__(self, model_file: str | Path | None = None, side: int = DETECT_SIDE, score: float = YUNET_SCORE,
                 nms: float = YUNET_NMS):
        super().__init__(side)
        path = Path(model_file or YUNET_FILE)
        if not path.is_file():
            raise DetectorError(f"the YuNet model file {path} is missing")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score, nms, 5000)
            self._detect(np.zeros((64, 64, 3), np.uint8), 1)  # a broken file often loads, then fails here
        except cv2.error as e:
            raise DetectorError(f"the YuNet model file {path} is broken ({_first_line(e)})") from None

    def _detect(self, small, min_side):
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR) if small.ndim == 3 else cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        return [Detection(Box(*(round(float(v)) for v in r[:4])), float(r[14]),
                          tuple((float(r[4 + 2 * i]), float(r[5 + 2 * i])) for i in range(5)))
                for r in (rows if rows is not None else [])]


class HaarDetector(FaceDetector):
    key = "haar"
    name = f"OpenCV Haar cascade ({CASCADE_FILE})"

    def __init__(self, model_file: str | Path | None = None, side: int = DETECT_SIDE):
        super().__init__(side)
        path = str(model_file or cv2.data.haarcascades + CASCADE_FILE)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise DetectorError(f"OpenCV could not load the cascade {path}")

    def _detect(self, small, min_side):
        gray = cv2.equalizeHist(to_gray(small) if small.ndim == 3 else small)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        return [Detection(Box(*(int(v) for v in b))) for b in (found if len(found) else [])]


DETECTORS = {cls.key: cls for cls in (YuNetDetector, HaarDetector)}
DEFAULT_DETECTOR = "yunet"
FALLBACK_DETECTOR = "haar"


def open_detector(name: str = DEFAULT_DETECTOR, model_file: str | Path | None = None,
                  side: int = DETECT_SIDE) -> tuple[FaceDetector, str]:
    """(detector, note): the named detector, or the Haar cascade with a one-line note saying why
    the named one cannot run here. `model_file` replaces the detector's own model file."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    try:
        return DETECTORS[name](model_file, side), ""
    except DetectorError as e:
        if name == FALLBACK_DETECTOR:
            raise
        return DETECTORS[FALLBACK_DETECTOR](side=side), f"{e}; using the Haar cascade instead"


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(error).__name__
