"""The second implementation of scoring (tools/independent_rescore.py: timm, safetensors and config.json only)
agrees with fer_demo's on real validation faces: the same labels by name, and the same served probabilities for
one view and the app's 10 views, at the recorded temperatures."""

import json

import pytest
import torch

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.inference import predict_probs
from fer_demo.core.paths import LOCAL_DATASET
from tools import independent_rescore as independent

from .support.fer_samples import needs_fer2013

FACES = 192
# fer_demo scores under bf16 autocast on CPUs that have it, the second implementation in fp32
BF16_TOLERANCE = 0.03


@needs_fer2013
def test_the_second_implementation_serves_fer_demos_probabilities(fer_data):
    model, config = independent.build(ckpt.SHIPPED_CHECKPOINT)
    faces, labels = independent.faces_and_labels(LOCAL_DATASET / "data" / "validation-00000-of-00001.parquet",
                                                 config["labels"])
    ours = fer_data.split("validation")
    assert torch.equal(labels, ours.labels) and torch.equal(faces, ours.images)
    served, _ = ckpt.load_model(ckpt.SHIPPED_CHECKPOINT)
    for name, key in independent.VIEW_TEMPERATURES.items():
        log_probs = independent.log_probs(model, config, faces[:FACES], all_views=name == "10 views")
        theirs = (log_probs / config[key]).softmax(-1)
        mine = predict_probs(served, faces[:FACES], config, tta="10-view" if name == "10 views" else "none")
        assert (theirs - mine).abs().max() < BF16_TOLERANCE, name
        assert (theirs.argmax(1) == mine.argmax(1)).float().mean() >= 0.98, name


@needs_fer2013
def test_the_cli_prints_accuracy_and_ece_at_both_temperatures(capsys):
    assert independent.main(["--limit", "64"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 64
    for name in independent.VIEW_TEMPERATURES:
        assert 0.4 < result[name]["accuracy"] <= 1 and 0 <= result[name]["ece"] < 1
        assert result[name]["temperature"] == pytest.approx(json.loads(
            (ckpt.SHIPPED_CHECKPOINT / "config.json").read_text())[independent.VIEW_TEMPERATURES[name]])
