"""Loading FER2013 in every schema we support, from the real local copy."""

import numpy as np
import pytest
import torch

from fer_demo.core.data import DataError, load_fer
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import LOCAL_DATASET

from .support.fer_samples import (kaggle_rows, needs_fer2013, png_bytes, write_kaggle_csv, write_parquet_cells,
                                  write_parquet_split)

pytestmark = needs_fer2013  # every test here reads real faces (`fer_data`: the session's decoded copy)


def test_local_hub_layout_loads_as_uint8_tensors():
    splits = load_fer(str(LOCAL_DATASET), ("validation", "test"), limits={"validation": 50, "test": 64})
    test = splits["test"]
    assert test.images.dtype == torch.uint8 and test.images.shape == (64, 48, 48)
    assert test.labels.dtype == torch.int64 and int(test.labels.max()) < 7
    assert len(splits["validation"]) == 50
    assert test.images.float().std() > 20  # real faces, not blank


def test_reordered_capitalised_parquet_gives_the_same_faces_and_labels(tmp_path, fer_data):
    images, labels = fer_data.arrays("test", 120)
    names = ["Surprise", "Neutral", "Happiness", "Anger", "Sadness", "Fear", "Disgust"]
    write_parquet_split(tmp_path, "test", images, labels, names)
    loaded = load_fer(str(tmp_path), ("test",))["test"]
    assert np.array_equal(loaded.images.numpy(), images)
    assert np.array_equal(loaded.labels.numpy(), labels)


def test_kaggle_csv_schema(tmp_path, fer_data):
    rows = []
    for split, usage, n in (("train", "Training", 300), ("validation", "PublicTest", 40), ("test", "PrivateTest", 40)):
        images, labels = fer_data.arrays(split, n)
        rows += kaggle_rows(images, labels, usage)
    csv = write_kaggle_csv(tmp_path / "fer2013.csv", rows)
    loaded = load_fer(str(csv), limits={"train": None})
    images, labels = fer_data.arrays("test", 40)
    assert np.array_equal(loaded["test"].images.numpy(), images)
    assert np.array_equal(loaded["test"].labels.numpy(), labels)
    assert [len(loaded[s]) for s in ("train", "validation", "test")] == [300, 40, 40]


def _csv(tmp_path, rows):
    return str(write_kaggle_csv(tmp_path / "bad.csv", rows))


def test_unknown_class_names_row_column_value(tmp_path, fer_data):
    images, labels = fer_data.arrays("test", 5)
    rows = kaggle_rows(images, labels, "PrivateTest")
    rows[3]["emotion"] = 9
    with pytest.raises(DataError, match=r"row 3, column 'emotion': unknown class 9"):
        load_fer(_csv(tmp_path, rows), ("test",))


def test_pixel_string_of_wrong_length(tmp_path, fer_data):
    images, labels = fer_data.arrays("test", 5)
    rows = kaggle_rows(images, labels, "PrivateTest")
    rows[2]["pixels"] = rows[2]["pixels"].rsplit(" ", 1)[0]
    with pytest.raises(DataError, match=r"row 2, column 'pixels': expected 2304 pixel values, got 2303"):
        load_fer(_csv(tmp_path, rows), ("test",))


def test_undecodable_image(tmp_path, fer_data):
    images, labels = fer_data.arrays("test", 4)
    cells = [{"bytes": b"\x89PNG broken", "path": "PrivateTest_bad.png"} if i == 1 else
             {"bytes": png_bytes(im), "path": None}
             for i, im in enumerate(images)]
    write_parquet_cells(tmp_path, "test", cells, labels.tolist(), FER_LABELS)
    with pytest.raises(DataError, match=r"row 1, column 'image': undecodable image PrivateTest_bad.png"):
        load_fer(str(tmp_path), ("test",))


def test_no_label_value_in_classlabel_is_an_error_not_a_class(tmp_path, fer_data):
    """ClassLabel's -1 ("no label") must not be read as a class by negative indexing."""
    images, labels = fer_data.arrays("test", 6)
    cells = [{"bytes": png_bytes(im), "path": None} for im in images]
    write_parquet_cells(tmp_path, "test", cells, [*labels[:4].tolist(), -1, int(labels[5])], list(FER_LABELS))
    with pytest.raises(DataError, match=r"split 'test', row 4, column 'label': unknown class -1 \(a ClassLabel's "
                                        r"'no label'\); expected an integer 0-6"):
        load_fer(str(tmp_path), ("test",))


def test_unknown_and_missing_class_names_in_classlabel(tmp_path, fer_data):
    images, labels = fer_data.arrays("test", 30)
    keep = labels != 1
    names = ["angry", "contempt", "fear", "happy", "sad", "surprise", "neutral"]
    cells = [{"bytes": png_bytes(im), "path": None} for im in images[keep]]
    write_parquet_cells(tmp_path, "test", cells, labels[keep].tolist(), names)
    with pytest.raises(DataError, match=r"column 'label'.*unknown class 'contempt'"):
        load_fer(str(tmp_path), ("test",))


def test_missing_class_in_kaggle_train(tmp_path, fer_data):
    images, labels = fer_data.arrays("train", 60)
    keep = labels != 1
    csv = _csv(tmp_path, kaggle_rows(images[keep], labels[keep], "Training"))
    with pytest.raises(DataError, match="missing class.*disgust"):
        load_fer(csv, ("train",))


def test_missing_split_is_named(tmp_path, fer_data):
    images, labels = fer_data.arrays("test", 10)
    csv = _csv(tmp_path, kaggle_rows(images, labels, "PrivateTest"))
    with pytest.raises(DataError, match=r"missing split\(s\) \['train'\]"):
        load_fer(csv, ("train", "test"))


def test_no_validation_split_is_carved_stratified_and_announced(tmp_path, fer_data):
    images, labels = fer_data.arrays("train", 400)
    write_parquet_split(tmp_path, "train", images, labels, list(FER_LABELS))
    messages = []
    splits = load_fer(str(tmp_path), ("train", "validation"), seed=3, log=messages.append)
    train, val = splits["train"], splits["validation"]
    assert len(train) + len(val) == 400 and 30 <= len(val) <= 50
    assert any("no validation split" in m for m in messages)
    # stratified: every class's share in validation is close to its share overall
    overall = np.bincount(labels, minlength=7) / len(labels)
    carved = val.class_counts().numpy() / len(val)
    assert np.abs(overall - carved).max() < 0.05
    again = load_fer(str(tmp_path), ("train", "validation"), seed=3, log=lambda m: None)["validation"]
    assert torch.equal(again.images, val.images)
