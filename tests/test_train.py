"""The trainer on real FER2013 faces: a smoke run, exact resume, Ctrl-C, and --pretrained from a local file."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from fer_demo import checkpoint as ckpt
from fer_demo.model import create_fer_model
from train.train import main as train_main

from .fer_samples import FER2013, REPO

pytestmark = pytest.mark.skipif(not FER2013.is_dir(), reason=f"FER2013 not found at {FER2013}")
SMALL = ["--dataset", str(FER2013), "--limit-train", "256", "--limit-eval", "64", "--batch-size", "64"]


def test_one_epoch_run_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "run"
    assert train_main(SMALL + ["--epochs", "1", "--out", str(out)]) == 0
    model, config = ckpt.load_model(out)  # the run folder resolves to best/
    assert config["arch"] == "resnet18" and config["labels"][3] == "happy"
    assert config["metrics"]["split"] == "validation" and 0 <= config["metrics"]["accuracy"] <= 1
    assert config["train_args"]["epochs"] == 1 and config["dataset_revision"]
    logits = model(torch.zeros(2, 1, 48, 48))
    assert logits.shape == (2, 7)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["epoch"] == 1
    assert (out / "curves.png").stat().st_size > 1000
    report = json.loads((out / "best" / "test_report.json").read_text())
    assert report["split"] == "test" and report["n"] == 64 and "tta" in report
    assert (out / "last" / ckpt.STATE_FILE).is_file()


def _weights(folder):
    return load_file(str(folder / ckpt.MODEL_FILE))


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    args = SMALL + ["--epochs", "2", "--no-test", "--ema", "0.9"]
    assert train_main(args + ["--out", str(whole)]) == 0
    assert train_main(args + ["--out", str(split), "--max-steps", "5"]) == 0  # stops mid epoch 2
    assert ckpt.read_state(split / "last")["step"] == 5
    assert train_main(["--resume", str(split)]) == 0
    a, b = _weights(whole / "last"), _weights(split / "last")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    ema_a, ema_b = ckpt.read_state(whole / "last")["ema"], ckpt.read_state(split / "last")["ema"]
    for key in ema_a:
        torch.testing.assert_close(ema_a[key], ema_b[key], rtol=1e-4, atol=1e-5, msg=key)
    assert len((split / "metrics.jsonl").read_text().splitlines()) == 2


def test_ctrl_c_saves_a_resumable_checkpoint(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "train.train", "--dataset", str(FER2013), "--limit-train", "4000",
           "--limit-eval", "64", "--batch-size", "32", "--epochs", "1", "--no-test", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline, seen = time.time() + 120, ""
    while time.time() < deadline and "epoch 1/1:" not in seen:
        seen += proc.stdout.read(1)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + rest
    assert "saved a resumable checkpoint" in rest
    state = ckpt.read_state(out / "last")
    assert 0 < state["step"] < 4000 // 32


def test_pretrained_weights_from_a_local_file(tmp_path):
    imagenet = timm.create_model("resnet18", pretrained=False)  # stands in for downloaded ImageNet weights
    path = tmp_path / "resnet18_imagenet.safetensors"
    save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, str(path))
    model = create_fer_model("resnet18", "s2", pretrained=True, pretrained_file=str(path))
    src = imagenet.state_dict()
    got = model.state_dict()
    # timm folds the RGB stem into one channel by summing over the input channels
    torch.testing.assert_close(got["conv1.weight"], src["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(got["layer3.1.conv2.weight"], src["layer3.1.conv2.weight"])
    assert got["fc.weight"].shape == (7, 512)  # a fresh 7-class head
    fresh = create_fer_model("resnet18", "s2")
    assert not torch.equal(fresh.state_dict()["layer3.1.conv2.weight"], src["layer3.1.conv2.weight"])


def test_torchrun_ddp_on_cpu(tmp_path):
    """Two processes (gloo on CPU) train one epoch; only rank 0 writes the run folder."""
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.run([*torchrun, "-m", "train.train", *SMALL, "--batch-size", "32", "--epochs", "1",
                           "--no-test", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("epoch 1: val acc") == 1  # rank 0 alone logs
    config = ckpt.read_config(out / "best")
    assert config["step"] == 256 // (32 * 2)
    assert ckpt.read_state(out / "last")["step"] == 4
