"""Photo sets with the truth about their faces, for the tests and the benches that measure the detectors.

Real photos: the repo's photos and how many faces each holds (tests/photos/README.md,
examples/README.md), the real photos with no face at all (tests/negatives/README.md), and the views of
a photo a detector may be shown.

Synthetic photos made of real FER2013 faces: each is a 640x480 canvas of blurred colour noise, or of a
real photo with no face in it (`textures`: brick, grass, gravel, a cat, a concrete wall...,
`tests/negatives/`), with a few FER2013 faces pasted on it: upscaled to 120-220 px (or 40-100,
`SMALL_FACE_SIDES`), turned by up to +-`max_angle` degrees, never overlapping. The truth for each face
is its label and the `Crop` that cuts exactly the pasted square back out, so a pipeline's crop can be
compared with the FER2013 framing and its prediction with the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_demo.faces import Crop
from fer_demo.images import load_image
from fer_demo.paths import EXAMPLES_DIR, REPO_ROOT

# --- real photos ---

PHOTO_DIRS = (REPO_ROOT / "tests" / "photos", EXAMPLES_DIR / "photos")
NEGATIVES_DIR = REPO_ROOT / "tests" / "negatives"
OTHER_COUNTS = {"coffee_no_face.jpg": 0, "group_collage.jpg": 4}  # every other photo holds one face
# Photos that hold more faces than a detector must box: deepface_img16.jpg has blurred people far
# behind the subject, who may or may not be boxed (up to two of them show a head).
MAY_ALSO_BOX = {"deepface_img16.jpg": 2}
SUFFIXES = (".jpg", ".jpeg", ".png")


def face_counts() -> dict[Path, int]:
    """{photo file: its number of faces that a detector must box}."""
    return {f: OTHER_COUNTS.get(f.name, 1) for d in PHOTO_DIRS for f in sorted(d.iterdir())
            if f.suffix.lower() in SUFFIXES}


def count_is_right(photo: Path | str, found: int) -> bool:
    """Whether `found` boxes is a right count for this photo (its faces, plus any it may also box)."""
    name = Path(photo).name
    need = OTHER_COUNTS.get(name, 1)
    return need <= found <= need + MAY_ALSO_BOX.get(name, 0)


def negatives() -> list[Path]:
    """Real photos with no face in them (textures, a cat, a rocket, walls, blurred rooms)."""
    return sorted(f for f in NEGATIVES_DIR.iterdir() if f.suffix.lower() in SUFFIXES)


def views(rgb, crop: float = 0.6) -> list:
    """Ways a photo may reach the detector: whole, mirrored, and its four corners and centre cut out at
    `crop` of each side (so the detector sees its texture larger, and cut by the frame elsewhere)."""
    h, w = rgb.shape[:2]
    ch, cw = round(h * crop), round(w * crop)
    corners = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]
    return [rgb, rgb[:, ::-1].copy()] + [rgb[y:y + ch, x:x + cw].copy() for y, x in corners]


# --- synthetic photos ---

CANVAS = (640, 480)
FACE_SIDES = (120, 220)
FACES_PER_PHOTO = 3
SMALL_FACE_SIDES = (40, 100)  # faces in a group photo, near FER2013's own 48 px
SMALL_FACES_PER_PHOTO = 8


@dataclass
class SyntheticPhoto:
    rgb: np.ndarray
    crops: list[Crop]  # the truth: where each pasted face is
    faces: list[int]  # indices into the face array


def background(rng: np.random.Generator, size=CANVAS) -> np.ndarray:
    """Smooth colour blobs plus fine grain: no face-like structure, not flat either."""
    w, h = size
    coarse = rng.integers(0, 256, (rng.integers(3, 9), rng.integers(3, 9), 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    grain = cv2.GaussianBlur(rng.normal(0, 25, (h, w, 3)).astype(np.float32), (0, 0), 2)
    return np.clip(smooth + grain, 0, 255).astype(np.uint8)


def texture_background(rng: np.random.Generator, textures: list[np.ndarray], size=CANVAS) -> np.ndarray:
    """A random crop (half to all of the shorter side, in the canvas's aspect) of one of `textures`
    (RGB photos with no face), maybe mirrored, resized to the canvas: real face-like texture."""
    w, h = size
    texture = textures[rng.integers(len(textures))]
    th, tw = texture.shape[:2]
    scale = min(tw / w, th / h) * rng.uniform(0.5, 1.0)
    cw, ch = max(8, round(w * scale)), max(8, round(h * scale))
    x, y = rng.integers(0, tw - cw + 1), rng.integers(0, th - ch + 1)
    crop = texture[y:y + ch, x:x + cw]
    if crop.ndim == 2:
        crop = np.repeat(crop[..., None], 3, axis=2)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    shrink = cv2.INTER_AREA if scale > 1 else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=shrink)


def load_textures(files) -> list[np.ndarray]:
    """The RGB pixels of each image file (the negatives in `tests/negatives/`)."""
    return [load_image(f).rgb for f in files]


def place(rng: np.random.Generator, n: int, max_angle: float, size=CANVAS, tries: int = 200,
          sides=FACE_SIDES) -> list[Crop]:
    """Up to `n` non-overlapping turned squares inside the canvas, `sides` px (smallest, largest) each."""
    w, h = size
    crops: list[Crop] = []
    for _ in range(tries):
        if len(crops) == n:
            break
        side = rng.uniform(*sides)
        angle = rng.uniform(-max_angle, max_angle) if max_angle else 0.0
        reach = side / 2 * (abs(math.cos(math.radians(angle))) + abs(math.sin(math.radians(angle))))
        if 2 * reach >= min(w, h):
            continue
        cx, cy = rng.uniform(reach, w - reach), rng.uniform(reach, h - reach)
        if all(math.hypot(cx - c.cx, cy - c.cy) > (side + c.side) * 0.75 for c in crops):
            crops.append(Crop(cx, cy, side, angle))
    return crops


def paste(canvas: np.ndarray, face: np.ndarray, crop: Crop) -> None:
    """Draw a 48x48 gray face into `canvas` so that `extract(canvas, crop)` gives it back."""
    size = face.shape[0]
    h, w = canvas.shape[:2]
    m = crop.matrix(size)  # photo -> face pixels; WARP_INVERSE_MAP uses it as such
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    warped = cv2.warpAffine(face, m, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT)
    inside = cv2.warpAffine(np.full((size, size), 255, np.uint8), m, (w, h),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    alpha = (inside.astype(np.float32) / 255)[..., None]
    canvas[:] = (canvas * (1 - alpha) + warped[..., None].astype(np.float32) * alpha).astype(np.uint8)


def make_photos(faces: np.ndarray, max_angle: float, seed: int = 0, per_photo: int = FACES_PER_PHOTO,
                textures: list[np.ndarray] | None = None, sides=FACE_SIDES) -> list[SyntheticPhoto]:
    """Every face of `faces` (N, 48, 48) pasted once, `per_photo` to a photo, in order, `sides` px
    (smallest, largest) each; on blurred noise, or on crops of `textures` (real photos with no face)
    when given."""
    rng = np.random.default_rng(seed)
    photos, i = [], 0
    while i < len(faces):
        crops = place(rng, min(per_photo, len(faces) - i), max_angle, sides=sides)
        canvas = texture_background(rng, textures) if textures else background(rng)
        for k, crop in enumerate(crops):
            paste(canvas, faces[i + k], crop)
        photos.append(SyntheticPhoto(canvas, crops, list(range(i, i + len(crops)))))
        i += len(crops)
    return photos


def match(truth: list[Crop], boxes: list, radius: float = 0.35) -> dict[int, int]:
    """{truth index: box index}: each true face gets the nearest unused box whose centre lies within
    `radius` x its side of the face's centre."""
    pairs = sorted((math.hypot(b.centre[0] - t.cx, b.centre[1] - t.cy), ti, bi)
                   for ti, t in enumerate(truth) for bi, b in enumerate(boxes))
    found: dict[int, int] = {}
    used: set[int] = set()
    for dist, ti, bi in pairs:
        if ti not in found and bi not in used and dist <= radius * truth[ti].side:
            found[ti] = bi
            used.add(bi)
    return found
