"""Small real FER2013 samples, re-packaged in the schemas that Hub copies use."""

from __future__ import annotations

import io
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_demo.paths import LOCAL_DATASET  # the local copy every data test reads

KAGGLE_USAGE = {"train": "Training", "validation": "PublicTest", "test": "PrivateTest"}
needs_fer2013 = pytest.mark.usefixtures("fer2013")  # conftest's fixture: require_fer2013 per test


def require_fer2013() -> Path:
    """The local FER2013 copy; skips the calling test when it is absent, or fails it
    under FER_REQUIRE_DATA=1 (CI), so that a missing copy cannot pass as skipped tests."""
    if not LOCAL_DATASET.is_dir():
        reason = f"FER2013 not found at {LOCAL_DATASET}"
        if os.environ.get("FER_REQUIRE_DATA") == "1":
            pytest.fail(f"FER_REQUIRE_DATA=1 but {reason}")
        pytest.skip(reason)
    return LOCAL_DATASET


@lru_cache(maxsize=None)
def real_faces(split: str = "test", n: int = 200, seed: int = 0):
    """(images uint8 (n,48,48) numpy, labels int64 numpy) from the local FER2013, FER2013 order."""
    from fer_demo.data import load_fer

    faces = load_fer(str(LOCAL_DATASET), (split,), limits={split: n}, seed=seed)[split]
    return faces.images.numpy(), faces.labels.numpy()


def png_bytes(face: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet_split(folder: Path, split: str, images, labels, names: list[str]) -> Path:
    """Write a Hub-layout parquet split whose ClassLabel uses `names` (FER labels remapped by name)."""
    from fer_demo.labels import FER_LABELS, canonical_label

    to_source = {FER_LABELS.index(canonical_label(n)): i for i, n in enumerate(names)}
    cells = [{"bytes": png_bytes(im), "path": f"{split}_{i}.png"} for i, im in enumerate(images)]
    return write_parquet_cells(folder, split, cells, [to_source[int(y)] for y in labels], names)


def write_parquet_cells(folder: Path, split: str, cells: list[dict], labels: list[int], names: list[str]) -> Path:
    """Write raw image cells ({"bytes", "path"}) and ClassLabel indices as a Hub-layout parquet split."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature

    ds = Dataset.from_dict({"image": cells, "label": list(labels)},
                           features=Features({"image": ImageFeature(), "label": ClassLabel(names=list(names))}))
    path = Path(folder) / "data" / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return path


def kaggle_rows(images, labels, usage: str) -> list[dict]:
    return [{"emotion": int(y), "pixels": " ".join(map(str, im.reshape(-1).tolist())), "Usage": usage}
            for im, y in zip(images, labels)]


def write_kaggle_csv(path: Path, rows: list[dict]) -> Path:
    import csv

    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
