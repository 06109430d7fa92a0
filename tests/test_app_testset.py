"""fer_demo.serving.testset and the Test set tab: report figures without the data, the clickable confusion matrix,
and faces per confusion cell with it, with and without TTA: read from the predictions file that ships beside
the report, or recomputed for a checkpoint without one."""

from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest

from fer_demo.core.backends import predictions_name, reliability_name, report_name
from fer_demo.core.calibration import TEMPERATURE_KEYS
from fer_demo.core.data import DEFAULT_DATASET
from fer_demo.core.labels import FER_LABELS
from fer_demo.core.paths import LOCAL_DATASET
from fer_demo.ui.testset_tab import (CORNER, COUNTS, ROW_NORMALIZED, api_confusion, api_test_report, clicked_cell,
                                     matrix_table, render_cell, render_figure)
from fer_demo.serving.testset import (MODES, TTA_OF, DatasetUnavailable, HeldOutSet, ShippedPredictions,
                                      read_shipped_predictions, resolve_dataset)


LIMIT = 64  # test faces the tab loads when it predicts them itself (2 of them change class with TTA)


def _silent(*args, **kwargs):
    return None


def _never_called(*args, **kwargs):
    raise AssertionError("the test faces were classified")


@pytest.fixture(scope="module")
def report(predictor):
    path = predictor.folder / report_name("test", predictor.backend)  # the serving backend's figures
    assert path.is_file(), f"the shipped checkpoint has no {path.name}"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def no_data(predictor):
    return HeldOutSet(predictor, dataset="/nonexistent/fer2013")  # figures never touch the data


@pytest.fixture(scope="module")
def held(predictor, fer2013):
    """The tab as for a checkpoint without a predictions file: it predicts LIMIT test faces itself."""
    held = HeldOutSet(predictor, dataset=str(fer2013), limit=LIMIT)
    held.shipped = None
    return held


@pytest.fixture(scope="module")
def shipped(predictor, fer2013):
    """The tab as the app serves the shipped checkpoint: the whole test split, predictions from its file."""
    held = HeldOutSet(predictor, dataset=str(fer2013), limit=LIMIT)  # the limit binds predictions made here only
    assert held.shipped is not None, f"the shipped checkpoint has no usable {held.predictions_file}"
    return held


def test_figures_come_from_the_shipped_report(no_data, report, predictor):
    rows = no_data.summary_rows()
    assert [r[0] for r in rows] == no_data.modes() == list(MODES)
    for row, key in zip(rows, ("no_tta", "tta")):
        m = report[key]
        assert row[1:] == [round(m["accuracy"], 4), round(m["macro_f1"], 4), round(m["ece"], 4),
                           round(m["nll"], 4), m["n"], m["temperature"], round(m["uncalibrated"]["ece"], 4)]
        assert m["temperature"] == predictor.config[TEMPERATURE_KEYS[TTA_OF[row[0]]]]
    assert no_data.reliability_png == predictor.folder / reliability_name("test", predictor.backend)
    per_class = no_data.per_class_rows("no TTA")
    assert [r[0] for r in per_class] == list(FER_LABELS)
    assert [r[4] for r in per_class] == [sum(row) for row in report["no_tta"]["confusion"]]
    t, p = no_data.most_confused()
    norm = np.asarray(report["no_tta"]["confusion_normalized"])
    off = norm[~np.eye(7, dtype=bool)]
    assert t != p and norm[t, p] == off.max()
    assert api_test_report(no_data) == report


def test_no_report_is_a_readable_error(predictor, tmp_path):
    held = HeldOutSet(predictor, dataset="/nonexistent/fer2013")
    held.report = None
    assert held.modes() == [] and held.summary_rows() == []
    with pytest.raises(gr.Error, match=f"ships no {held.report_file}"):
        api_test_report(held)
    assert held.most_confused() == (0, 1)


@pytest.mark.parametrize("mode", list(MODES))
def test_the_matrix_table_shows_the_report(no_data, report, mode):
    m = report[MODES[mode]]
    counts = matrix_table(no_data, mode, "counts").data
    assert list(counts.columns) == [CORNER, *FER_LABELS] and list(counts[CORNER]) == list(FER_LABELS)
    assert counts[list(FER_LABELS)].to_numpy().tolist() == m["confusion"]
    norm = matrix_table(no_data, mode, ROW_NORMALIZED).data[list(FER_LABELS)].to_numpy()
    np.testing.assert_allclose(norm, np.round(m["confusion_normalized"], 3))
    np.testing.assert_allclose(norm.sum(1), 1.0, atol=4e-3)  # rows of shares, rounded to 3 decimals
    table, per_class = render_figure(no_data, mode, "counts")
    assert table.data.equals(counts) and per_class == no_data.per_class_rows(mode)


def test_the_tta_matrix_differs_from_the_plain_one(no_data):
    plain, tta = (matrix_table(no_data, mode, "counts").data for mode in MODES)
    assert not plain.equals(tta)


