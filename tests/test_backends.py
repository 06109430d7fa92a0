"""The int8 ONNX classifier: agrees with PyTorch on real faces, is never used stale, and is made by train.quantize."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import DIGEST_KEY, INT8_FILE, open_int8
from fer_demo.serving.predictor import Predictor

SHIPPED = ckpt.SHIPPED_CHECKPOINT
needs_int8 = pytest.mark.skipif(not (SHIPPED / INT8_FILE).is_file(), reason=f"no shipped {INT8_FILE}")


@pytest.fixture(scope="module")
def torch_predictor():
    return Predictor(backend="torch")


@pytest.fixture(scope="module")
def torch_probs(torch_predictor, fer_test_split) -> np.ndarray:
    """The PyTorch model's probabilities for conftest's test faces, computed once for the module."""
    return torch_predictor.classify(fer_test_split.images.numpy())


def _copy_weights(dest):
    """The shipped checkpoint's weights and config, without its int8 model."""
    dest.mkdir()
    for name in (ckpt.MODEL_FILE, ckpt.CONFIG_FILE):
        shutil.copy2(SHIPPED / name, dest / name)
    return dest


@needs_int8
def test_shipped_app_classifies_with_int8_and_agrees_with_torch(predictor, torch_probs, fer_test_split):
    assert predictor.backend == "onnx-int8" and predictor.backend_note == ""
    int8, fp = predictor.classify(fer_test_split.images.numpy()), torch_probs
    assert int8.shape == fp.shape == (len(fer_test_split), 7)
    np.testing.assert_allclose(int8.sum(1), 1, atol=1e-4)
    assert (int8.argmax(1) == fp.argmax(1)).mean() >= 0.95
    assert np.abs(int8 - fp).mean() < 0.02
    labels = fer_test_split.labels.numpy()
    assert abs((int8.argmax(1) == labels).mean() - (fp.argmax(1) == labels).mean()) <= 0.03


@needs_int8
def test_stale_or_broken_int8_model_is_never_used(tmp_path):
    folder = _copy_weights(tmp_path / "ckpt")
    shutil.copy2(SHIPPED / INT8_FILE, folder / INT8_FILE)
    assert Predictor(folder).backend == "onnx-int8"

    model, config = ckpt.load_model(folder)
    next(model.parameters()).data.mul_(1.01)  # new weights, old int8 copy
    ckpt.write_model(folder, model, config)
    fallback = Predictor(folder)
    assert fallback.backend == "torch" and "train.quantize" in fallback.backend_note
    with pytest.raises(ckpt.CheckpointError, match="other weights"):
        Predictor(folder, backend="onnx-int8")

    (folder / INT8_FILE).write_bytes(b"PK\x03\x04 not an onnx model")
    assert Predictor(folder).backend == "torch"
    with pytest.raises(ckpt.CheckpointError, match="not a loadable ONNX model"):
        Predictor(folder, backend="onnx-int8")
    (folder / INT8_FILE).unlink()
    with pytest.raises(ckpt.CheckpointError, match="no model.int8.onnx"):
        Predictor(folder, backend="onnx-int8")
    with pytest.raises(ValueError, match="unknown backend"):
        Predictor(folder, backend="tensorrt")


@pytest.mark.slow
def test_quantize_then_evaluate_with_the_int8_backend(tmp_path, capsys, fer2013, fer_test_split, torch_probs):
    from train import evaluate, quantize

    folder = _copy_weights(tmp_path / "ckpt")
    faces = "64"  # calibration faces: the int8 copy still agrees with PyTorch on 199 of the 200 test faces
    assert quantize.main([str(folder), "--out", str(folder), "--dataset", str(fer2013), "--faces", faces]) == 0
    assert f"{faces} validation faces" in capsys.readouterr().out
    meta = open_int8(folder).metadata
    assert meta["fer_demo.calibration_faces"] == faces and len(meta[DIGEST_KEY]) == 64

    int8 = Predictor(folder, backend="onnx-int8").classify(fer_test_split.images.numpy())
    assert (int8.argmax(1) == torch_probs.argmax(1)).mean() >= 0.95

    assert evaluate.main(["--checkpoint", str(folder), "--dataset", str(fer2013), "--limit", "64",
                          "--backend", "onnx-int8", "--out", str(tmp_path / "out")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    report = json.loads((tmp_path / "out" / "test_report.onnx-int8.json").read_text())
    assert line["backend"] == report["backend"] == "onnx-int8"
    assert line["accuracy"] == report["no_tta"]["accuracy"] > 0.5
    assert (tmp_path / "out" / "test_confusion.onnx-int8.png").is_file()
    assert not (tmp_path / "out" / "test_report.json").exists()


def test_quantize_calibrates_on_the_chosen_split_and_never_on_test_faces(tmp_path, monkeypatch, capsys, fer_data):
    """The faces train.quantize calibrates on are the seeded subset of --split (validation by default); test
    faces are refused before anything is loaded or written. (The quantizer itself: the slow test above.)"""
    from train import quantize

    calibrated = []

    def record(folder, faces, **kwargs):
        calibrated.append(faces)
        (tmp_path / INT8_FILE).write_bytes(b"int8")
        return tmp_path / INT8_FILE

    monkeypatch.setattr(quantize, "write_int8", record)
    dataset = ["--dataset", str(fer_data.root), "--out", str(tmp_path / "int8")]
    assert quantize.main([str(SHIPPED), *dataset, "--faces", "64"]) == 0
    assert "64 validation faces" in capsys.readouterr().out
    assert quantize.main([str(SHIPPED), *dataset, "--split", "train", "--faces", "32", "--seed", "1"]) == 0
    assert [len(f) for f in calibrated] == [64, 32]
    assert np.array_equal(calibrated[0].numpy(), fer_data.split("validation", 64).images.numpy())
    assert np.array_equal(calibrated[1].numpy(), fer_data.split("train", 32, seed=1).images.numpy())
    with pytest.raises(SystemExit) as info:
        quantize.main([str(SHIPPED), *dataset, "--split", "test"])
    assert info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert len(calibrated) == 2  # nothing was quantized with test faces
