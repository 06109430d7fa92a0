"""Pictures of faces and their CAMs: enlarged crops, heatmap overlays, maps on the photo, numbered boxes."""

from __future__ import annotations

import cv2
import numpy as np
from pytorch_grad_cam.utils.image import show_cam_on_image

from .detectors import Box
from .faces import Crop

PALETTE = ((0, 200, 255), (255, 80, 80), (80, 220, 80), (255, 200, 0), (200, 80, 255), (255, 140, 0))


def _jet(cam: np.ndarray) -> np.ndarray:
    heat = cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), cv2.COLORMAP_JET)
    return cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)


def enlarge(face: np.ndarray, size: int = 192) -> np.ndarray:
    """A face (gray or RGB uint8) as a size x size RGB image (nearest-neighbour would look blocky: cubic)."""
    face = np.asarray(face, dtype=np.uint8)
    big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    return np.repeat(big[..., None], 3, axis=2) if big.ndim == 2 else big


def overlay(face: np.ndarray, cam: np.ndarray, opacity: float = 0.5, size: int = 192) -> np.ndarray:
    """A face (gray or RGB uint8) with its CAM as a jet heatmap, `opacity` of heatmap, size x size RGB."""
    mask = cv2.resize(np.asarray(cam, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    opacity = float(np.clip(opacity, 0.0, 1.0))
    return show_cam_on_image(np.float32(enlarge(face, size)) / 255.0, np.clip(mask, 0, 1), use_rgb=True,
                             image_weight=1.0 - opacity)


def cam_on_photo(rgb: np.ndarray, crops: list[Crop], cams: list[np.ndarray], opacity: float = 0.5) -> np.ndarray:
    """Map each face's CAM back onto the full photo, into the (possibly turned) square its crop covered."""
    h, w = rgb.shape[:2]
    heat = np.zeros((h, w), np.float32)
    alpha = np.zeros((h, w), np.float32)
    for crop, cam in zip(crops, cams):
        b = crop.bounds()
        x0, y0, x1, y1 = max(b.x, 0), max(b.y, 0), min(b.x + b.w, w), min(b.y + b.h, h)
        if x1 <= x0 or y1 <= y0:
            continue
        cam = np.asarray(cam, np.float32)
        m = crop.matrix(cam.shape[0])
        m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)  # photo pixels of the window -> cam pixels
        back = dict(dsize=(x1 - x0, y1 - y0), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        part = cv2.warpAffine(cam, m, **back)
        inside = cv2.warpAffine(np.ones_like(cam), m, **back)
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], part)
        alpha[y0:y1, x0:x1] = np.maximum(alpha[y0:y1, x0:x1], inside * float(np.clip(opacity, 0, 1)))
    colored = _jet(heat).astype(np.float32)
    out = rgb.astype(np.float32) * (1 - alpha[..., None]) + colored * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def annotate(rgb: np.ndarray, boxes: list[Box], captions: list[str]) -> np.ndarray:
    """Numbered boxes with a caption each ("1 happy 87%")."""
    out = np.ascontiguousarray(rgb.copy())
    scale = max(out.shape[:2]) / 800
    thick = max(2, round(3 * scale))
    font = 0.6 * max(scale, 0.6)
    for i, (b, text) in enumerate(zip(boxes, captions)):
        color = PALETTE[i % len(PALETTE)]
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), color, thick)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, thick // 2))
        ty = b.y - 6 if b.y - th - base - 6 >= 0 else b.y + b.h + th + 6
        tx = max(0, min(b.x, out.shape[1] - tw - 6))  # keep the caption inside the photo
        cv2.rectangle(out, (tx, ty - th - base), (tx + tw + 6, ty + base // 2), color, -1)
        cv2.putText(out, text, (tx + 3, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0),
                    max(1, thick // 2), cv2.LINE_AA)
    return out
