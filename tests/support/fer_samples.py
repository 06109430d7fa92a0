"""Small real FER2013 samples, re-packaged in the schemas that Hub copies use."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_demo.core.paths import LOCAL_DATASET  # the local copy every data test reads

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


class LocalFer2013:
    """The local FER2013 copy, read from disk once (its `DatasetDict`) and each split or seeded subset decoded
    once: what every test that needs real faces gets them from (conftest's session fixture `fer_data`).

    `split(name, n, seed)` is `load_fer(LOCAL_DATASET, (name,), limits={name: n}, seed=seed)[name]`, the same
    faces, decoded by the same `fer_splits`; n=None is the whole split. Callers share what it returns: read it,
    never write to it."""

    def __init__(self, root: Path = LOCAL_DATASET):
        self.root = root
        self._raw = None
        self._splits: dict[tuple, object] = {}

    @property
    def raw(self):
        if self._raw is None:
            from fer_demo.core.data import load_raw

            self._raw = load_raw(str(self.root))
        return self._raw

    def split(self, name: str = "test", n: int | None = None, seed: int = 0):
        """A `FaceSplit`: the whole split `name`, or its seeded random subset of `n` faces."""
        key = (name, n, seed)
        if key not in self._splits:
            from fer_demo.core.data import fer_splits

            self._splits[key] = fer_splits(self.raw, str(self.root), (name,), limits={name: n}, seed=seed,
                                           log=lambda *a: None)[name]
        return self._splits[key]

    def arrays(self, name: str = "test", n: int | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8 (n,48,48), labels int64 (n,)) as numpy, FER2013 order."""
        faces = self.split(name, n, seed)
        return faces.images.numpy(), faces.labels.numpy()


LOCAL_FER2013 = LocalFer2013()  # one per test session


def png_bytes(face: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="PNG")
    return buf.getvalue()


def write_parquet_split(folder: Path, split: str, images, labels, names: list[str]) -> Path:
    """Write a Hub-layout parquet split whose ClassLabel uses `names` (FER labels remapped by name)."""
    from fer_demo.core.labels import FER_LABELS, canonical_label

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
