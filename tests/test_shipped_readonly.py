"""The shipped checkpoint is read-only data: evaluating, quantizing and exporting it, as a new user would (no
--out), write under runs/ in the working folder and leave every shipped file as it was. (Only train.release
writes there, naming the folder as its output.)"""

from __future__ import annotations

import hashlib

import pytest

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.backends import INT8_FILE, report_name


def _digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.slow
def test_evaluate_quantize_and_export_leave_the_shipped_files_unchanged(fer2013, tmp_path, monkeypatch):
    from fer_demo.serving.predictor import Predictor
    from train import evaluate, export, quantize

    shipped = ckpt.SHIPPED_CHECKPOINT
    before = _digests(shipped)
    monkeypatch.chdir(tmp_path)  # runs/ is relative to the working folder, as train.train's runs are
    dataset = ["--dataset", str(fer2013)]
    assert evaluate.main([*dataset, "--split", "test", "--limit", "20"]) == 0
    assert evaluate.main([*dataset, "--split", "validation", "--limit", "20", "--tta", "--backend", "onnx-int8"]) == 0
    assert quantize.main([*dataset, "--faces", "16"]) == 0
    assert export.main([str(shipped)]) == 0
    assert _digests(shipped) == before

    runs = tmp_path / "runs"
    evaluated = runs / "evaluate" / shipped.name
    assert {report_name("test", "torch"), report_name("validation", "onnx-int8")} <= {p.name for p in
                                                                                       evaluated.iterdir()}
    quantized = runs / "quantize" / shipped.name
    assert {INT8_FILE, ckpt.MODEL_FILE, ckpt.CONFIG_FILE} <= {p.name for p in quantized.iterdir()}
    assert Predictor(quantized, backend="onnx-int8").backend == "onnx-int8"  # a checkpoint with a fresh int8 copy
    assert (runs / "export" / shipped.name / ckpt.MODEL_FILE).is_file()


def test_release_names_the_shipped_folder_as_the_output_of_each_step(monkeypatch, tmp_path):
    """train.release's packaging passes --out DEST to quantize and every evaluation, and fits the temperatures
    into DEST's config: the one writer on purpose."""
    from train import release

    calls = []
    for step in ("export", "quantize", "calibrate", "evaluate"):
        monkeypatch.setattr(getattr(release, step), "main", lambda argv, step=step: calls.append((step, argv)) or 0)
    monkeypatch.setattr(release, "record_rescore", lambda dest: None)
    dest = tmp_path / "shipped"
    release.package(tmp_path / "run", dest, "fer2013")
    assert calls[0] == ("export", [str(tmp_path / "run"), str(dest)])
    assert ("calibrate", [str(dest), "--dataset", "fer2013"]) in calls
    for step, argv in calls[1:]:
        assert step == "calibrate" or argv[argv.index("--out") + 1] == str(dest), (step, argv)
