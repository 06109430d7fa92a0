"""The repo's real photos and how many faces each holds (tests/photos/README.md, examples/README.md)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PHOTO_DIRS = (REPO / "tests" / "photos", REPO / "examples" / "photos")
OTHER_COUNTS = {"coffee_no_face.jpg": 0, "group_collage.jpg": 4}  # every other photo holds one face
SUFFIXES = (".jpg", ".jpeg", ".png")


def face_counts() -> dict[Path, int]:
    """{photo file: its number of faces}."""
    return {f: OTHER_COUNTS.get(f.name, 1) for d in PHOTO_DIRS for f in sorted(d.iterdir())
            if f.suffix.lower() in SUFFIXES}
