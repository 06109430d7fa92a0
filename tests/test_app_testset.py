"""fer_demo.testset: report figures without the data, and faces per confusion cell with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_demo.backends import report_name
from fer_demo.data import DEFAULT_DATASET
from fer_demo.labels import FER_LABELS
from fer_demo.testset import DatasetUnavailable, HeldOutSet, resolve_dataset

from .conftest import FER_DIR


@pytest.fixture(scope="module")
def report(predictor):
    path = predictor.folder / report_name("test", predictor.backend)  # the serving backend's figures
    if not path.is_file():
        pytest.skip(f"the shipped checkpoint has no {path.name}")
    return json.loads(path.read_text())


def test_figures_come_from_the_shipped_report(predictor, report):
    held = HeldOutSet(predictor, dataset="/nonexistent/fer2013")  # figures never touch the data
    rows = held.summary_rows()
    assert [r[0] for r in rows] == ["no TTA"] + (["TTA"] if "tta" in report else [])
    assert rows[0][1] == round(report["no_tta"]["accuracy"], 4)
    assert rows[0][2] == round(report["no_tta"]["macro_f1"], 4)
    assert rows[0][3] == round(report["no_tta"]["ece"], 4)
    per_class = held.per_class_rows("no TTA")
    assert [r[0] for r in per_class] == list(FER_LABELS)
    assert sum(r[4] for r in per_class) == report["no_tta"]["n"]
    fig = held.figure("no TTA", normalized=False)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:7] == [str(v) for v in report["no_tta"]["confusion"][0]]  # counts, row 0
    assert "counts" in fig.axes[0].get_title()
    t, p = held.most_confused()
    assert t != p


def test_missing_data_set_says_how_to_get_it(predictor):
    held = HeldOutSet(predictor, dataset="/nonexistent/fer2013")
    with pytest.raises(DatasetUnavailable, match="FER_DATASET") as info:
        held.cell("angry", "sad")
    assert "hf download" in str(info.value)
    with pytest.raises(DatasetUnavailable):  # remembered: no second slow attempt
        held.random_face("happy")


def test_dataset_resolution(monkeypatch):
    monkeypatch.setenv("FER_DATASET", "/some/where")
    assert resolve_dataset(None) == "/some/where"
    assert resolve_dataset("/explicit") == "/explicit"
    monkeypatch.delenv("FER_DATASET")
    assert resolve_dataset(None) == (str(FER_DIR) if FER_DIR.exists() else DEFAULT_DATASET)


@pytest.mark.skipif(not FER_DIR.exists(), reason=f"FER2013 is not at {FER_DIR}")
def test_cells_partition_the_loaded_test_faces(predictor):
    held = HeldOutSet(predictor, dataset=str(FER_DIR), limit=150)
    calls = []
    cells = {(t, p): held.cell(t, p, max_faces=3, progress=lambda f, d: calls.append(d))
             for t in FER_LABELS for p in FER_LABELS}
    first = next(iter(cells.values()))
    assert first["n_test"] == 150 and calls, "loading should report progress"
    assert sum(c["count"] for c in cells.values()) == 150
    for t in FER_LABELS:
        assert sum(cells[t, p]["count"] for p in FER_LABELS) == cells[t, t]["row_total"]
    images, labels, probs = held.faces()
    for (t, p), c in cells.items():
        assert len(c["faces"]) == min(3, c["count"])
        for f in c["faces"]:
            i = f["test_index"]
            assert FER_LABELS[labels[i]] == t and FER_LABELS[int(probs[i].argmax())] == p == f["predicted"]
            assert np.isclose(sum(f["probabilities"].values()), 1.0, atol=1e-4)
        confidences = [f["confidence"] for f in c["faces"]]
        assert confidences == sorted(confidences, reverse=True)
    face, index, true = held.random_face("surprise", seed=1)
    assert face.shape == (48, 48) and true == "surprise" and np.array_equal(face, images[index])
    with pytest.raises(ValueError, match="unknown class"):
        held.cell("bored", "sad")
