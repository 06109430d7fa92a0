"""Trainer faults: kill -9 then --resume, broken checkpoints, and saves that fail."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.paths import LOCAL_DATASET, REPO_ROOT
from train.train import main as train_main

from .support.fer_samples import needs_fer2013

# 12 steps an epoch of about 0.1 s each here (one thread): SIGKILL comes half a second into epoch 2
RUN = ["--dataset", str(LOCAL_DATASET), "--limit-train", "192", "--limit-eval", "32", "--batch-size", "16",
       "--epochs", "2", "--ema", "0.9"]
STEPS_PER_EPOCH = 192 // 16


@pytest.mark.slow  # a subprocess trainer
@needs_fer2013
def test_kill_9_mid_epoch_leaves_the_last_epochs_checkpoint_and_resume_finishes_the_run(tmp_path):
    """SIGKILL during epoch 2: last/ holds epoch 1's checkpoint, whole, and --resume completes the run from it.
    (That a run resumed from an epoch's checkpoint ends with the weights of an uninterrupted one:
    test_train.py::test_resume_gives_the_same_weights_as_an_uninterrupted_run[time-budget].)"""
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "train.train", *RUN, "--out", str(killed)], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen, deadline = "", time.time() + 300
    while "epoch 2/2:" not in seen and time.time() < deadline and proc.poll() is None:
        seen += proc.stdout.read(1)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed:\n" + seen
    assert ckpt.read_state(killed / "last")["step"] == STEPS_PER_EPOCH  # end of epoch 1 survived
    ckpt.load_model(killed / "last")  # and loads
    assert train_main(["--resume", str(killed)]) == 0
    assert ckpt.read_state(killed / "last")["step"] == 2 * STEPS_PER_EPOCH
    assert [json.loads(r)["epoch"] for r in (killed / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    from fer_demo.core.model import create_fer_model

    folder = tmp_path_factory.mktemp("ckpt") / "good"
    config = {"arch": "resnet18", "stem": "s2", "input_size": 48, "mean": 0.5, "std": 0.3,
              "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]}
    with ckpt.atomic_dir(folder) as tmp:
        ckpt.write_model(tmp, create_fer_model(), config)
    return folder


def _copy(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_truncated_weights_give_a_clear_error(good_checkpoint, tmp_path):
    bad = _copy(good_checkpoint, tmp_path / "truncated")
    data = (bad / ckpt.MODEL_FILE).read_bytes()
    (bad / ckpt.MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match="corrupt or not a safetensors file"):
        ckpt.load_model(bad)


def test_pickle_file_is_refused_not_unpickled(good_checkpoint, tmp_path):
    bad = _copy(good_checkpoint, tmp_path / "pickled")
    torch.save(torch.nn.Linear(2, 2).state_dict(), bad / ckpt.MODEL_FILE)
    with pytest.raises(ckpt.CheckpointError, match="corrupt or not a safetensors file"):
        ckpt.load_model(bad)


def test_foreign_checkpoint_gives_a_clear_error(good_checkpoint, tmp_path):
    foreign = _copy(good_checkpoint, tmp_path / "foreign")
    (foreign / ckpt.CONFIG_FILE).write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ckpt.CheckpointError, match="not a fer-demo config"):
        ckpt.load_model(foreign)
    other = _copy(good_checkpoint, tmp_path / "other-arch")
    config = json.loads((other / ckpt.CONFIG_FILE).read_text())
    (other / ckpt.CONFIG_FILE).write_text(json.dumps({**config, "arch": "resnet50"}))
    with pytest.raises(ckpt.CheckpointError, match="do not fit resnet50"):
        ckpt.load_model(other)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint"):
        ckpt.load_model(tmp_path)


def test_a_config_from_make_config_loads_back_as_written(tmp_path):
    from fer_demo.core.model import create_fer_model

    config = ckpt.make_config("resnet18", "s2", 48, dataset="x", metrics={"accuracy": 0.5}, epoch=1)
    assert set(ckpt.MODEL_KEYS) <= config.keys() and config["format"] == ckpt.FORMAT
    assert "step" not in config and "train_args" not in config, "record fields only where given"
    with ckpt.atomic_dir(tmp_path / "made") as tmp:
        ckpt.write_model(tmp, create_fer_model(), config)
    assert ckpt.load_model(tmp_path / "made")[1] == config


def test_configs_are_read_by_their_format_and_retired_fields_are_ignored(good_checkpoint, tmp_path):
    config = ckpt.read_config(good_checkpoint)  # no format: read as this one
    older = _copy(good_checkpoint, tmp_path / "older")  # as the shipped checkpoint and older runs wrote it
    (older / ckpt.CONFIG_FILE).write_text(json.dumps({**config, "format": "fer-demo/1", "num_classes": 7,
                                                      "storage_dtype": "float16"}))
    ckpt.load_model(older)
    newer = _copy(good_checkpoint, tmp_path / "newer")
    (newer / ckpt.CONFIG_FILE).write_text(json.dumps({**config, "format": "fer-demo/2"}))
    with pytest.raises(ckpt.CheckpointError, match="format 'fer-demo/2'; this version reads 'fer-demo/1'"):
        ckpt.load_model(newer)


def test_resume_from_a_folder_without_training_state(good_checkpoint, capsys):
    assert train_main(["--resume", str(good_checkpoint)]) == 2
    assert "no resumable training state" in capsys.readouterr().err


def test_a_failing_save_is_a_clear_error_and_keeps_the_previous_checkpoint(good_checkpoint, tmp_path, monkeypatch):
    folder = _copy(good_checkpoint, tmp_path / "kept")
    before = {f.name: f.read_bytes() for f in folder.iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ckpt, "save_file", disk_full)
    with pytest.raises(ckpt.CheckpointError, match="No space left on device.*previous checkpoint.*intact"):
        with ckpt.atomic_dir(folder) as tmp:
            ckpt.write_model(tmp, torch.nn.Linear(2, 2), {})
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["kept"]  # no temp folder left behind


@needs_fer2013
def test_trainer_reports_a_failing_save(tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(ckpt, "save_file", read_only)
    code = train_main(["--dataset", str(LOCAL_DATASET), "--limit-train", "64", "--limit-eval", "32",
                       "--batch-size", "32", "--epochs", "1", "--out", str(tmp_path / "run")])
    assert code == 2
    assert "Read-only file system" in capsys.readouterr().err