@pytest.mark.parametrize("row, col, expected", [
    (2, 5, ("fear", "sad")),
    (0, 7, ("angry", "neutral")),
    (6, 6, ("neutral", "surprise")),
    (3, 0, ("happy", "happy")),  # the first column names the true class: its diagonal cell
])
def test_a_click_on_the_matrix_picks_its_cell(no_data, row, col, expected):
    """Through the Dataframe's own round trip, as the browser's click reaches the handler."""
    with gr.Blocks():
        matrix = gr.Dataframe(interactive=False)
    for counts in COUNTS:
        table = matrix.preprocess(matrix.postprocess(matrix_table(no_data, "no TTA", counts)))
        assert clicked_cell(table, gr.SelectData(matrix, {"index": [row, col], "value": None})) == expected


def test_missing_data_set_says_how_to_get_it(predictor):
    held = HeldOutSet(predictor, dataset="/nonexistent/fer2013")
    with pytest.raises(DatasetUnavailable, match="FER_DATASET") as info:
        held.cell("angry", "sad")
    assert "hf download" in str(info.value)
    with pytest.raises(DatasetUnavailable):  # remembered: no second slow attempt
        held.random_face("happy")
    with pytest.raises(gr.Error, match="FER_DATASET"):
        api_confusion(held, "angry", "sad", "TTA", progress=_silent)


