"""The release recipe's pieces that need no training: the time budget, random crops, the choice, and the
steps between a run trained elsewhere and its packaging."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from train.augment import AugmentConfig, augment_batch
from train.release import ABLATION, COMMON, RECIPES, choose
from train.train import budget_spent, parse_args

REAL_LOG = Path(__file__).resolve().parents[1] / "train" / "release-log"


def test_a_time_budget_stops_before_an_epoch_that_would_overrun_it():
    assert not budget_spent(10, elapsed_s=0, epoch_s=None), "a fresh run trains at least one epoch"
    assert not budget_spent(10, elapsed_s=400, epoch_s=100)
    assert budget_spent(10, elapsed_s=550, epoch_s=100)
    assert budget_spent(1, elapsed_s=0, epoch_s=100), "a resumed run judges by the last sitting's epoch"
    assert not budget_spent(None, elapsed_s=1e9, epoch_s=100)


def test_random_crops_keep_the_pixel_scale_and_move_within_the_shift():
    ramp = torch.arange(48.0).repeat(48, 1).expand(64, 1, 48, 48)  # value = column
    cfg = AugmentConfig(shift=0.1, flip=0.0, rotate=0.0, scale=0.0, erase=0.0, crop=40)
    out = augment_batch(ramp, cfg, torch.Generator().manual_seed(0))
    assert out.shape == (64, 1, 40, 40)
    steps = out[..., 1:] - out[..., :-1]
    assert torch.allclose(steps[..., 5:-5], torch.ones(()), atol=1e-4), "one input pixel per output pixel"
    left = out[:, 0, 20, 5] - 5  # the window's left edge, in input columns
    assert left.min() >= -1 and left.max() <= 9 and left.std() > 1, "placed by the shift, up to 4.8 px each way"


def test_without_a_crop_the_augmentation_is_unchanged():
    x = torch.randn(8, 1, 48, 48)
    cfg = AugmentConfig()
    a = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    b = augment_batch(x, AugmentConfig(crop=48), torch.Generator().manual_seed(3))
    assert a.shape == x.shape and torch.equal(a, b)


def test_every_release_recipe_parses_and_ties_go_to_the_cheaper_one():
    for recipe in RECIPES.values():
        args = parse_args(["--dataset", "x", *COMMON, *recipe.args, "--epochs", str(recipe.epochs)])
        assert args.aug_scale >= 0.11, "crop jitter must cover the detector's 0.89-1.07 spread"
    assert choose({"s2-48": 0.60, "s1-40": 0.61}) == "s1-40"
    assert choose({"s2-48": 0.61, "s1-40": 0.61}) == "s2-48"


def test_ablations_and_the_costlier_release_run_fit_the_250_epoch_budget():
    ablation_epochs = int(ABLATION[ABLATION.index("--epochs") + 1])
    ablations = sum(ablation_epochs * r.cost for r in RECIPES.values())
    assert "--limit-train" not in ABLATION, "ablations train on every face"
    for recipe in RECIPES.values():
        assert ablations + recipe.epochs * recipe.cost <= 250


def _run_folder(root, name: str, epoch: int, epochs: int, accuracy: float):
    """A run folder as a GPU machine hands it back: configs and the log, no weights or training state."""
    from fer_demo.core import checkpoint as ckpt

    folder = root / name
    for sub, config in (("last", {"epoch": epoch, "train_args": {"epochs": epochs}}),
                        ("best", {"metrics": {"accuracy": accuracy, "split": "validation", "epoch": epoch}})):
        (folder / sub).mkdir(parents=True)
        ckpt.write_config(folder / sub, ckpt.make_config("resnet18", "s1", 48) | config)
    (folder / "metrics.jsonl").write_text(json.dumps({"epoch": epoch, "val_acc": accuracy}) + "\n")
    return folder


def test_a_copied_run_folder_without_weights_counts_as_finished_by_its_config(tmp_path):
    from train.release import best_validation, run_finished

    assert run_finished(_run_folder(tmp_path, "done", 8, 8, 0.51))
    assert not run_finished(_run_folder(tmp_path, "half", 4, 8, 0.40))
    assert not run_finished(tmp_path / "missing")
    assert best_validation(tmp_path / "done") == 0.51


# The fake chain's validation accuracies, by run folder; the ensemble's by teacher count (flip views).
FAKE_SCORES = {"ablation-s2-48": 0.50, "ablation-s1-40": 0.51, "release-s1-40": 0.698,
               "teacher-s1-40-seed1": 0.697, "teacher-s1-40-seed2": 0.699,
               "distill-labels": 0.700, "distill-t1-w0.5": 0.705, "distill-t2-w0.7": 0.709, "distill-t4-w0.9": 0.706,
               "distill-t2-w0.7-online": 0.709, "distill-t2-w0.7-scratch": 0.55, "student": 0.712}
FAKE_ENSEMBLE = {"1": 0.70, "2": 0.715, "3": 0.715}


@pytest.fixture
def fake_chain(tmp_path, monkeypatch):
    """The release with every training run, the ensemble's scores and targets, and packaging faked: run folders
    hold only configs (FAKE_SCORES), and what each step was asked to do is recorded."""
    import train.release as release

    monkeypatch.setattr(release, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(release, "LOG_DIR", tmp_path / "log")
    calls = {"train": {}, "ensemble": [], "package": []}

    def train_to_end(folder, argv, deadline):
        epochs = int(argv[argv.index("--epochs") + 1])
        if not folder.exists():
            _run_folder(folder.parent, folder.name, epochs, epochs, FAKE_SCORES[folder.name])
        calls["train"][folder.name] = argv
        return True

    def ensemble_main(argv):
        calls["ensemble"].append(argv)
        out = argv[argv.index("--out") + 1]
        by_count = {k: {"flip": {"accuracy": a}} for k, a in FAKE_ENSEMBLE.items()}
        with open(out, "w") as f:
            f.write(json.dumps({"by_count": by_count}) if argv[0] == "score" else "targets")
        return 0

    monkeypatch.setattr(release, "train_to_end", train_to_end)
    monkeypatch.setattr(release.ensemble, "main", ensemble_main)
    monkeypatch.setattr(release, "package", lambda folder, dest, dataset: calls["package"].append(folder.name))
    return release, calls


def test_the_chain_chooses_each_step_on_validation_and_trains_the_student_it_chose(fake_chain, tmp_path):
    release, calls = fake_chain
    deadline = release.Deadline(None)
    assert release.release("data", tmp_path / "dest", deadline, train_only=True) and calls["package"] == []
    log = {name: json.loads((release.LOG_DIR / f"{name}.json").read_text())
           for name in ("ablations", "teacher-count", "distillation")}
    assert log["ablations"]["chosen"] == "s1-40"
    assert log["teacher-count"]["chosen"] == "2", "a tie goes to fewer teachers"
    assert log["distillation"]["chosen"] == "t2-w0.7", "a tie with the online run goes to the cheaper offline one"
    assert set(calls["train"]) == set(FAKE_SCORES), "stage B varies stage A's winner"
    student = calls["train"]["student"]
    targets = str(release.RUNS / "targets-2-flip.safetensors")
    for option, value in (("--epochs", "25"), ("--teacher-targets", targets), ("--kd-temperature", "2"),
                          ("--kd-weight", "0.7"), ("--init-checkpoint", str(release.RUNS / "release-s1-40" / "best")),
                          ("--stem", "s1"), ("--train-crop", "40"), ("--seed", "0")):
        assert student[len(student) - 1 - student[::-1].index(option) + 1] == value, option
    assert calls["train"]["teacher-s1-40-seed2"][-2:] == ["--seed", "2"]
    assert "--teachers" in calls["train"]["distill-t2-w0.7-online"]
    assert "--init-checkpoint" not in calls["train"]["distill-t2-w0.7-scratch"]
    targets_call = next(c for c in calls["ensemble"] if c[0] == "targets")
    assert targets_call[1:3] == [str(release.RUNS / f"{n}" / "best") for n in ("release-s1-40", "teacher-s1-40-seed1")]
    assert release.release("data", tmp_path / "dest", deadline) and calls["package"] == ["student"]
    assert (release.RUNS / "exported").is_file()


def test_the_distillation_chain_fits_its_600_epoch_budget():
    from train import distill_plan as plan

    recipe = RECIPES["s1-40"]
    assert plan.chain_cost(recipe.epochs, plan.RECIPE_COST) <= plan.BUDGET
    for student in [*plan.STAGE_A.values(), *plan.stage_b("x", plan.STAGE_A["t2-w0.7"]).values()]:
        parse_args(["--dataset", "x", *COMMON, *student.args([Path("t0"), Path("t1")], Path("targets"))])


def test_the_shipped_model_is_teacher_0_only_while_it_is_that_runs_model(tmp_path, monkeypatch):
    import train.release as release
    from fer_demo.core import checkpoint as ckpt

    monkeypatch.setattr(release, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(release, "LOG_DIR", tmp_path / "log")
    release.LOG_DIR.mkdir()
    shutil.copy2(REAL_LOG / "release-s1-40.metrics.jsonl", release.LOG_DIR)
    other, argv = release.teacher_run("s1-40", ["--dataset", "x", *COMMON], seed=1)
    release.adopt_shipped(release.RUNS / "release-s1-40", argv)
    assert not (release.RUNS / "release-s1-40").exists(), "seed 1's arguments are not the shipped run's"
    folder, argv = release.teacher_run("s1-40", ["--dataset", "x", *COMMON], seed=0)
    release.adopt_shipped(folder, argv)
    assert release.run_finished(folder) and release.best_validation(folder) == pytest.approx(0.6982, abs=1e-4)
    model, _ = ckpt.load_model(folder)
    shipped, _ = ckpt.load_model(ckpt.SHIPPED_CHECKPOINT)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), shipped.state_dict().values()))


def test_a_recipe_ablation_gone_from_this_machine_counts_by_its_committed_log(tmp_path, monkeypatch):
    import train.release as release

    monkeypatch.setattr(release, "LOG_DIR", REAL_LOG)
    folder = tmp_path / "ablation-s1-40"
    assert release.logged_validation(folder, 8) == pytest.approx(0.5118, abs=1e-4)
    assert release.logged_validation(folder, 9) is None, "a log that stops short is not a finished run"
    folder.mkdir()
    assert release.logged_validation(folder, 8) is None, "a run folder here speaks for itself"


def test_the_shipped_files_validation_rescore_replaces_the_training_figure_within_tolerance(tmp_path):
    from fer_demo.core import checkpoint as ckpt
    from train.release import RESCORE_TOLERANCE, record_rescore

    chosen = {"accuracy": 0.6982, "macro_f1": 0.67, "ece": 0.07, "n": 3589, "split": "validation", "epoch": 65}
    ckpt.write_config(tmp_path, ckpt.make_config("resnet18", "s1", 48, metrics=chosen))

    def rescored(accuracy):
        report = {"no_tta": {"accuracy": accuracy, "macro_f1": 0.673, "ece": 0.072, "n": 3589}}
        (tmp_path / "validation_report.json").write_text(json.dumps(report))

    rescored(0.6982 - RESCORE_TOLERANCE * 2)
    with pytest.raises(SystemExit, match="apart"):
        record_rescore(tmp_path)
    rescored(0.6977)
    record_rescore(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["metrics_in_training"] == chosen
    assert config["metrics"]["accuracy"] == 0.6977 and config["metrics"]["epoch"] == 65


@pytest.mark.slow  # two subprocess trainers at once
def test_jobs_train_a_steps_runs_at_once_as_trainer_processes_and_a_failure_names_its_run(tmp_path, monkeypatch,
                                                                                          fer2013):
    import train.release as release

    monkeypatch.setattr(release, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(release, "LOG_DIR", tmp_path / "log")
    tiny = ["--dataset", str(fer2013), "--limit-train", "32", "--limit-eval", "16", "--batch-size", "16",
            "--epochs", "1"]
    runs = {release.RUNS / f"run-{seed}": tiny + ["--seed", str(seed)] for seed in (0, 1)}
    assert release.train_all(runs, release.Deadline(None), jobs=2)
    for folder in runs:
        assert release.run_finished(folder) and (release.LOG_DIR / f"{folder.name}.metrics.jsonl").is_file()
        assert "epoch 1: val acc" in (folder.parent / f"{folder.name}.log").read_text()
    weights = [_last_weights(folder) for folder in runs]
    assert not torch.equal(weights[0]["fc.weight"], weights[1]["fc.weight"]), "each run got its own seed"
    logs = [(folder.parent / f"{folder.name}.log").read_text() for folder in runs]
    assert release.train_all(runs, release.Deadline(None), jobs=2)
    assert logs == [(folder.parent / f"{folder.name}.log").read_text() for folder in runs], "trained again"
    bad = {release.RUNS / "bad": tiny + ["--batch-size", "64"]}  # larger than the 32 faces: the trainer exits 2
    with pytest.raises(SystemExit, match="training bad failed"):
        release.train_all(bad, release.Deadline(None), jobs=2)


def _last_weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "last" / "model.safetensors"))
