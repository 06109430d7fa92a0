"""The evaluator's figures, checked by hand, and the same accuracy whatever schema the split comes in."""

import json

import pytest
import torch

from fer_demo.core.evaluation import classification_metrics, expected_calibration_error
from fer_demo.core.labels import FACE_SIZE, FER_LABELS, NUM_CLASSES
from fer_demo.core.model import create_fer_model
from fer_demo.core.paths import LOCAL_DATASET
from fer_demo.core.inference import predict_probs
from fer_demo.core.transforms import FER_MEAN, FER_STD
from train.evaluate import main as evaluate_main

from .support.fer_samples import kaggle_rows, write_kaggle_csv, write_parquet_split
from .support.predictions import counted_figures, recounted

EVAL_FACES = 32  # test faces the evaluator's own run scores, with and without TTA
SCHEMA_FACES = 64  # test faces scored in each schema


def _probs(preds, confidence):
    probs = torch.full((len(preds), 7), 0.0)
    for i, (p, c) in enumerate(zip(preds, confidence)):
        probs[i] = (1 - c) / 6
        probs[i, p] = c
    return probs


def test_metrics_match_a_hand_computed_confusion_matrix():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    preds = [0, 1, 1, 2, 2, 0]
    m = classification_metrics(_probs(preds, [0.9, 0.6, 0.8, 0.7, 0.95, 0.5]), labels)
    assert m["confusion"][0][:3] == [1, 1, 0]
    assert m["confusion"][1][:3] == [0, 1, 0]
    assert m["confusion"][2][:3] == [1, 0, 2]
    assert m["accuracy"] == pytest.approx(4 / 6)
    pc = m["per_class"]
    assert (pc["angry"]["precision"], pc["angry"]["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert (pc["disgust"]["precision"], pc["disgust"]["recall"]) == pytest.approx((1 / 2, 1))
    assert (pc["fear"]["precision"], pc["fear"]["recall"]) == pytest.approx((1, 2 / 3))
    assert pc["fear"]["f1"] == pytest.approx(0.8) and pc["happy"]["support"] == 0
    assert m["macro_f1"] == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)  # over classes present
    assert m["confusion_normalized"][2][:3] == pytest.approx([1 / 3, 0, 2 / 3])


def test_expected_calibration_error_by_hand():
    labels = torch.tensor([0, 0, 0, 0])
    # two at 0.9 confidence, both right; two at 0.6, one right -> |0.9-1|*0.5 + |0.6-0.5|*0.5 = 0.1
    probs = _probs([0, 0, 0, 1], [0.9, 0.9, 0.6, 0.6])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.1, abs=1e-6)


def _evaluate(capsys, *args):
    assert evaluate_main(list(args)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_evaluator_last_line_report_and_predictions(tmp_path, capsys, fer_data):
    line = _evaluate(capsys, "--dataset", str(LOCAL_DATASET), "--split", "test", "--limit", str(EVAL_FACES), "--tta",
                     "--out", str(tmp_path))
    assert line["n"] == EVAL_FACES and line["tta"] is True
    assert {"accuracy", "macro_f1", "ece", "accuracy_no_tta"} <= set(line)
    report = json.loads((tmp_path / "test_report.json").read_text())
    cm = report["no_tta"]["confusion"]
    assert sum(map(sum, cm)) == EVAL_FACES
    assert line["accuracy_no_tta"] == pytest.approx(sum(cm[i][i] for i in range(7)) / EVAL_FACES)
    assert line["accuracy"] == report["tta"]["accuracy"]
    assert (tmp_path / "test_confusion.png").stat().st_size > 1000
    predictions = json.loads((tmp_path / "test_predictions.json").read_text())  # the faces behind the figures
    assert predictions["true"] == fer_data.arrays("test", EVAL_FACES)[1].tolist()  # the --limit subset, in order
    for key in ("no_tta", "tta"):
        assert recounted(predictions, key) == counted_figures(report[key])


def test_same_accuracy_from_parquet_reordered_labels_and_kaggle_csv(tmp_path, capsys, fer_data):
    images, labels = fer_data.arrays("test", SCHEMA_FACES)
    hub = tmp_path / "hub"
    write_parquet_split(hub, "test", images, labels, list(FER_LABELS))
    reordered = tmp_path / "reordered"
    write_parquet_split(reordered, "test", images, labels,
                        ["Sadness", "Happiness", "Neutral", "Surprised", "Anger", "Fear", "Disgust"])
    csv = write_kaggle_csv(tmp_path / "fer2013.csv", kaggle_rows(images, labels, "PrivateTest"))
    lines = [_evaluate(capsys, "--dataset", str(d), "--split", "test", "--out", str(tmp_path / f"r{i}"))
             for i, d in enumerate((hub, reordered, csv))]
    assert lines[0]["n"] == lines[1]["n"] == lines[2]["n"] == SCHEMA_FACES
    assert lines[0]["accuracy"] == lines[1]["accuracy"] == lines[2]["accuracy"]
    assert lines[0]["macro_f1"] == lines[1]["macro_f1"] == lines[2]["macro_f1"]


@pytest.mark.parametrize("tta", [False, True])
def test_predict_probs_on_no_faces_is_an_empty_batch(tta):
    config = {"input_size": FACE_SIZE, "mean": FER_MEAN, "std": FER_STD}
    no_faces = torch.zeros((0, FACE_SIZE, FACE_SIZE), dtype=torch.uint8)
    probs = predict_probs(create_fer_model("resnet18", "s2"), no_faces, config, tta=tta)
    assert probs.shape == (0, NUM_CLASSES) and probs.dtype == torch.float32


@pytest.mark.parametrize("limit", ["0", "-5", "ten"])
def test_a_limit_of_no_faces_is_a_clear_error(limit, capsys):
    with pytest.raises(SystemExit) as exit_info:  # argparse's usage error, before anything is loaded
        evaluate_main(["--dataset", str(LOCAL_DATASET), "--limit", limit])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--limit" in err and ("at least 1 face" in err or "whole number" in err)


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert evaluate_main(["--checkpoint", str(tmp_path / "nope"), "--dataset", str(LOCAL_DATASET)]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
