"""FER2013-style face crops: square, upright, grayscale, 48x48.

FER2013's faces are upright and roughly registered: the square fills most of
the frame (forehead to chin, cheek to cheek). A `Crop` is the square of the
photo a face crop covers: its centre, side and rotation. With landmarks, the
square is turned so that the eyes come out level; its size and centre follow
from the detector's box by `CropGeometry`, a per-detector fact (`GEOMETRY`),
measured by fitting where FER2013 faces pasted into photos are against the
boxes the detector draws on them (`python -m bench.end_to_end --fit-crop`,
validation faces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .detectors import Box, Detection, FaceDetector
from .images import to_gray
from ..core.labels import FACE_SIZE

MAX_FACES = 6  # faces shown with their own probabilities and Grad-CAM
MAX_FACES_CLASSIFIED = 50  # faces classified at most (all get a box and a label)
SMALL_IMAGE_SIDE = 128  # an image this small is taken to be a face crop already


@dataclass(frozen=True)
class CropGeometry:
    """A crop's side, as a multiple of the box's longer side, and its centre's shift from the box
    centre along the face's own up-down axis, as a fraction of the crop side (+ = towards the chin)."""

    scale: float
    down: float = 0.0
    align: bool = True  # level the eyes when the detector gives landmarks


# Medians of the fit on 600 validation faces (`python -m bench.end_to_end --split validation --fit-crop`):
# YuNet scale 0.973 (IQR 0.89-1.07), down -0.004; the cascade 1.044 (IQR 0.98-1.12), down 0.009.
GEOMETRY = {
    "yunet": CropGeometry(scale=0.97, down=0.0),
    "haar": CropGeometry(scale=1.04, down=0.01),
}


@dataclass(frozen=True)
class Crop:
    """The square of a photo a face crop covers: centre (cx, cy), side, and the angle in degrees that
    the face is turned by (rotating the square by it levels the eyes); all in photo pixels."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def matrix(self, size: int) -> np.ndarray:
        """The 2x3 affine map from photo pixels to a size x size crop of this square."""
        m = cv2.getRotationMatrix2D((self.cx, self.cy), self.angle, size / self.side)
        m[:, 2] += (size / 2 - self.cx, size / 2 - self.cy)
        return m

    def bounds(self) -> Box:
        """The axis-aligned box around the (turned) square."""
        t = math.radians(self.angle)
        half = self.side / 2 * (abs(math.cos(t)) + abs(math.sin(t)))
        return Box(math.floor(self.cx - half), math.floor(self.cy - half),
                   math.ceil(2 * half) + 1, math.ceil(2 * half) + 1)

    def scaled(self, factor: float, origin: tuple[float, float] = (0.0, 0.0)) -> "Crop":
        return Crop((self.cx - origin[0]) * factor, (self.cy - origin[1]) * factor, self.side * factor, self.angle)

    def to_json(self) -> dict:
        return {"cx": round(self.cx, 1), "cy": round(self.cy, 1), "side": round(self.side, 1),
                "angle": round(self.angle, 1)}


def face_crop(detection: Detection, geometry: CropGeometry) -> Crop:
    """Where the FER-like crop of a detected face lies."""
    box = detection.box
    side = max(box.w, box.h) * geometry.scale
    angle = detection.eye_angle if geometry.align else 0.0
    t = math.radians(angle)
    cx, cy = box.centre
    shift = geometry.down * side  # along the face's own downward axis
    return Crop(cx - shift * math.sin(t), cy + shift * math.cos(t), side, angle)


def whole_image_box(image: np.ndarray) -> Box:
    """The centred square that 'classify the whole image as one face' uses."""
    h, w = image.shape[:2]
    s = min(h, w)
    return Box((w - s) // 2, (h - s) // 2, s, s)


def whole_image_crop(image: np.ndarray) -> Crop:
    box = whole_image_box(image)
    return Crop(box.x + box.w / 2, box.y + box.h / 2, box.w)


def crop_region(image: np.ndarray, region: Box) -> np.ndarray:
    """Pixels of `region` (which may leave the image), edges replicated outside."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = region.x, region.y, region.x + region.w, region.y + region.h
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return image[y0:y1, x0:x1]


def extract(image: np.ndarray, crop: Crop, size: int = FACE_SIZE) -> np.ndarray:
    """The (size, size) uint8 gray face under `crop`: cut out, shrunk with area averaging (so a large
    face does not alias), turned upright and resized in one affine warp; edges replicated."""
    bounds = crop.bounds()
    patch = crop_region(image, bounds)
    patch = to_gray(patch) if patch.ndim == 3 else patch
    local = crop.scaled(1.0, (bounds.x, bounds.y))
    shrink = min(1.0, 2 * size / crop.side)
    if shrink < 1:
        patch = cv2.resize(patch, (max(1, round(patch.shape[1] * shrink)), max(1, round(patch.shape[0] * shrink))),
                           interpolation=cv2.INTER_AREA)
        local = local.scaled(shrink)
    face = cv2.warpAffine(np.ascontiguousarray(patch), local.matrix(size), (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(face, dtype=np.uint8)


def reading_order(detections: list[Detection]) -> list[Detection]:
    """Faces numbered left to right (then top to bottom), as a reader counts people in a photo."""
    return sorted(detections, key=lambda d: (d.box.centre[0], d.box.y))


def detector_crop(detection: Detection, detector: FaceDetector) -> Crop:
    """The crop of a face found by `detector`, with that detector's geometry."""
    return face_crop(detection, GEOMETRY[detector.model])


def is_face_crop(image: np.ndarray) -> bool:
    """An image this small is taken to be a face crop already, and classified whole: a detector would
    find the face in it and crop it once more, tighter than FER2013 frames its faces."""
    return max(image.shape[:2]) <= SMALL_IMAGE_SIDE


def single_face(rgb: np.ndarray, detector: FaceDetector) -> tuple[np.ndarray, str]:
    """One face for the Grad-CAM explorer: a small image is the face; else the largest detected face,
    else the whole image (centred square). Returns (48x48 uint8, how it was chosen)."""
    if is_face_crop(rgb):
        return extract(rgb, whole_image_crop(rgb)), "the whole image (a face crop)"
    found = detector.detect(rgb)
    if found:
        return extract(rgb, detector_crop(found[0], detector)), (
            f"the largest of {len(found)} detected faces" if len(found) > 1 else "the detected face")
    return extract(rgb, whole_image_crop(rgb)), "the whole image (no face detected)"
