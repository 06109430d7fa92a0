"""The trainer on real FER2013 faces: a smoke run, honest validation, exact resume, Ctrl-C, DDP,
and --pretrained from a local file."""

import copy
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.evaluation import classification_metrics
from fer_demo.core.paths import LOCAL_DATASET, REPO_ROOT
from fer_demo.core.inference import predict_probs
from fer_demo.core.model import create_fer_model
from fer_demo.core.transforms import FER_MEAN, FER_STD
from train.train import PER_INVOCATION, parse_args, validate
from train import train as train_module
from train.train import main as train_main

from .support.fer_samples import needs_fer2013

# The run most tests here read: two epochs of 4 steps, EMA on, validated on 32 faces. And how a first invocation
# of it stops: its extra arguments, the step it leaves in last/ and its exit code. Ctrl-C is a real SIGINT that
# this process sends itself during step 5.
EVAL_FACES = 32
TWO_EPOCHS = ["--dataset", str(LOCAL_DATASET), "--limit-train", "64", "--limit-eval", str(EVAL_FACES),
              "--batch-size", "16", "--epochs", "2", "--ema", "0.9"]
STOPS = {"max-steps": (["--max-steps", "5"], 5, 0),  # mid epoch 2
         "time-budget": (["--time-budget-min", "0"], 4, 0),  # at the first epoch boundary
         "ctrl-c": ([], 5, 130)}  # mid epoch 2: the trainer finishes the step, saves last/ and exits 130
CTRL_C_STEP = 5


def _ctrl_c_during_step(monkeypatch, step: int) -> None:
    """SIGINT to this process (as a terminal's Ctrl-C sends it) in the middle of the trainer's `step`th step."""
    real, calls = train_module.train_step, itertools.count(1)

    def step_then_sigint(*args):
        if next(calls) == step:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args)

    monkeypatch.setattr(train_module, "train_step", step_then_sigint)


def _validation_faces(fer_data, n: int = EVAL_FACES):
    """The validation faces a run with --limit-eval n (seed 0) scores."""
    return fer_data.split("validation", n)


@pytest.fixture(scope="module")
def two_epoch_run(fer2013, tmp_path_factory):
    """An uninterrupted run of TWO_EPOCHS: what every stopped and resumed run of it must equal."""
    out = tmp_path_factory.mktemp("train") / "whole"
    assert train_main(TWO_EPOCHS + ["--out", str(out)]) == 0
    return out


def test_a_run_writes_a_loadable_checkpoint_and_leaves_the_test_split_alone(two_epoch_run):
    out = two_epoch_run
    model, config = ckpt.load_model(out)  # the run folder resolves to best/
    assert config["arch"] == "resnet18" and config["labels"][3] == "happy"
    assert config["metrics"]["split"] == "validation" and 0 <= config["metrics"]["accuracy"] <= 1
    assert config["train_args"]["epochs"] == 2 and config["dataset_revision"]
    logits = model(torch.zeros(2, 1, 48, 48))
    assert logits.shape == (2, 7)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert (out / "curves.png").stat().st_size > 1000
    assert (out / "last" / ckpt.STATE_FILE).is_file()
    assert not list(out.rglob("test_*")), "a run scores the test split only when asked (--test)"


def test_best_checkpoint_records_the_score_it_gets_when_loaded_from_disk(two_epoch_run, fer_data):
    """The validation figures best/ records are those of an eval-mode scoring of best/ itself."""
    model, config = ckpt.load_model(two_epoch_run)
    faces = _validation_faces(fer_data)
    rescored = classification_metrics(predict_probs(model, faces.images, config), faces.labels)
    recorded = json.loads((two_epoch_run / "best" / "validation_report.json").read_text())
    assert config["metrics"]["n"] == rescored["n"] == len(faces)
    for key in ("accuracy", "macro_f1", "ece"):
        assert config["metrics"][key] == pytest.approx(rescored[key], abs=1e-9), key
    assert recorded["nll"] == pytest.approx(rescored["nll"], abs=1e-9)


def test_test_split_is_scored_only_when_asked(two_epoch_run, tmp_path):
    out = shutil.copytree(two_epoch_run, tmp_path / "run")
    assert train_main(["--resume", str(out), "--test"]) == 0  # a finished run: only the end-of-run steps
    report = json.loads((out / "best" / "test_report.json").read_text())
    assert report["split"] == "test" and report["n"] == EVAL_FACES and "tta" in report


def _bn_buffers(model) -> dict[str, torch.Tensor]:
    return {f"{name}.{buf}": t.clone() for name, m in model.named_modules()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for buf, t in m.named_buffers()}


def test_validation_leaves_batchnorm_statistics_and_the_training_mode_alone(fer_data):
    model = create_fer_model().train()
    with torch.no_grad():  # running statistics unlike the defaults, as after some training
        model(torch.randn(16, 1, 48, 48))
    ema = copy.deepcopy(model)
    before = {"raw": _bn_buffers(model), "ema": _bn_buffers(ema)}
    assert before["raw"] and any(k.endswith("num_batches_tracked") for k in before["raw"])
    scored = validate({"raw": model, "ema": ema}, _validation_faces(fer_data), {"input_size": 48, "mean": FER_MEAN,
                                                                        "std": FER_STD})
    assert scored.keys() == {"raw", "ema"} and scored["raw"]["n"] == EVAL_FACES
    for name, m in (("raw", model), ("ema", ema)):
        after = _bn_buffers(m)
        assert after.keys() == before[name].keys()
        assert all(torch.equal(before[name][k], after[k]) for k in after), name
        assert m.training, f"validate left the {name} model in eval mode"


