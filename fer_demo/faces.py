"""Face detection and FER2013-style face crops.

Detector: OpenCV's Viola-Jones Haar cascade `haarcascade_frontalface_default.xml`,
which ships inside the opencv-python wheel (works offline, a few ms per photo).
It finds upright, roughly frontal faces; profiles and strongly tilted heads are
often missed. It runs on a grayscale copy downscaled to `DETECT_SIDE`.

Crop: FER2013's faces are square, fill most of the frame (forehead to chin,
cheek to cheek, a little hair) and are 48x48 grayscale. We take the square
around the detected box, grown by `FACE_MARGIN` of its side on every side,
pad with edge pixels where it leaves the photo, convert to gray and resize.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from .images import to_gray

FACE_SIZE = 48
FACE_MARGIN = 0.12  # of the detected box's side, added on each side
DETECT_SIDE = 640  # longest side of the copy the detector sees
MIN_FACE_FRACTION = 0.04  # smallest face side, as a fraction of the detector copy's shorter side
MAX_FACES = 6  # faces shown with their own probabilities and Grad-CAM
MAX_FACES_CLASSIFIED = 50  # faces classified at most (all get a box and a label)
CASCADE_FILE = "haarcascade_frontalface_default.xml"
DETECTOR_NAME = f"OpenCV Haar cascade ({CASCADE_FILE})"

_cascade = None
_cascade_lock = threading.Lock()


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

    def to_json(self) -> dict:
        return {"x": int(self.x), "y": int(self.y), "w": int(self.w), "h": int(self.h)}

    def scaled(self, factor: float) -> "Box":
        return Box(round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor))


def _get_cascade() -> cv2.CascadeClassifier:
    global _cascade
    if _cascade is None:
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + CASCADE_FILE)
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load its bundled {CASCADE_FILE}")
        _cascade = cascade
    return _cascade


def detect_faces(rgb: np.ndarray, detect_side: int = DETECT_SIDE) -> list[Box]:
    """Boxes of the faces in an RGB (or gray) uint8 image, largest first, in its pixel coordinates."""
    gray = to_gray(rgb) if rgb.ndim == 3 else rgb
    h, w = gray.shape
    factor = min(1.0, detect_side / max(h, w))
    small = cv2.resize(gray, (max(1, round(w * factor)), max(1, round(h * factor))),
                       interpolation=cv2.INTER_AREA) if factor < 1 else gray
    small = cv2.equalizeHist(small)
    min_side = max(20, int(MIN_FACE_FRACTION * min(small.shape)))
    if min(small.shape) < min_side:
        return []
    with _cascade_lock:  # CascadeClassifier objects are not documented as thread-safe
        found = _get_cascade().detectMultiScale(small, scaleFactor=1.1, minNeighbors=5,
                                                minSize=(min_side, min_side))
    boxes = [Box(*(int(v) for v in b)).scaled(1 / factor) for b in (found if len(found) else [])]
    return sorted(boxes, key=lambda b: -b.area)


def crop_box(box: Box, margin: float = FACE_MARGIN) -> Box:
    """The square region a face crop covers: the box's centre, its longer side grown by `margin` each way."""
    side = max(box.w, box.h) * (1 + 2 * margin)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    s = max(1, round(side))
    return Box(round(cx - s / 2), round(cy - s / 2), s, s)


def crop_region(image: np.ndarray, region: Box) -> np.ndarray:
    """Pixels of `region` (which may leave the image), edges replicated outside."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = region.x, region.y, region.x + region.w, region.y + region.h
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return image[y0:y1, x0:x1]


def to_face(region_pixels: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """A square RGB or gray crop -> a (size, size) uint8 gray face."""
    gray = to_gray(region_pixels) if region_pixels.ndim == 3 else region_pixels
    if gray.shape != (size, size):
        interp = cv2.INTER_AREA if gray.shape[0] > size else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (size, size), interpolation=interp)
    return np.ascontiguousarray(gray, dtype=np.uint8)


def crop_face(image: np.ndarray, box: Box, margin: float = FACE_MARGIN, size: int = FACE_SIZE) -> np.ndarray:
    """A FER2013-style face: square around `box` with a margin, grayscale, size x size uint8."""
    return to_face(crop_region(image, crop_box(box, margin)), size)


def whole_image_region(image: np.ndarray) -> Box:
    """The centred square that 'classify the whole image as one face' uses."""
    h, w = image.shape[:2]
    s = min(h, w)
    return Box((w - s) // 2, (h - s) // 2, s, s)


def reading_order(boxes: list[Box]) -> list[Box]:
    """Boxes numbered left to right (then top to bottom), as a reader counts people in a photo."""
    return sorted(boxes, key=lambda b: (b.x + b.w / 2, b.y))


SMALL_IMAGE_SIDE = 128  # an image this small is taken to be a face crop already


def single_face(rgb: np.ndarray) -> tuple[np.ndarray, str]:
    """One face for the Grad-CAM explorer: a small image is the face; else the largest detected face,
    else the whole image (centred square). Returns (48x48 uint8, how it was chosen)."""
    h, w = rgb.shape[:2]
    if max(h, w) <= SMALL_IMAGE_SIDE:
        return to_face(crop_region(rgb, whole_image_region(rgb))), "the whole image (a face crop)"
    found = detect_faces(rgb)
    if found:
        return crop_face(rgb, found[0]), (f"the largest of {len(found)} detected faces" if len(found) > 1
                                          else "the detected face")
    return to_face(crop_region(rgb, whole_image_region(rgb))), "the whole image (no face detected)"
