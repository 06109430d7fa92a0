"""Rebuild tests/negatives/ (photos with no face) from their sources (see README.md here).

    python tests/negatives/build_negatives.py --skimage-data DIR [--photos ../shared/photos]

DIR is the `skimage/data` folder of a scikit-image 0.26 wheel (`pip download scikit-image==0.26.0
--no-deps`, then unzip it); scikit-image is not a dependency. `--photos` holds the DeepFace test
photos (`deepface_img16.jpg`, `deepface_img20.jpg`) whose backgrounds are cropped here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
LONGEST = 512  # longest side of a shipped negative, px

# name -> source file in skimage/data (all CC0 or public domain, README.md)
SKIMAGE = {
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
    "chelsea_cat": "chelsea.png",
    "rocket": "rocket.jpg",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "clock_motion": "clock_motion.png",
    "retina": "retina.jpg",
}
# name -> (DeepFace photo, (left, top, right, bottom) of a region with no face in it)
CROPS = {
    "concrete_wall_left": ("deepface_img20.jpg", (0, 0, 200, 430)),
    "concrete_wall_right": ("deepface_img20.jpg", (620, 0, 900, 420)),
    "blurred_room_left": ("deepface_img16.jpg", (0, 0, 235, 140)),
    "blurred_room_right": ("deepface_img16.jpg", (515, 0, 700, 175)),
}


def save(img: Image.Image, name: str) -> None:
    img = img.convert("RGB")
    if max(img.size) > LONGEST:
        img.thumbnail((LONGEST, LONGEST), Image.Resampling.LANCZOS)
    img.save(HERE / f"{name}.jpg", quality=88)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skimage-data", required=True, type=Path)
    p.add_argument("--photos", type=Path, default=HERE.parent.parent.parent / "shared" / "photos")
    args = p.parse_args(argv)
    for name, source in SKIMAGE.items():
        save(Image.open(args.skimage_data / source), name)
    for name, (source, region) in CROPS.items():
        save(Image.open(args.photos / source).crop(region), name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
