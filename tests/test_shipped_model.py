"""Regression test of the shipped model on a fixed sample of real PrivateTest faces."""

import json

import pytest

from fer_demo import checkpoint as ckpt
from fer_demo.data import load_fer
from fer_demo.evaluation import predict_probs

from .fer_samples import FER2013

SAMPLE = 400  # a seeded subset of the test split (PrivateTest)
# The full test split gives 0.6815 without TTA (test_report.json) and this sample 0.6925;
# the floor sits a little under both, so a regression of a few points fails.
FLOOR = 0.66


def test_shipped_checkpoint_is_small_and_claims_the_bar():
    assert (ckpt.SHIPPED_CHECKPOINT / ckpt.MODEL_FILE).stat().st_size < 25e6
    report = json.loads((ckpt.SHIPPED_CHECKPOINT / "test_report.json").read_text())
    assert report["split"] == "test" and report["n"] == 3589
    assert report["no_tta"]["accuracy"] >= 0.68
    config = ckpt.read_config(ckpt.SHIPPED_CHECKPOINT)
    assert config["metrics"]["split"] == "validation"  # selected on validation only


@pytest.mark.skipif(not FER2013.is_dir(), reason=f"FER2013 not found at {FER2013}")
def test_shipped_model_accuracy_stays_above_the_floor():
    model, config = ckpt.load_model()
    faces = load_fer(str(FER2013), ("test",), limits={"test": SAMPLE}, seed=0, log=lambda *a: None)["test"]
    accuracy = (predict_probs(model, faces.images, config).argmax(1) == faces.labels).float().mean().item()
    assert accuracy >= FLOOR, f"shipped model: {accuracy:.4f} on {SAMPLE} PrivateTest faces, floor {FLOOR}"