def test_unreachable_hub_says_why(predictor, monkeypatch):
    """A Space without the Hub: the load error comes first, then how to get the faces; tried once."""
    calls = []

    def offline(*args, **kwargs):  # what load_fer raises under HF_HUB_OFFLINE=1 (tests/test_space.py runs that)
        calls.append(args)
        raise ConnectionError(f"Couldn't reach '{DEFAULT_DATASET}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr("fer_demo.core.data.load_fer", offline)
    held = HeldOutSet(predictor, dataset=DEFAULT_DATASET)
    with pytest.raises(DatasetUnavailable) as info:
        held.cell("angry", "sad")
    message = str(info.value)
    assert message.startswith(f"Test faces unavailable: the FER2013 test split could not be loaded from "
                              f"'{DEFAULT_DATASET}' (ConnectionError: Couldn't reach")
    assert "The figures above do not need it" in message and "FER_DATASET" in message
    assert len(message) < 1000  # the UI shows up to 1,000 characters
    with pytest.raises(DatasetUnavailable, match="OfflineModeIsEnabled"):
        held.random_face()
    assert len(calls) == 1


def test_a_space_reads_the_hub_copy(monkeypatch, tmp_path):
    monkeypatch.delenv("FER_DATASET", raising=False)
    monkeypatch.setattr("fer_demo.serving.testset.LOCAL_DATASET", tmp_path / "no-local-copy")
    assert resolve_dataset(None) == DEFAULT_DATASET


def test_dataset_resolution(monkeypatch):
    monkeypatch.setenv("FER_DATASET", "/some/where")
    assert resolve_dataset(None) == "/some/where"
    assert resolve_dataset("/explicit") == "/explicit"
    monkeypatch.delenv("FER_DATASET")
    assert resolve_dataset(None) == (str(LOCAL_DATASET) if LOCAL_DATASET.exists() else DEFAULT_DATASET)


@pytest.mark.parametrize("mode", list(MODES))
def test_cells_partition_the_loaded_test_faces(held, predictor, mode):
    calls = []
    cells = {(t, p): held.cell(t, p, max_faces=3, mode=mode, progress=lambda f, d: calls.append(d))
             for t in FER_LABELS for p in FER_LABELS}
    first = next(iter(cells.values()))
    assert first["n_test"] == LIMIT and first["mode"] == mode
    assert sum(c["count"] for c in cells.values()) == LIMIT
    for t in FER_LABELS:
        assert sum(cells[t, p]["count"] for p in FER_LABELS) == cells[t, t]["row_total"]
    images, labels = held.faces()
    probs = held.predictions(mode).probs
    assert images.shape == (LIMIT, 48, 48) and labels.shape == (LIMIT,) and probs.shape == (LIMIT, 7)
    for (t, p), c in cells.items():
        assert len(c["faces"]) == min(3, c["count"])
        assert c["fraction_of_row"] == pytest.approx(c["count"] / c["row_total"], abs=1e-6)
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


def test_tta_mode_averages_the_evaluators_ten_views(held, predictor):
    images, _ = held.faces()
    few = slice(0, 16)  # recomputed for a few faces: each face's probabilities do not depend on its batch
    tta, plain = held.predictions("TTA"), held.predictions("no TTA")
    np.testing.assert_allclose(tta.probs[few], predictor.classify(images[few], "10-view"), atol=1e-5)
    np.testing.assert_allclose(plain.probs[few], predictor.classify(images[few], "none"), atol=1e-5)
    assert np.array_equal(tta.classes, tta.probs.argmax(1)) and (tta.classes != plain.classes).any()
    assert not held.serves_shipped("TTA")
    with pytest.raises(ValueError, match="unknown mode"):
        held.predictions("flip")


def _assert_rendered(message: str, gallery, out: dict, source: str) -> None:
    """The cell's message names its counts and where its predictions came from; each gallery item is a gray
    face beside its coloured CAM, captioned with the face's index and prediction."""
    assert f"**{out['count']}** of the {out['row_total']} test faces labelled **{out['true']}** are predicted " \
           f"**{out['predicted']}**" in message
    assert f"n={out['n_test']}; {out['mode']}, {source}" in message
    assert len(gallery) == len(out["faces"]) == min(12, out["count"]) > 0
    for (pair, caption), f in zip(gallery, out["faces"]):
        assert pair.shape == (128, 256, 3) and caption.startswith(f"#{f['test_index']}: {f['predicted']} ")
        face, cam = pair[:, :128].astype(int), pair[:, 128:].astype(int)
        assert (face[..., 0] == face[..., 2]).all() and np.abs(cam[..., 0] - cam[..., 2]).mean() > 10


def test_api_confusion_and_its_rendering(held, predictor):
    for mode in MODES:
        out = api_confusion(held, "happy", "happy", mode, progress=_silent)
        assert out["mode"] == mode and out["true"] == out["predicted"] == "happy" and out["n_test"] == LIMIT
        assert out["report_count"] == held.report_count(3, 3, mode)
        _assert_rendered(*render_cell(predictor, held, out), out, "predictions recomputed here")
    with pytest.raises(gr.Error, match="unknown class"):
        api_confusion(held, "bored", "sad", progress=_silent)
    with pytest.raises(gr.Error, match="unknown mode"):
        api_confusion(held, "happy", "sad", "flip", progress=_silent)
    assert render_cell(predictor, held, None) == ("", None)


@pytest.mark.parametrize("mode", list(MODES))
def test_shipped_predictions_give_the_reports_cells_at_once(shipped, predictor, report, mode, monkeypatch):
    """Served from the predictions file: every cell of the whole split holds the report's count, and its faces
    carry the file's classes and probabilities, most confident first. Nothing is classified."""
    record = json.loads((predictor.folder / predictions_name("test", predictor.backend)).read_text())[MODES[mode]]
    with monkeypatch.context() as patched:
        patched.setattr(predictor, "classify", _never_called)
        cells = {(t, p): api_confusion(shipped, t, p, mode, progress=_silent) for t in FER_LABELS for p in FER_LABELS}
    assert shipped.serves_shipped(mode) and {c["n_test"] for c in cells.values()} == {report["n"]}
    assert [[cells[t, p]["count"] for p in FER_LABELS] for t in FER_LABELS] == report[MODES[mode]]["confusion"]
    assert all(c["count"] == c["report_count"] for c in cells.values())
    for c in cells.values():
        for f in c["faces"]:
            i = f["test_index"]
            assert FER_LABELS[record["pred"][i]] == f["predicted"] == c["predicted"]
            assert list(f["probabilities"].values()) == pytest.approx(record["probs"][i], abs=1e-9)
            assert f["confidence"] == max(record["probs"][i])
        confidences = [f["confidence"] for f in c["faces"]]
        assert confidences == sorted(confidences, reverse=True)
    out = cells["happy", "happy"]
    _assert_rendered(*render_cell(predictor, shipped, out), out, f"predictions from {shipped.predictions_file}")


def _with_key(path, record: dict, key: str, value) -> dict:
    path.write_text(json.dumps({**record, key: value}))
    return path


def test_a_predictions_file_serves_only_the_report_and_the_faces_it_was_made_for(shipped, report, predictor,
                                                                                  tmp_path):
    """A user's checkpoint without the file, a file of another backend or whose faces do not recount to the
    report: the tab predicts itself. Loaded faces with other labels (another copy of the data) set it aside."""
    path = predictor.folder / predictions_name("test", predictor.backend)
    record = json.loads(path.read_text())
    assert read_shipped_predictions(tmp_path / "absent.json", report) is None
    assert read_shipped_predictions(_with_key(tmp_path / "p.json", record, "backend", "other"), report) is None
    moved = {**record["tta"], "pred": [(c + 1) % 7 if i == 0 else c for i, c in enumerate(record["tta"]["pred"])]}
    assert read_shipped_predictions(_with_key(tmp_path / "p.json", record, "tta", moved), report) is None
    assert read_shipped_predictions(_with_key(tmp_path / "p.json", record, "true", record["true"][1:]), report) is None
    (tmp_path / "broken.json").write_text("{")
    assert read_shipped_predictions(tmp_path / "broken.json", report) is None
    assert read_shipped_predictions(path, None) is None
    assert read_shipped_predictions(path, report).by_key.keys() == {"no_tta", "tta"}

    other_copy = HeldOutSet(predictor, dataset=shipped.dataset)
    other_copy.shipped = ShippedPredictions(np.roll(other_copy.shipped.true, 1), other_copy.shipped.by_key)
    assert other_copy.serves_shipped("TTA")
    other_copy.faces()
    assert other_copy.shipped is None and not other_copy.serves_shipped("TTA")
