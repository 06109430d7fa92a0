"""Face detectors, as a table: YuNet (the default) and OpenCV's Haar cascade (the fallback).

YuNet (OpenCV model zoo, MIT licence, `fer_demo/assets/yunet/`) is a small CNN; its ONNX
file runs in ONNX Runtime (twice as fast as OpenCV's DNN module on the same CPU,
README "Speed") and its outputs are decoded as `cv2.FaceDetectorYN` decodes them
(`decode_yunet`; a test holds the two to the same faces). It finds three-quarter views and tilted
heads, and gives five landmarks per face, which `faces.py` uses to level the
eyes. The Haar cascade ships inside the opencv-python wheel; it finds upright,
roughly frontal faces only, gives no landmarks, and boxes more non-faces.

Both run on a copy of the photo scaled to `side` px on its longest side (up or
down) and report boxes in the photo's own pixels, largest first. A box is kept
only if it passes every plausibility rule in `RULES` (a box mostly inside the
photo and five landmarks in a face's order and proportions, unless YuNet is
sure of the box; a small box only with a high score): YuNet scores some
face-like texture (a painting, a cat, gravel, a wall) as high as many small or
blurry faces, but the box it draws there runs off the photo, is small, or has
landmarks where no face has them. Then the focus rule (`in_focus`): a box with far less fine detail than
the sharpest face in the photo is a blurred person, a crowd or painted scenery
behind the subject, whose expression nobody can read (docs/detection.md).
"""

from __future__ import annotations

import math
import threading
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from .images import to_gray
from ..core.onnx_cpu import cpu_session
from ..core.paths import YUNET_FILE

DETECT_SIDE = 640  # longest side of the copy a detector sees (larger finds more, slower: docs/detection.md)
MIN_FACE_FRACTION = 0.04  # smallest face side, as a fraction of the detector copy's shorter side
MIN_FACE_PIXELS = 20  # ... and never under this many pixels of the copy
# Chosen together with the plausibility rules below (`python -m bench.end_to_end --split validation --faces 300
# --thresholds`): the most faces found on synthetic photos with no box on any of the 84 views of the 12 face-free
# photos in tests/negatives and the right count on every real photo in tests/photos and examples/photos. 0.5 with
# the rules: 92.7% of upright validation faces found (as 0.5 without them), 0 boxes on the negatives (12 without
# the rules); without the rules it takes 0.75, which finds 90.3%. See docs/detection.md.
YUNET_SCORE = 0.5
# Non-maximum suppression's overlap (IoU) limit: 0.2 to 0.5 give the same faces and extra boxes on that sweep;
# 0.6 lets duplicate boxes through (extra boxes 2 -> 6 on noise backgrounds, 3 -> 6 on textures).
YUNET_NMS = 0.3
YUNET_TOP_K = 5000  # candidates kept for suppression (cv2.FaceDetectorYN's default)
YUNET_THREADS = 1  # one photo on one core: faster than two under load, and concurrent requests get a core each
YUNET_STRIDES = (8, 16, 32)  # the feature maps' strides; the input is padded to a multiple of the largest
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
    """One face: its box, the detector's score, YuNet's five landmarks (x, y) when it has them (the
    subject's right eye, left eye, nose tip, right and left mouth corners), and its focus once measured."""

    box: Box
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None
    focus: float | None = None  # fine detail in the box (`focus`), measured on the photo; None: not measured

    def scaled(self, factor: float) -> "Detection":
        points = None if self.landmarks is None else tuple((x * factor, y * factor) for x, y in self.landmarks)
        return Detection(self.box.scaled(factor), self.score, points, self.focus)

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


