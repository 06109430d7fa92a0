"""The repo's real photos and how many faces each holds (tests/photos/README.md, examples/README.md),
and the real photos with no face at all (tests/negatives/README.md)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTO_DIRS = (REPO / "tests" / "photos", REPO / "examples" / "photos")
NEGATIVES_DIR = REPO / "tests" / "negatives"
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
