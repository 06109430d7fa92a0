"""The release's whole chain, for real, on a tiny copy of FER2013: recipe ablations, teachers, the ensemble's
teacher count, soft targets, both stages of distillation ablations (offline
and online targets, teacher and scratch starts), the student; then the GPU machine's results packed, unpacked
where the test split lives, and packaged (export, int8, temperatures, validation re-score, test split once).

Every run is one epoch of a few batches, so that the figures mean nothing: what this holds is that each step
hands the next what it needs, as the lent GPU machine's one window will run them (docs/training.md). The runs
train here, one after another: two trainer processes at once would take both cores from the suite's other
worker, whose browser tests time the page (test_release.py holds --jobs' processes)."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.labels import NUM_CLASSES
from tools import device_payload as payload

FACES = {"train": 98, "validation": 63, "test": 63}  # 14 and 9 of each class
BATCH = "32"


def tiny_copy(source, dest):
    """FACES of each split, the first of each class alike (the trainer refuses a split that lacks a class), in
    the Hub layout (the data set card, one parquet file a split)."""
    (dest / "data").mkdir(parents=True)
    shutil.copy2(source / "README.md", dest / "README.md")
    for split, n in FACES.items():
        name = next((source / "data").glob(f"{split}-*.parquet")).name
        table = pq.read_table(source / "data" / name)
        labels = table.column("label").to_numpy()
        rows = np.sort(np.concatenate([np.flatnonzero(labels == c)[:n // NUM_CLASSES] for c in range(NUM_CLASSES)]))
        pq.write_table(table.take(rows), dest / "data" / name)
    return dest


@pytest.fixture
def tiny_release(tmp_path, monkeypatch, fer2013, private_datasets_cache):
    import train.release as release
    from train import distill_plan as plan

    monkeypatch.setattr(release, "RUNS", tmp_path / "gpu" / "release")
    monkeypatch.setattr(release, "LOG_DIR", tmp_path / "log")
    monkeypatch.setattr(release, "COMMON", [BATCH if a == "128" else a for a in release.COMMON])
    monkeypatch.setattr(release, "ABLATION", ["--epochs", "1"])
    monkeypatch.setattr(release, "RECIPES", {k: release.Recipe(r.args, 1, r.cost) for k, r in release.RECIPES.items()})
    monkeypatch.setattr(plan, "ABLATION_EPOCHS", 1)
    monkeypatch.setattr(plan, "STUDENT_EPOCHS", 1)
    # a face of 64 is 0.016: the fp16 export of a one-epoch model may move one (test_release.py holds the check)
    monkeypatch.setattr(release, "RESCORE_TOLERANCE", 1.0)
    return release, tiny_copy(fer2013, tmp_path / "fer2013")


@pytest.mark.slow  # a dozen trainer runs, the ensemble and the packaging
def test_the_whole_chain_trains_on_one_machine_and_packages_on_another(tiny_release, tmp_path, monkeypatch):
    release, data = tiny_release
    gpu_data = tmp_path / "stage"  # the GPU machine gets no test split
    payload_tar = payload.data_tar(data)
    gpu_data.mkdir()
    (gpu_data / "fer2013.tar.part0").write_bytes(payload_tar)
    (gpu_data / "manifest.json").write_text(json.dumps({"sha256": payload.sha256(payload_tar), "parts": 1}))
    payload.unpack_data(gpu_data)
    deadline = release.Deadline(None)
    assert release.release(str(gpu_data / "fer2013"), tmp_path / "unused", deadline, train_only=True,
                           from_scratch=True)
    runs = release.RUNS
    recipe = json.loads((release.LOG_DIR / "ablations.json").read_text())["chosen"]
    for seed in (1, 2):
        assert release.run_finished(runs / f"teacher-{recipe}-seed{seed}")
    choice = json.loads((release.LOG_DIR / "distillation.json").read_text())
    assert set(choice["validation_accuracy"]) >= set(release.plan.STAGE_A)
    assert (runs / "student" / "best" / ckpt.MODEL_FILE).is_file()

    out = tmp_path / "out"
    out.mkdir()
    payload.pack_results(runs, out)
    here = tmp_path / "here" / "release"
    payload.unpack_results(out, here)
    monkeypatch.setattr(release, "RUNS", here)
    dest = tmp_path / "shipped"
    assert release.release(str(data), dest, deadline, from_scratch=True)
    config = ckpt.config_in(dest)
    assert config["metrics"]["n"] == FACES["validation"] and "temperature" in config
    test_report = json.loads((dest / "test_report.json").read_text())
    assert test_report["no_tta"]["n"] == FACES["test"]