# Plausibility rules: each takes a detection and the shape of the image it was found in, and says
# whether a face could look like that. Thresholds chosen with `python -m bench.end_to_end --split
# validation --thresholds` (see YUNET_SCORE); the landmark rules pass a detection without landmarks.
MIN_INSIDE = 0.9  # smallest fraction of a box's area that lies inside the image (0.8 still keeps a cat's head)
MAX_TILT = 60.0  # degrees the eye line may turn from level (at 90 and past, right and left swap)
EYE_SPAN = (0.15, 0.7)  # distance between the eyes, as a fraction of the box's width (0.2 drops turned faces)
SMALL_FACE_FRACTION = 0.15  # a box whose side is under this fraction of the image's shorter side is small...
SMALL_FACE_SCORE = 0.8  # ... and needs at least this score
# The box-inside and landmark rules judge only boxes under this score: on a real face YuNet is sure of, a hidden
# eye (behind a camera, past the photo's edge) moves the box and landmarks without making it less of a face (faces
# cut through an eye by the photo's edge score 0.85-0.92). Texture scores under it (up to 0.72 on the negatives,
# 0.83 on a blurred crowd, which the focus rule removes). From 0.8 to 0.9 it changes nothing on the sweep's sets.
SURE_SCORE = 0.85
# The focus rule (`in_focus`): a box is kept when its focus is at least FOCUS_RATIO x the sharpest box's in the
# same photo. Focus (`focus`): the variance of the Laplacian of the box resampled to (at most) FOCUS_SIDE square,
# in gray. Relative, not absolute: a webcam frame or a small phone photo is soft all over, and its faces must stay.
# Chosen with `python -m bench.real_photos --sweep` (docs/detection.md): 0.05 already clears every extra box on the
# real photos (blurred people at 0.006-0.040 of their photo's sharp face); 0.1 doubles that margin and costs 0.4-1.0
# point of the validation faces pasted into synthetic photos (FER2013's 48 px faces upscaled, blurry by
# construction); 0.15 costs 2.0-7.4 points.
FOCUS_SIDE = 96
FOCUS_RATIO = 0.1


def sure(d: Detection, sure_score: float | None = None) -> bool:
    """YuNet is sure of this box: its score is at least `sure_score` (default SURE_SCORE). The cascade's boxes
    (no landmarks, no real score) never are."""
    return d.landmarks is not None and d.score >= (SURE_SCORE if sure_score is None else sure_score)


def inside_fraction(box: Box, shape: tuple[int, ...]) -> float:
    """The fraction of the box's area that lies inside an image of this shape."""
    h, w = shape[:2]
    iw = max(0, min(box.x + box.w, w) - max(box.x, 0))
    ih = max(0, min(box.y + box.h, h) - max(box.y, 0))
    return iw * ih / box.area if box.area > 0 else 0.0


def mostly_inside(d: Detection, shape: tuple[int, ...], min_inside: float | None = None,
                  sure_score: float | None = None) -> bool:
    """At least `min_inside` (default MIN_INSIDE) of the box lies inside the image. A real face cut by
    the left or top edge keeps its box inside (YuNet boxes the part it sees); the large boxes YuNet
    draws on face-like texture at the photo's border (a painting, a cat's head) reach past it. A box
    YuNet is sure of (`sure`) passes: a face cut through an eye by the right or bottom edge, where
    YuNet's input is padded, gets a box reaching past the edge at 0.85-0.92."""
    return sure(d, sure_score) or inside_fraction(d.box, shape) >= (MIN_INSIDE if min_inside is None else min_inside)


def face_axes(d: Detection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eye midpoint, unit vector from the subject's right eye to the left eye, unit vector down the
    face): the face's own frame, from its eye landmarks."""
    points = np.asarray(d.landmarks, dtype=float)
    across = points[1] - points[0]
    across = across / max(float(np.hypot(*across)), 1e-6)
    down = np.array([-across[1], across[0]])  # `across` turned a quarter clockwise (image y points down)
    return (points[0] + points[1]) / 2, across, down


