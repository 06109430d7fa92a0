"""FER2013 through Hugging Face `datasets`, decoded once into compact uint8 tensors.

Two schemas are understood:

* an image column plus a ClassLabel column (Hub parquet, imagefolder), with the
  class names in any order, any case, or common synonyms;
* the original Kaggle CSV: `emotion` (FER2013 index), `pixels` (2,304
  space-separated values) and `Usage` (Training / PublicTest / PrivateTest).

Every label ends up in FER2013's order, mapped by name (see `labels.py`).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .labels import FACE_SIZE, FER_LABELS, NUM_CLASSES, LabelError, fer_index_map

# A Hub copy of FER2013 with the original Training / PublicTest / PrivateTest splits (its local copy:
# paths.LOCAL_DATASET).
DEFAULT_DATASET = "Aaryan333/fer2013_train_publicTest_privateTest"
SPLITS = ("train", "validation", "test")
VAL_FRACTION = 0.1  # of train, carved as validation from a data set that has no validation split
_SPLIT_ALIASES = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "val", "publictest", "public_test"),
    "test": ("test", "privatetest", "private_test"),
}
_KAGGLE_USAGE = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}


class DataError(ValueError):
    """The data set cannot be read as FER2013; the message names row, column and value."""


@dataclass
class FaceSplit:
    """One split as tensors: `images` uint8 (N, 48, 48), `labels` int64 (N,) in FER2013 order."""

    images: torch.Tensor
    labels: torch.Tensor
    name: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | np.ndarray) -> "FaceSplit":
        index = torch.as_tensor(index, dtype=torch.long)
        return FaceSplit(self.images[index], self.labels[index], self.name)

    def class_counts(self) -> torch.Tensor:
        return torch.bincount(self.labels, minlength=NUM_CLASSES)


def load_raw(dataset: str, revision: str | None = None):
    """`datasets.load_dataset` for a Hub id, a local folder, or a local CSV/parquet file."""
    from datasets import load_dataset

    if os.path.isfile(dataset):
        ext = os.path.splitext(dataset)[1].lstrip(".").lower()
        builder = {"csv": "csv", "parquet": "parquet", "jsonl": "json", "json": "json"}.get(ext)
        if builder is None:
            raise DataError(f"cannot read {dataset!r}: expected a .csv or .parquet file, or a folder")
        return load_dataset(builder, data_files=dataset)
    return load_dataset(dataset, revision=revision)


def dataset_revision(raw) -> str:
    """A stable id of the data actually loaded: the fingerprints of its splits."""
    return "+".join(f"{k}:{raw[k]._fingerprint}" for k in sorted(raw))


def is_kaggle_csv(columns) -> bool:
    return {"emotion", "pixels"} <= set(columns)


def load_fer(
    dataset: str,
    splits=SPLITS,
    revision: str | None = None,
    limits: dict[str, int | None] | None = None,
    seed: int = 0,
    log=print,
) -> dict[str, FaceSplit]:
    """Load the requested splits of a FER2013 copy as `FaceSplit`s.

    `limits` caps a split to a seeded random subset (for smoke runs). A data
    set without a validation split gets a stratified, seeded one carved from
    train (VAL_FRACTION of it), and `log` says so.
    """
    return fer_splits(load_raw(dataset, revision), dataset, splits, limits, seed, log)


def fer_splits(raw, dataset: str, splits=SPLITS, limits=None, seed: int = 0, log=print) -> dict[str, FaceSplit]:
    """`load_fer` on an already loaded `DatasetDict` (`dataset` names it in messages)."""
    columns = next(iter(raw.values())).column_names
    by_split = _kaggle_splits(raw) if is_kaggle_csv(columns) else _hub_splits(raw)
    limits = limits or {}
    wanted = set(splits)
    carve = "validation" in wanted and "validation" not in by_split
    if carve:
        wanted = (wanted - {"validation"}) | {"train"}
    missing = sorted(s for s in wanted if s not in by_split)
    if missing:
        raise DataError(f"missing split(s) {missing} in {dataset!r}; it has {sorted(by_split)}")

    out: dict[str, FaceSplit] = {}
    for name in sorted(wanted):
        decode = by_split[name]
        limit = None if (carve and name == "train") else limits.get(name)
        out[name] = decode(_subset_rows(decode.num_rows, limit, seed))
        out[name].name = name
        if limit is None:
            _check_all_classes(out[name], dataset)
    if carve:
        train, val = stratified_split(out["train"], VAL_FRACTION, seed)
        log(f"{dataset!r} has no validation split: carved a stratified {VAL_FRACTION:.0%} "
            f"of train ({len(val)} images, seed {seed}) as validation")
        out["train"], out["validation"] = _limit(train, limits.get("train"), seed), _limit(
            val, limits.get("validation"), seed)
    return {k: out[k] for k in splits}


def _check_all_classes(split: FaceSplit, dataset: str) -> None:
    missing = [FER_LABELS[c] for c, n in enumerate(split.class_counts().tolist()) if n == 0]
    if missing and split.name == "train":
        raise DataError(f"split 'train' of {dataset!r}: missing class(es) {', '.join(missing)}: "
                        "no row has that label")


def _subset_rows(n: int, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def _limit(split: FaceSplit, limit: int | None, seed: int) -> FaceSplit:
    return split if limit is None else split.subset(_subset_rows(len(split), limit, seed))


def stratified_split(split: FaceSplit, fraction: float, seed: int) -> tuple[FaceSplit, FaceSplit]:
    """Split off `fraction` of every class, seeded, keeping class proportions."""
    gen = torch.Generator().manual_seed(seed)
    held = []
    for c in range(NUM_CLASSES):
        idx = torch.nonzero(split.labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        held.append(idx[: int(round(len(idx) * fraction))])
    held_idx = torch.cat(held).sort().values
    mask = torch.ones(len(split), dtype=torch.bool)
    mask[held_idx] = False
    return split.subset(torch.nonzero(mask).flatten()), split.subset(held_idx)


class _SplitDecoder:
    """Decodes chosen rows of one split; `num_rows` lets the caller pick them first."""

    def __init__(self, num_rows, fn):
        self.num_rows, self._fn = num_rows, fn

    def __call__(self, rows: np.ndarray) -> FaceSplit:
        return self._fn(rows)


def _find_split(raw, canonical: str):
    for key in raw:
        if key.lower() in _SPLIT_ALIASES[canonical]:
            return key
    return None


def _hub_splits(raw) -> dict[str, _SplitDecoder]:
    out = {}
    for canonical in SPLITS:
        key = _find_split(raw, canonical)
        if key is not None:
            ds = raw[key]
            out[canonical] = _SplitDecoder(len(ds), lambda rows, ds=ds, key=key: _decode_hub(ds, rows, key))
    return out


def _image_and_label_columns(ds, split: str) -> tuple[str, str]:
    from datasets import ClassLabel
    from datasets import Image as ImageFeature

    images = [c for c, f in ds.features.items() if isinstance(f, ImageFeature)]
    labels = [c for c, f in ds.features.items() if isinstance(f, ClassLabel)]
    if not images:
        raise DataError(f"split {split!r}: no image column (columns: {ds.column_names})")
    if not labels:
        raise DataError(f"split {split!r}: no ClassLabel column (columns: {ds.column_names})")
    return images[0], labels[0]


def _decode_hub(ds, rows: np.ndarray, split: str) -> FaceSplit:
    from datasets import Image as ImageFeature

    image_col, label_col = _image_and_label_columns(ds, split)
    names = ds.features[label_col].names
    try:
        to_fer = torch.tensor(fer_index_map(names))
    except LabelError as e:
        raise DataError(f"split {split!r}, column {label_col!r}: {e}") from None
    ds = ds.select(rows).cast_column(image_col, ImageFeature(decode=False))
    images = np.empty((len(rows), FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    for i, cell in enumerate(ds[image_col]):
        images[i] = _decode_image_cell(cell, f"split {split!r}, row {int(rows[i])}, column {image_col!r}")
    labels = _class_indices(ds[label_col], rows, split, label_col, names)
    return FaceSplit(torch.from_numpy(images), to_fer[torch.from_numpy(labels)])


# Label values with a meaning of their own, named in the error they cause.
_LABEL_VALUE_NOTES = {-1: " (a ClassLabel's 'no label')"}


def _class_indices(values, rows: np.ndarray, split: str, column: str, names) -> np.ndarray:
    """`values` as int64 indices into `names`, or a DataError naming the row, column and value of
    the first that is not one. Without the check a -1 ("no label") would pass as the last class."""
    values = list(values)
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < len(names):
            raise DataError(f"split {split!r}, row {int(rows[i])}, column {column!r}: unknown class {value!r}"
                            f"{_LABEL_VALUE_NOTES.get(value, '')}; expected an integer 0-{len(names) - 1} "
                            f"({', '.join(names)})")
    return np.asarray(values, dtype=np.int64)


def _decode_image_cell(cell: dict, where: str) -> np.ndarray:
    data, path = cell.get("bytes"), cell.get("path")
    try:
        img = Image.open(io.BytesIO(data) if data is not None else path)
        img = img.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, TypeError) as e:
        shown = path or (repr(data[:16]) + "..." if data else repr(data))
        raise DataError(f"{where}: undecodable image {shown} ({e})") from None
    if img.size != (FACE_SIZE, FACE_SIZE):
        img = img.resize((FACE_SIZE, FACE_SIZE), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def _kaggle_splits(raw) -> dict[str, _SplitDecoder]:
    from datasets import concatenate_datasets

    ds = concatenate_datasets([raw[k] for k in raw])
    if "Usage" not in ds.column_names:
        return {"train": _SplitDecoder(len(ds), lambda rows: _decode_kaggle(ds, rows, "train"))}
    usage = np.asarray(ds["Usage"], dtype=object)
    unknown = sorted(set(usage) - set(_KAGGLE_USAGE))
    if unknown:
        row = int(np.nonzero(usage == unknown[0])[0][0])
        raise DataError(f"row {row}, column 'Usage': unknown value {unknown[0]!r}; "
                        f"expected one of {sorted(_KAGGLE_USAGE)}")
    out = {}
    for usage_name, canonical in _KAGGLE_USAGE.items():
        index = np.nonzero(usage == usage_name)[0]
        if len(index):
            out[canonical] = _SplitDecoder(
                len(index), lambda rows, index=index, c=canonical: _decode_kaggle(ds, index[rows], c))
    return out


def _decode_kaggle(ds, rows: np.ndarray, split: str) -> FaceSplit:
    sub = ds.select(rows)
    images = np.empty((len(rows), FACE_SIZE, FACE_SIZE), dtype=np.uint8)
    for i, pixels in enumerate(sub["pixels"]):
        images[i] = _parse_pixels(pixels, f"split {split!r}, row {int(rows[i])}, column 'pixels'")
    labels = _class_indices(sub["emotion"], rows, split, "emotion", FER_LABELS)
    return FaceSplit(torch.from_numpy(images), torch.from_numpy(labels))


def _parse_pixels(pixels, where: str) -> np.ndarray:
    values = str(pixels).split()
    if len(values) != FACE_SIZE * FACE_SIZE:
        raise DataError(f"{where}: expected {FACE_SIZE * FACE_SIZE} pixel values, got {len(values)}")
    try:
        arr = np.array(values, dtype=np.int64)
    except ValueError:
        bad = next(v for v in values if not v.lstrip("-").isdigit())
        raise DataError(f"{where}: pixel value {bad!r} is not an integer") from None
    if arr.min() < 0 or arr.max() > 255:
        raise DataError(f"{where}: pixel values must lie in 0-255, got {arr.min()}..{arr.max()}")
    return arr.astype(np.uint8).reshape(FACE_SIZE, FACE_SIZE)
