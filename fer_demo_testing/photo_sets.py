"""Photo sets with the truth about their faces, for the tests and the benches that measure the detectors.

Real photos: the truth about each real photo (`REAL_PHOTOS`: where its faces in focus are, what else
must get no box, the plain expressions; tests/photos/README.md, examples/README.md and
../shared/photos/README.md), the real photos with no face at all (tests/negatives/README.md), and the
views of a photo a detector may be shown.

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

from fer_demo.vision.faces import Crop
from fer_demo.vision.images import load_image
from fer_demo.core.paths import EXAMPLES_DIR, REPO_ROOT

# --- real photos ---

PHOTO_DIRS = (REPO_ROOT / "tests" / "photos", EXAMPLES_DIR / "photos")
NEGATIVES_DIR = REPO_ROOT / "tests" / "negatives"
SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class RealPhoto:
    """The truth about a real photo: where each face in focus is (its centre, as fractions of the photo's
    width and height; a detector must box each, and nothing else), what else looks like a face but must get
    no box (people out of focus, a crowd, painted or sculpted faces), and the expression of its face where
    it is plain by eye ("happy": a broad smile; "neutral"), as tests/photos/README.md and
    ../shared/photos/README.md describe them."""

    faces: tuple[tuple[float, float], ...]
    not_faces: str = ""
    expression: str = ""


def _one(cx: float, cy: float, not_faces: str = "", expression: str = "") -> RealPhoto:
    return RealPhoto(((cx, cy),), not_faces, expression)


# file name -> its truth: the 27 photos of ../shared/photos (some shipped in tests/photos) and examples/photos
REAL_PHOTOS = {
    "alex-lacamoire.png": _one(0.61, 0.55, expression="happy"),
    "biden.jpg": _one(0.59, 0.17),
    "img1.jpg": _one(0.59, 0.28),
    "john1.jpeg": _one(0.62, 0.26, expression="neutral"),  # a small face in a wide photo
    "lin-manuel-miranda.png": _one(0.56, 0.51, expression="neutral"),
    "obama_partial_face.jpg": _one(0.20, 0.22),  # cut by the photo's left edge
    "deepface_img2.jpg": _one(0.51, 0.38),
    "deepface_img5.jpg": _one(0.53, 0.45, expression="neutral"),
    "deepface_img8.jpg": _one(0.49, 0.32),
    "deepface_img12.jpg": _one(0.52, 0.39),
    "deepface_img13.jpg": _one(0.49, 0.35),
    "deepface_img14.jpg": _one(0.52, 0.33),
    "deepface_img16.jpg": _one(0.52, 0.46, "blurred people behind"),
    "deepface_img17.jpg": _one(0.48, 0.43),
    "deepface_img20.jpg": _one(0.50, 0.32, "a textured concrete wall"),
    "deepface_img21.jpg": _one(0.44, 0.38),
    "deepface_img24.jpg": _one(0.49, 0.51, expression="happy"),
    "deepface_img27.jpg": _one(0.52, 0.25, "a patterned dress"),  # a small face in a wide photo
    "deepface_img31.jpg": _one(0.45, 0.42, "2 blurred people behind"),
    "deepface_img36.jpg": _one(0.52, 0.41, "a painted poster", expression="neutral"),
    "deepface_img37.jpg": _one(0.46, 0.20, "a statuette's head"),
    "deepface_img40.jpg": _one(0.45, 0.41, "blurred photographers behind"),
    "deepface_img43.jpg": _one(0.51, 0.31),  # a small face in a wide photo
    "deepface_img54.jpg": _one(0.48, 0.33, "a blurred crowd behind"),
    "deepface_img57.jpg": _one(0.50, 0.29, expression="neutral"),
    "deepface_img58.jpg": _one(0.26, 0.38, "a logo", expression="neutral"),
    "deepface_img67.jpg": _one(0.37, 0.57, "a logo", expression="neutral"),
    "astronaut.jpg": _one(0.44, 0.23),
    "grace_hopper.jpg": _one(0.52, 0.38),
    "group_collage.jpg": RealPhoto(((0.12, 0.27), (0.38, 0.36), (0.62, 0.35), (0.88, 0.26)),
                                   "two of its faces are smaller copies"),
    "coffee_no_face.jpg": RealPhoto((), "a cup of coffee"),
}


def real_photo_files(dirs=PHOTO_DIRS) -> dict[str, Path]:
    """{file name: file} of the photos in `dirs` (default: the repo's, tests/photos and examples/photos; add
    paths.SHARED_PHOTOS for all 27 shared ones), the first folder's copy where several hold one."""
    files: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(Path(d).iterdir()):
            if f.suffix.lower() in SUFFIXES:
                files.setdefault(f.name, f)
    return files


def face_counts() -> dict[Path, int]:
    """{photo file in the repo: its number of faces in focus, which a detector must box (and nothing else)}."""
    return {f: len(REAL_PHOTOS[name].faces) for name, f in real_photo_files().items()}


def count_is_right(photo: Path | str, found: int) -> bool:
    """Whether `found` boxes is the count of faces in focus in this photo."""
    return found == len(REAL_PHOTOS[Path(photo).name].faces)


def faces_hit(photo: str, shape: tuple[int, ...], boxes: list) -> tuple[int, int]:
    """(faces in focus boxed, extra boxes): a face is boxed when a box holds its centre (each box counts
    for one face); every other box is extra (on a blurred person, a crowd, a painting or texture)."""
    h, w = shape[:2]
    free = list(boxes)
    hit = 0
    for cx, cy in REAL_PHOTOS[photo].faces:
        x, y = cx * w, cy * h
        box = next((b for b in free if b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h), None)
        if box is not None:
            free.remove(box)
            hit += 1
    return hit, len(free)


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


def soften(rgb: np.ndarray, sigma: float = 1.5, quality: int = 60) -> np.ndarray:
    """A photo as a soft webcam gives it: blurred (Gaussian, `sigma` px) and JPEG-compressed at `quality`."""
    blurred = cv2.GaussianBlur(rgb, (0, 0), sigma)
    _, data = cv2.imencode(".jpg", np.ascontiguousarray(blurred[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


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
