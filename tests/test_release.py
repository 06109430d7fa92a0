"""The release recipe's pieces that need no training: the time budget, random crops, and the choice."""

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
