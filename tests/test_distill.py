"""Distillation on real FER2013 faces and the shipped model as a teacher: the loss, the two sources of the
teachers' targets (a file computed offline, the teachers run online), the ensemble's score, and exact resume."""

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.evaluation import classification_metrics
from fer_demo.core.inference import autocast_for, predict_probs
from fer_demo.core.paths import LOCAL_DATASET
from fer_demo.core.transforms import FER_MEAN, FER_STD, to_model_input
from train import ensemble
from train.losses import KDConfig, distill_loss, soft_targets, weighted_soft_ce
from train.teachers import OnlineTeachers, TargetFile, write_targets
from train.train import main as train_main

from .support.fer_samples import needs_fer2013

SHIPPED = str(ckpt.SHIPPED_CHECKPOINT)
TRAIN_FACES = 64
SMALL_RUN = ["--dataset", str(LOCAL_DATASET), "--limit-train", str(TRAIN_FACES), "--limit-eval", "32",
             "--batch-size", "16", "--epochs", "2", "--ema", "0.9"]


def test_weight_zero_is_the_label_loss_and_the_soft_term_has_the_kl_gradient_times_t_squared():
    torch.manual_seed(0)
    logits, teacher = torch.randn(8, 7, requires_grad=True), torch.randn(8, 7).log_softmax(-1)
    labels = soft_targets(torch.randint(0, 7, (8,)), 0.1)
    assert torch.equal(distill_loss(logits, labels, teacher, KDConfig(3.0, 0.0)), weighted_soft_ce(logits, labels))
    t = 3.0
    distill_loss(logits, labels, teacher, KDConfig(t, 1.0)).backward()
    ours = logits.grad.clone()
    logits.grad = None
    kl = F.kl_div((logits / t).log_softmax(-1), (teacher / t).softmax(-1), reduction="batchmean") * t * t
    kl.backward()
    assert torch.allclose(ours, logits.grad, atol=1e-6)


def test_a_student_that_already_answers_as_the_teachers_gets_no_gradient_from_them():
    teacher = torch.randn(8, 7).log_softmax(-1)
    logits = teacher.clone().requires_grad_(True)
    distill_loss(logits, soft_targets(torch.zeros(8, dtype=torch.long), 0.0), teacher, KDConfig(4.0, 1.0)).backward()
    assert logits.grad.abs().max() < 1e-6


@needs_fer2013
def test_a_target_file_must_hold_this_runs_training_faces_in_order(fer_data, tmp_path):
    faces = fer_data.split("train", TRAIN_FACES)
    path = tmp_path / "t.safetensors"
    write_targets(path, torch.zeros(TRAIN_FACES, 7), faces.labels.flip(0), {})
    if not torch.equal(faces.labels.flip(0), faces.labels):
        with pytest.raises(ValueError, match="not this run's"):
            TargetFile(path, faces, torch.device("cpu"))
    write_targets(path, torch.arange(TRAIN_FACES * 7.0).view(-1, 7), faces.labels, {})
    source = TargetFile(path, faces, torch.device("cpu"))
    assert torch.equal(source(torch.tensor([3, 1]), None)[:, 0], torch.tensor([21.0, 7.0]))


@needs_fer2013
def test_the_ensemble_of_one_model_scores_as_the_evaluator_and_a_repeated_member_changes_nothing(fer_data):
    faces = fer_data.split("validation", 48)
    members = ensemble.member_views([SHIPPED, SHIPPED], faces, "10-view", log=lambda *a: None)
    table = ensemble.score(members, faces.labels)
    model, config = ckpt.load_model(SHIPPED)
    raw = config | {key: 1.0 for key in ("temperature", "temperature_flip", "temperature_tta")}
    for views in ("none", "flip", "10-view"):
        direct = classification_metrics(predict_probs(model, faces.images, raw, tta=views), faces.labels)
        assert table["1"][views]["accuracy"] == pytest.approx(direct["accuracy"])
        assert table["2"][views] == pytest.approx(table["1"][views])


@needs_fer2013
def test_online_teachers_answer_as_the_models_do_in_eval_mode_and_are_left_in_it(fer_data):
    faces = fer_data.split("train", 16)
    model, config = ckpt.load_model(SHIPPED)
    x = to_model_input(faces.images, 48, FER_MEAN, FER_STD)[..., 4:44, 4:44]  # a 40-px training crop
    teachers = OnlineTeachers([SHIPPED], config, torch.device("cpu"), autocast_for("cpu"))
    got = teachers(torch.arange(16), x)
    with torch.no_grad(), autocast_for("cpu"):
        want = model(x).float().log_softmax(-1)
    assert torch.allclose(got, want, atol=1e-5) and not teachers.models[0].training


@pytest.fixture(scope="module")
def targets(fer2013, tmp_path_factory):
    """The shipped model's flip-averaged targets for the small run's training faces, by the CLI."""
    path = tmp_path_factory.mktemp("targets") / "targets.safetensors"
    assert ensemble.main(["targets", SHIPPED, "--dataset", str(LOCAL_DATASET), "--limit-train", str(TRAIN_FACES),
                          "--views", "flip", "--out", str(path)]) == 0
    return path


@needs_fer2013
def test_offline_distillation_resumes_exactly_and_the_targets_change_what_it_learns(targets, tmp_path):
    kd = SMALL_RUN + ["--teacher-targets", str(targets), "--kd-temperature", "2", "--kd-weight", "0.7"]
    assert load_file(str(targets))["log_probs"].shape == (TRAIN_FACES, 7)
    assert train_main(kd + ["--out", str(tmp_path / "whole")]) == 0
    assert train_main(kd + ["--out", str(tmp_path / "split"), "--time-budget-min", "0"]) == 0
    assert ckpt.read_state(tmp_path / "split" / "last")["step"] == TRAIN_FACES // 16
    assert train_main(["--resume", str(tmp_path / "split")]) == 0
    assert train_main(SMALL_RUN + ["--out", str(tmp_path / "labels")]) == 0
    whole, split, labels = (load_file(str(tmp_path / name / "last" / ckpt.MODEL_FILE))
                            for name in ("whole", "split", "labels"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)
    assert not torch.equal(whole["fc.weight"], labels["fc.weight"])
    assert ckpt.read_config(tmp_path / "whole" / "last")["train_args"]["teacher_targets"] == str(targets)


@needs_fer2013
def test_distillation_refuses_two_sources_mixup_and_a_file_of_other_faces(targets, tmp_path, capsys):
    assert train_main(SMALL_RUN + ["--teacher-targets", str(targets), "--teachers", SHIPPED]) == 2
    assert train_main(SMALL_RUN + ["--teacher-targets", str(targets), "--mixup", "1"]) == 2
    other = SMALL_RUN + ["--limit-train", "32", "--teacher-targets", str(targets), "--out", str(tmp_path / "x")]
    assert train_main(other) == 2
    said = capsys.readouterr().err
    assert "choose one" in said and "--mixup" in said and "not this run's" in said
