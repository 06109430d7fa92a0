"""Rebuild examples/ from redistributable sources (see examples/README.md).

    python -m examples.build_examples --skimage-data DIR [--dataset ../shared/data/fer2013]

DIR is the `skimage/data` folder of a scikit-image wheel (`pip download
scikit-image --no-deps`, then unzip it); scikit-image is not a dependency.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageOps

from fer_demo.core.paths import EXAMPLES_DIR, LOCAL_DATASET

PER_CLASS = 2
SEED = 0


def square(img: Image.Image, side: int) -> Image.Image:
    return ImageOps.fit(img.convert("RGB"), (side, side), Image.Resampling.LANCZOS)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--skimage-data", required=True, type=Path)
    p.add_argument("--dataset", default=str(LOCAL_DATASET))
    args = p.parse_args(argv)

    photos = EXAMPLES_DIR / "photos"
    photos.mkdir(exist_ok=True)
    astronaut = Image.open(args.skimage_data / "astronaut.png").convert("RGB")
    hopper = Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    coffee = Image.open(args.skimage_data / "coffee.png").convert("RGB")
    astronaut.save(photos / "astronaut.jpg", quality=92)
    hopper.save(photos / "grace_hopper.jpg", quality=92)
    coffee.save(photos / "coffee_no_face.jpg", quality=90)

    # A "group photo": four tiles, two of them mirrored (and one in grayscale), on a light background.
    tile, gap = 300, 16
    tiles = [square(astronaut, tile), square(hopper, tile), ImageOps.mirror(square(hopper, tile)).convert("L"),
             ImageOps.mirror(square(astronaut, tile))]
    canvas = Image.new("RGB", (4 * tile + 5 * gap, tile + 2 * gap), (235, 235, 230))
    for i, t in enumerate(tiles):
        canvas.paste(t.convert("RGB"), (gap + i * (tile + gap), gap))
    canvas.save(photos / "group_collage.jpg", quality=90)

    # FER2013 test faces: PER_CLASS per class, a seeded random choice, as 48x48 PNGs.
    from fer_demo.core.data import load_fer
    from fer_demo.core.labels import FER_LABELS

    test = load_fer(args.dataset, ("test",), log=lambda *a: None)["test"]
    out = EXAMPLES_DIR / "fer2013"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    rng = np.random.default_rng(SEED)
    for c, name in enumerate(FER_LABELS):
        pool = np.nonzero(test.labels.numpy() == c)[0]
        for i in sorted(rng.choice(pool, PER_CLASS, replace=False)):
            Image.fromarray(test.images[i].numpy()).save(out / f"{name}_test{i:04d}.png", optimize=True)
    print(f"wrote {len(list(photos.glob('*')))} photos and {len(list(out.glob('*.png')))} test faces "
          f"under {EXAMPLES_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