def landmarks_in_order(d: Detection, shape: tuple[int, ...] = (), sure_score: float | None = None) -> bool:
    """The five landmarks are in a face's order: the subject's right eye left of the left eye (the eye
    line within MAX_TILT of level), the right mouth corner left of the left one along the eye line,
    the nose tip below the eye line, and the mouth corners below the nose, in the face's own frame.
    A box YuNet is sure of (`sure`) passes."""
    if d.landmarks is None or sure(d, sure_score):
        return True
    if abs(d.eye_angle) > MAX_TILT:
        return False
    centre, across, down = face_axes(d)
    points = np.asarray(d.landmarks, dtype=float) - centre
    nose = points[2] @ down
    mouth = min(points[3] @ down, points[4] @ down)
    return bool((points[4] - points[3]) @ across > 0 and nose > 0 and mouth > nose)


def eye_span_plausible(d: Detection, shape: tuple[int, ...] = (), limits: tuple[float, float] | None = None,
                       sure_score: float | None = None) -> bool:
    """The eyes are `limits` (default EYE_SPAN) of the box's width apart: about 0.45 on a frontal face,
    less on a turned one; far closer or wider and the box does not frame the face the eyes belong to.
    A box YuNet is sure of (`sure`) passes: a face with one eye hidden is still a face."""
    if d.landmarks is None or sure(d, sure_score):
        return True
    low, high = EYE_SPAN if limits is None else limits
    (rx, ry), (lx, ly) = d.landmarks[:2]
    span = math.hypot(lx - rx, ly - ry) / max(d.box.w, 1)
    return low <= span <= high


def small_box_confident(d: Detection, shape: tuple[int, ...], fraction: float | None = None,
                        score: float | None = None) -> bool:
    """A small box (side under `fraction`, default SMALL_FACE_FRACTION, of the image's shorter side)
    needs a score of at least `score` (default SMALL_FACE_SCORE). Grain in gravel, stars in the sky and
    blotches on a wall get boxes of a few percent of the photo at scores up to about 0.7; real faces
    that small in sharp photos score 0.9 and more. (The blurry, upscaled FER2013 faces of the sweep's
    small-face photos score lower: this rule costs 11 points of those found, docs/detection.md.)"""
    fraction = SMALL_FACE_FRACTION if fraction is None else fraction
    score = SMALL_FACE_SCORE if score is None else score
    return max(d.box.w, d.box.h) >= fraction * min(shape[:2]) or d.score >= score


# name -> rule; a detection is kept when every rule says True
RULES = {
    "mostly_inside": mostly_inside,
    "landmarks_in_order": landmarks_in_order,
    "eye_span": eye_span_plausible,
    "small_box_confident": small_box_confident,
}


