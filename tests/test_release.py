"""The release recipe's pieces that need no training: the time budget, random crops, the choice, and the
steps between a run trained elsewhere and its packaging."""

import json

import pytest
import torch

from train.augment import AugmentConfig, augment_batch
from train.release import ABLATION, COMMON, RECIPES, choose
from train.train import budget_spent, parse_args


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


def test_train_only_stops_before_packaging_and_a_later_call_packages(tmp_path, monkeypatch):
    """With every run trained, --train-only returns without touching the test split; the same call
    without it goes on to package the chosen run (package stubbed: it needs the weights)."""
    import train.release as release

    monkeypatch.setattr(release, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(release, "LOG_DIR", tmp_path / "log")
    for name, recipe in release.RECIPES.items():
        ablation_epochs = int(release.ABLATION[release.ABLATION.index("--epochs") + 1])
        _run_folder(release.RUNS, f"ablation-{name}", ablation_epochs, ablation_epochs, 0.5 + recipe.cost / 100)
        _run_folder(release.RUNS, f"release-{name}", recipe.epochs, recipe.epochs, 0.7)
    packaged = []
    monkeypatch.setattr(release, "package", lambda folder, dest, dataset: packaged.append(folder.name))
    deadline = release.Deadline(None)
    assert release.release("data", tmp_path / "dest", deadline, train_only=True) and packaged == []
    assert json.loads((release.LOG_DIR / "ablations.json").read_text())["chosen"] == "s1-40"
    assert release.release("data", tmp_path / "dest", deadline) and packaged == ["release-s1-40"]
    assert (release.RUNS / "exported").is_file()


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
