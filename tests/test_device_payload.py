"""The lent GPU machine's payload (tools/device_payload.py): the data set in parts that each fit a device call
beside the work tree, joined back to the very files, without the test split; and the results back: logs, configs
and the student's weights, without the other runs' weights."""

import hashlib
import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from fer_demo.core.data import load_fer
from tools import device_payload as payload

from .support.fer_samples import needs_fer2013


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_fer2013
def test_the_data_travels_in_parts_that_fit_a_call_and_join_to_the_train_and_validation_files(
        tmp_path, monkeypatch, fer2013, private_datasets_cache):
    monkeypatch.setattr(payload, "PAYLOAD", tmp_path / ".device")
    monkeypatch.setattr(payload, "download_wheels", lambda dest: (dest.mkdir(parents=True),
                                                                  (dest / "w.whl").write_bytes(b"w" * 4096),
                                                                  ["w==1"])[2])
    payload.pack(fer2013)
    calls = sorted((tmp_path / ".device").glob("call-*"))
    tree = payload.tree_bytes()
    assert len(calls) >= 2, "the data set does not fit one call beside the work tree"
    for call in calls:
        size = sum(f.stat().st_size for f in call.rglob("*") if f.is_file())
        assert size + tree <= payload.CALL_MIB << 20, call.name
    stage = tmp_path / "stage"
    for call in calls:  # what train/device_chain.sh stage does with each call's folder
        shutil.copytree(call, stage, dirs_exist_ok=True)
    payload.unpack_data(stage)
    got = sorted(p.name for p in (stage / "fer2013" / "data").iterdir())
    assert got == sorted(p.name for p in (fer2013 / "data").iterdir() if not p.name.startswith("test"))
    for name in got:
        assert _digest(stage / "fer2013" / "data" / name) == _digest(fer2013 / "data" / name)
    subset = {"splits": ("train", "validation"), "limits": {"train": 64, "validation": 64}, "log": lambda *a: None}
    splits, here = load_fer(str(stage / "fer2013"), **subset), load_fer(str(fer2013), **subset)
    for split in splits:  # the trainer reads the copy, less its test split, as it reads the original
        assert torch.equal(splits[split].images, here[split].images) and torch.equal(splits[split].labels,
                                                                                    here[split].labels)
    (stage / "fer2013.tar.part1").write_bytes(b"cut short")
    with pytest.raises(SystemExit, match="do not match"):
        payload.unpack_data(stage)


def _run(runs, name, epoch=1, weights=True):
    for sub in ("best", "last"):
        (runs / name / sub).mkdir(parents=True)
        (runs / name / sub / "config.json").write_text(json.dumps({"epoch": epoch}))
        if weights:
            save_file({"w": torch.randn(8)}, str(runs / name / sub / "model.safetensors"))
    (runs / name / "metrics.jsonl").write_text('{"epoch": 1}\n')
    save_file({"m": torch.zeros(2)}, str(runs / name / "last" / "train_state.safetensors"))


def test_the_results_bring_back_logs_configs_targets_and_the_students_weights_alone(tmp_path):
    runs, out, here = tmp_path / "runs", tmp_path / "out", tmp_path / "here"
    out.mkdir()
    _run(runs, "teacher-s1-40-seed1")
    _run(runs, "student")
    student = {"fc.weight": torch.randn(5_000_000)}  # 20 MB: more than one file back
    save_file(student, str(runs / "student" / "best" / "model.safetensors"))
    save_file({"log_probs": torch.zeros(3, 7)}, str(runs / "targets-2-flip.safetensors"))
    (runs / "ensemble.json").write_text("{}")
    payload.pack_results(runs, out)
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 << 20 for p in out.iterdir())
    assert sum(name.startswith("student.safetensors.part") for name in files) == 2
    payload.unpack_results(out, here)
    assert _digest(here / "student" / "best" / "model.safetensors") == \
        _digest(runs / "student" / "best" / "model.safetensors")
    for kept in ("targets-2-flip.safetensors", "ensemble.json", "teacher-s1-40-seed1/metrics.jsonl",
                 "teacher-s1-40-seed1/last/config.json", "teacher-s1-40-seed1/best/config.json"):
        assert (here / kept).is_file(), kept
    weights = sorted(p.relative_to(here) for p in here.rglob("*.safetensors"))
    assert [str(p) for p in weights] == ["student/best/model.safetensors", "targets-2-flip.safetensors"]