def focus(image: np.ndarray, box: Box) -> float:
    """Fine detail in a box: the variance of the Laplacian of its part inside the RGB (or gray) uint8 image,
    in gray, area-resampled to a square of FOCUS_SIDE px, or of its own shorter side when that is shorter
    (enlarging a small face would blur it: a 50 px face in a group photo measured 180 enlarged to 96 px, 1,350
    at its own size, beside 1,670 for a 110 px one). Sharp faces measure 200-1,850 on the real-photo benchmark;
    blurred people behind the subject, a crowd, painted scenery 7-92 (docs/detection.md)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = max(box.x, 0), max(box.y, 0), min(box.x + box.w, w), min(box.y + box.h, h)
    if x1 <= x0 or y1 <= y0:
        return 0.0
    patch = image[y0:y1, x0:x1]
    patch = to_gray(patch) if patch.ndim == 3 else patch
    side = min(FOCUS_SIDE, *patch.shape[:2])
    patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(patch, cv2.CV_64F).var())


def in_focus(found: list[Detection], ratio: float | None = None) -> list[Detection]:
    """The detections whose focus is at least `ratio` (default FOCUS_RATIO) x the sharpest one's: the faces
    in focus in a photo, without the blurred people, crowds and painted scenery behind them. One box alone
    (a soft webcam frame) is always kept; detections without a measured focus pass."""
    ratio = FOCUS_RATIO if ratio is None else ratio
    measured = [d.focus for d in found if d.focus is not None]
    floor = ratio * max(measured, default=0.0)
    return [d for d in found if d.focus is None or d.focus >= floor]


def failed_rules(d: Detection, shape: tuple[int, ...], rules=None) -> list[str]:
    """The names of the rules (default: all of RULES) that reject this detection."""
    return [name for name, rule in (RULES if rules is None else rules).items() if not rule(d, shape)]


def plausible(d: Detection, shape: tuple[int, ...], rules=None) -> bool:
    """True when no rule rejects the detection (found in an image of this shape)."""
    return not failed_rules(d, shape, rules)


class FaceDetector:
    """Base class: scale the photo to `side`, run `_detect` on the copy (under a lock unless `concurrent`:
    OpenCV's detector objects keep per-call state), map the faces back and sort them largest first."""

    key = ""  # the name in DETECTORS
    model = ""  # the model whose boxes it draws: the key of its crop geometry (faces.GEOMETRY)
    name = ""  # what the UI and /predict say ran
    concurrent = False  # `_detect` may run in several threads at once

    def __init__(self, side: int = DETECT_SIDE, rules: dict | None = None, focus_ratio: float | None = None):
        self.side = side
        self.rules = RULES if rules is None else rules  # {} and focus_ratio=0 keep every box the detector draws
        self.focus_ratio = FOCUS_RATIO if focus_ratio is None else focus_ratio
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """The faces in an RGB (or gray) uint8 photo, seen at `side` px on its longest side, that pass
        the plausibility rules and the focus rule (focus measured on the photo itself)."""
        h, w = rgb.shape[:2]
        factor = self.side / max(h, w)
        small = rgb if factor == 1 else cv2.resize(rgb, (max(1, round(w * factor)), max(1, round(h * factor))),
                                                   interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        min_side = min_face_side(small.shape)
        if min(small.shape[:2]) < min_side:
            return []
        with nullcontext() if self.concurrent else self._lock:
            found = self._detect(small, min_side)
        found = [d.scaled(1 / factor) for d in found
                 if max(d.box.w, d.box.h) >= min_side and plausible(d, small.shape, self.rules)]
        found = in_focus([replace(d, focus=focus(rgb, d.box)) for d in found], self.focus_ratio)
        return sorted(found, key=lambda d: -d.box.area)

    def _detect(self, small: np.ndarray, min_side: int) -> list[Detection]:
        raise NotImplementedError


class YuNetDetector(FaceDetector):
    key = model = "yunet"
    name = "YuNet (ONNX Runtime)"
    concurrent = True  # an InferenceSession runs concurrent calls safely

    def __init__(self, model_file: str | Path | None = None, side: int = DETECT_SIDE, score: float = YUNET_SCORE,
                 nms: float = YUNET_NMS, rules: dict | None = None, focus_ratio: float | None = None):
        super().__init__(side, rules, focus_ratio)
        self.score, self.nms = score, nms
        path = Path(model_file or YUNET_FILE)
        if not path.is_file():
            raise DetectorError(f"the YuNet model file {path} is missing")
        try:
            self._open(path)
            self._detect(np.zeros((64, 64, 3), np.uint8), 1)  # a file may load and still not be YuNet
        except ImportError:
            raise DetectorError("onnxruntime, which runs YuNet, is not installed") from None
        except Exception as e:  # onnxruntime and OpenCV raise their own types for a broken or foreign file
            raise DetectorError(f"the YuNet model file {path} is broken ({_first_line(e)})") from None

    def _open(self, path: Path) -> None:
        self._session = cpu_session(path, YUNET_THREADS)
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]

    def _detect(self, small, min_side):
        blob, pad_w, pad_h = yunet_blob(small)
        outputs = dict(zip(self._outputs, self._session.run(self._outputs, {self._input: blob})))
        return decode_yunet(outputs, pad_w, pad_h, self.score, self.nms)


class YuNetOpenCvDetector(YuNetDetector):
    """The same YuNet file through OpenCV's DNN module (cv2.FaceDetectorYN), which decodes its outputs itself:
    the reference `decode_yunet` is held to (tests/test_detect_yunet.py), about half as fast (bench/request_cost.py)."""

    key = "yunet-opencv"
    name = "YuNet (OpenCV FaceDetectorYN)"
    concurrent = False

    def _open(self, path: Path) -> None:
        self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), self.score, self.nms, YUNET_TOP_K)

    def _detect(self, small, min_side):
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR) if small.ndim == 3 else cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        self._net.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = self._net.detect(bgr)
        return [Detection(Box(*(round(float(v)) for v in r[:4])), float(r[14]),
                          tuple((float(r[4 + 2 * i]), float(r[5 + 2 * i])) for i in range(5)))
                for r in (rows if rows is not None else [])]


