"""The shipped model: its reports agree with the checkpoint and with themselves. (The model itself, scored again
on a seeded sample of real PrivateTest faces against the reports' per-face predictions and a floor:
test_shipped_predictions.py.)"""

import json

import numpy as np
import pytest

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import BACKENDS, report_name
from fer_demo.core.labels import FER_LABELS
from train.release import RESCORE_TOLERANCE

SHIPPED = ckpt.SHIPPED_CHECKPOINT
TEST_FACES = 3589  # FER2013 PrivateTest
BAR = 0.70  # the test accuracy without TTA that the README claims


def _report(split: str, backend: str) -> dict:
    path = SHIPPED / report_name(split, backend)
    assert path.is_file(), f"the shipped checkpoint has no {path.name}"
    return json.loads(path.read_text())


def test_shipped_checkpoint_is_small_and_was_selected_on_validation():
    assert (SHIPPED / ckpt.MODEL_FILE).stat().st_size < 25e6
    config = ckpt.read_config(SHIPPED)
    assert config["metrics"]["split"] == "validation"  # selected on validation only
    scored = _report("validation", "torch")["no_tta"]  # the validation split scored again by the evaluator
    for key in ("accuracy", "macro_f1", "ece", "n"):
        assert scored[key] == pytest.approx(config["metrics"][key], abs=1e-9), key
    chosen = config["metrics_in_training"]  # the figure that chose the epoch and weights during training
    assert chosen["split"] == "validation" and chosen["epoch"] == config["epoch"]
    assert abs(chosen["accuracy"] - scored["accuracy"]) <= RESCORE_TOLERANCE


@pytest.mark.parametrize("backend", BACKENDS)
def test_shipped_test_reports_agree_with_their_confusion_matrices(backend):
    report = _report("test", backend)
    assert report["split"] == "test" and report["n"] == TEST_FACES and report["backend"] == backend
    for key in ("no_tta", "tta"):
        m = report[key]
        cm = np.asarray(m["confusion"])
        assert m["labels"] == list(FER_LABELS) and m["n"] == cm.sum() == TEST_FACES, key
        assert m["accuracy"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-9), key
        np.testing.assert_allclose(m["confusion_normalized"], cm / cm.sum(1, keepdims=True), atol=1e-9)
        f1 = []
        for i, name in enumerate(FER_LABELS):
            c = m["per_class"][name]
            assert c["support"] == cm[i].sum()
            assert c["recall"] == pytest.approx(cm[i, i] / cm[i].sum(), abs=1e-9), (key, name)
            assert c["precision"] == pytest.approx(cm[i, i] / cm[:, i].sum(), abs=1e-9), (key, name)
            f1.append(c["f1"])
        assert m["macro_f1"] == pytest.approx(np.mean(f1), abs=1e-9), key
        # a sanity bound: the temperatures bring ECE near 0.03 (test_calibration.py holds it there)
        assert 0 <= m["ece"] < 0.15 and m["nll"] > 0
    assert np.array_equal(np.sum(report["no_tta"]["confusion"], 1), np.sum(report["tta"]["confusion"], 1))
    assert report["no_tta"]["accuracy"] >= BAR


def test_the_int8_model_scores_like_the_float_model():
    fp, int8 = _report("test", "torch"), _report("test", "onnx-int8")
    for key in ("no_tta", "tta"):
        assert abs(fp[key]["accuracy"] - int8[key]["accuracy"]) < 0.01, key