def _weights(folder):
    return load_file(str(folder / ckpt.MODEL_FILE))


def test_torch_threads_keeps_its_old_name_as_a_hidden_alias(capsys):
    assert parse_args(["--torch-threads", "3"]).workers_threads == 3
    assert parse_args(["--workers-threads", "2"]).workers_threads == 2  # older commands
    assert parse_args([]).workers_threads is None and "workers_threads" in PER_INVOCATION
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    shown = capsys.readouterr().out
    assert "--torch-threads" in shown and "--workers-threads" not in shown


@pytest.mark.parametrize("stop", STOPS)
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(two_epoch_run, tmp_path, stop, capsys, monkeypatch):
    whole, split = two_epoch_run, tmp_path / "split"
    stop_args, step, code = STOPS[stop]
    if stop == "ctrl-c":
        _ctrl_c_during_step(monkeypatch, CTRL_C_STEP)
    assert train_main(TWO_EPOCHS + ["--out", str(split)] + stop_args) == code
    monkeypatch.undo()
    assert ckpt.read_state(split / "last")["step"] == step
    said = capsys.readouterr().out
    if stop == "time-budget":
        assert f"continue with python -m train.train --resume {split}" in said
    if stop == "ctrl-c":
        assert f"saved a resumable checkpoint at step {step}" in said and "interrupt:" in said
    assert train_main(["--resume", str(split)]) == 0
    a, b = _weights(whole / "last"), _weights(split / "last")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ema_a, ema_b = ckpt.read_state(whole / "last")["ema"], ckpt.read_state(split / "last")["ema"]
    for key in ema_a:
        assert torch.equal(ema_a[key], ema_b[key]), key
    assert len((split / "metrics.jsonl").read_text().splitlines()) == 2


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


@pytest.mark.slow  # torchrun: two subprocess trainers
@needs_fer2013
def test_torchrun_ddp_on_cpu(tmp_path):
    """Two processes (gloo on CPU) train one epoch; only rank 0 writes the run folder."""
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = ["--dataset", str(LOCAL_DATASET), "--limit-train", "128", "--limit-eval", "32", "--batch-size", "32",
           "--epochs", "1", "--out", str(out)]  # 2 steps of 2 x 32 faces
    proc = subprocess.run([*torchrun, "-m", "train.train", *run], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("epoch 1: val acc") == 1  # rank 0 alone logs
    config = ckpt.read_config(out / "best")
    assert config["step"] == ckpt.read_state(out / "last")["step"] == 128 // (32 * 2)


def _host_reads_per_epoch(monkeypatch, tmp_path, steps: int) -> int:
    """How many times one training epoch of `steps` steps reads a tensor's value back to Python (validation and
    checkpointing, which come after, excluded). On a GPU each read waits for the device."""
    reads = itertools.count()

    def counted_read(real):
        return lambda self, *a, **k: (next(reads), real(self, *a, **k))[1]

    for name in ("item", "tolist", "__float__", "__int__", "__bool__"):
        monkeypatch.setattr(torch.Tensor, name, counted_read(getattr(torch.Tensor, name)))
    counted = {}
    real_epoch = train_module.train_one_epoch

    def counting_epoch(*args):
        start = next(reads)
        stats = real_epoch(*args)
        counted["reads"] = next(reads) - start - 1
        return stats

    monkeypatch.setattr(train_module, "train_one_epoch", counting_epoch)
    run = ["--dataset", str(LOCAL_DATASET), "--limit-train", str(16 * steps), "--limit-eval", "16",
           "--batch-size", "16", "--epochs", "1", "--ema", "0.9", "--out", str(tmp_path / f"steps{steps}")]
    assert train_main(run) == 0
    monkeypatch.undo()
    return counted["reads"]


@needs_fer2013
def test_a_training_step_reads_nothing_back_from_the_device(monkeypatch, tmp_path):
    """The loss, accuracy and augmentation randoms stay on the batch's device: a longer epoch adds no host read
    (one per step was a host sync per step, which set an H200's pace at a fraction of what it computes)."""
    few, more = (_host_reads_per_epoch(monkeypatch, tmp_path, steps) for steps in (2, 6))
    assert few == more, f"{few} reads for 2 steps, {more} for 6: a step reads a tensor back"


def test_a_run_saved_on_another_kind_of_device_resumes_with_a_fresh_augmentation_stream_and_says_so():
    """A CUDA generator's state (16 bytes) does not fit a CPU generator: the resume goes on, seeded by the step."""
    said = []
    run = type("Run", (), {"aug_gen": torch.Generator(), "args": parse_args(["--seed", "3"]), "rank": 0,
                           "device": torch.device("cpu"), "log": said.append})()
    train_module.restore_augment_stream(run, torch.zeros(16, dtype=torch.uint8), step=40)
    first = torch.rand(4, generator=run.aug_gen)
    train_module.restore_augment_stream(run, torch.zeros(16, dtype=torch.uint8), step=40)
    assert torch.equal(first, torch.rand(4, generator=run.aug_gen)), "the fresh stream is a function of the step"
    assert len(said) == 2 and "another kind of device" in said[0]
    saved = torch.Generator().manual_seed(5).get_state()
    train_module.restore_augment_stream(run, saved, step=40)
    assert torch.equal(torch.rand(4, generator=run.aug_gen), torch.rand(4, generator=torch.Generator().manual_seed(5)))
    assert len(said) == 2, "a state of this device's kind continues the stream silently"