def yunet_blob(rgb: np.ndarray) -> tuple[np.ndarray, int, int]:
    """YuNet's input for an RGB (or gray) uint8 image: BGR float32 (1, 3, H, W), zero-padded right and below to
    a multiple of the largest stride, as cv2.FaceDetectorYN pads it; and the padded width and height."""
    h, w = rgb.shape[:2]
    step = max(YUNET_STRIDES)
    pad_w, pad_h = -(-w // step) * step, -(-h // step) * step
    bgr = rgb[..., ::-1] if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
    blob = np.zeros((1, 3, pad_h, pad_w), np.float32)
    blob[0, :, :h, :w] = bgr.transpose(2, 0, 1)
    return blob, pad_w, pad_h


def decode_yunet(outputs: dict[str, np.ndarray], pad_w: int, pad_h: int, score: float = YUNET_SCORE,
                 nms: float = YUNET_NMS, top_k: int = YUNET_TOP_K) -> list[Detection]:
    """Faces from YuNet's outputs (cls_S, obj_S, bbox_S, kps_S for each stride S), as cv2.FaceDetectorYN
    decodes them: score sqrt(cls x obj), box centre and landmarks as offsets from each cell, box size
    exp(.) x stride; then its non-maximum suppression (cv2.dnn.NMSBoxes on whole-pixel boxes)."""
    boxes, scores, points = [], [], []
    for stride in YUNET_STRIDES:
        cols, rows = pad_w // stride, pad_h // stride
        cells = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), axis=-1).reshape(-1, 2).astype(np.float32)
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0, 1)
        keep = np.flatnonzero(np.sqrt(cls * obj) >= score)
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
        cell = cells[keep]
        size = np.exp(bbox[:, 2:]) * stride
        boxes.append(np.concatenate([(cell + bbox[:, :2]) * stride - size / 2, size], axis=1))
        scores.append(np.sqrt(cls[keep] * obj[keep]))
        points.append((kps + cell[:, None, :]) * stride)
    boxes, scores, points = np.concatenate(boxes), np.concatenate(scores), np.concatenate(points)
    if not len(scores):
        return []
    kept = cv2.dnn.NMSBoxes(boxes.astype(np.int32).tolist(), scores.tolist(), score, nms, top_k=top_k)
    return [Detection(Box(*(round(float(v)) for v in boxes[i])), float(scores[i]),
                      tuple((float(x), float(y)) for x, y in points[i]))
            for i in np.asarray(kept, dtype=int).ravel()]


class HaarDetector(FaceDetector):
    key = model = "haar"
    name = f"OpenCV Haar cascade ({CASCADE_FILE})"

    def __init__(self, model_file: str | Path | None = None, side: int = DETECT_SIDE, rules: dict | None = None,
                 focus_ratio: float | None = None):
        super().__init__(side, rules, focus_ratio)
        path = str(model_file or cv2.data.haarcascades + CASCADE_FILE)
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise DetectorError(f"OpenCV could not load the cascade {path}")

    def _detect(self, small, min_side):
        gray = cv2.equalizeHist(to_gray(small) if small.ndim == 3 else small)
        found = self._cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side))
        return [Detection(Box(*(int(v) for v in b))) for b in (found if len(found) else [])]


DETECTORS = {cls.key: cls for cls in (YuNetDetector, YuNetOpenCvDetector, HaarDetector)}
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
