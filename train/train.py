"""Fine-tune a timm ResNet on FER2013.

    python -m train.train --dataset ../shared/data/fer2013 --epochs 30 --out runs/r18
    torchrun --nproc_per_node 4 -m train.train --dataset Aaryan333/fer2013_train_publicTest_privateTest ...

The run folder gets `best/` (the epoch and raw-or-EMA weights chosen on the
validation split only), `last/` (resumable: optimizer, step, RNG, EMA),
`metrics.jsonl` and `curves.png`. The test split plays no part in a run: score
the chosen checkpoint on it once, afterwards,

    python -m train.evaluate --checkpoint runs/r18 --dataset ../shared/data/fer2013 --split test --tta

(`--test` does the same at the end of a run, for one-off smoke runs.)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from tqdm import tqdm

from fer_demo.core import checkpoint as ckpt
from fer_demo.core.data import DEFAULT_DATASET, DataError, FaceSplit, dataset_revision, fer_splits, load_raw
from fer_demo.core.evaluation import classification_metrics
from fer_demo.core.inference import AMP_MODES, amp_dtype, autocast_for, predict_probs
from fer_demo.core.labels import FACE_SIZE, NUM_CLASSES
from fer_demo.core.model import STEMS, create_fer_model
from fer_demo.core.transforms import FER_MEAN, FER_STD, to_model_input

from .augment import AugmentConfig, augment_batch
from .losses import KDConfig, distill_loss, soft_targets, weighted_soft_ce
from .report import evaluate_and_report, plot_curves
from .teachers import OnlineTeachers, TargetFile


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--dataset", default=DEFAULT_DATASET, help="Hub id, local folder, or .csv/.parquet file")
    a("--revision", default=None, help="Hub revision (branch, tag or commit)")
    a("--model", default="resnet18", help="any timm ResNet: resnet18, resnet18d, resnet34, resnet50...")
    a("--stem", default="s2", choices=list(STEMS), help="imagenet: stride-2 conv + max-pool; "
      "s2: stride-2 conv, no max-pool; s1: stride-1 conv, no max-pool")
    a("--input-size", type=int, default=FACE_SIZE)
    a("--pretrained", action="store_true", help="start from timm's ImageNet weights (needs the Hub)")
    a("--pretrained-file", default=None, help="local ImageNet weights file for --pretrained")
    a("--init-checkpoint", default=None, help="start from the weights of a fer-demo checkpoint folder "
      "(fine-tuning; a fresh optimizer and schedule, unlike --resume)")
    a("--epochs", type=int, default=30)
    a("--batch-size", type=int, default=128, help="per process")
    a("--lr", type=float, default=0.1)
    a("--opt", default="sgd", choices=["sgd", "adamw"], help="sgd is SGD with Nesterov momentum")
    a("--momentum", type=float, default=0.9)
    a("--weight-decay", type=float, default=5e-4)
    a("--sched", default="cosine", choices=["cosine", "onecycle"])
    a("--warmup-epochs", type=float, default=1.0)
    a("--label-smoothing", type=float, default=0.1)
    a("--mixup", type=float, default=0.0, help="mixup alpha (0 = off)")
    a("--cutmix", type=float, default=0.0, help="cutmix alpha (0 = off)")
    a("--class-balance", default="none", choices=["none", "loss", "sampler"],
      help="loss: inverse-frequency class weights; sampler: class-balanced sampling")
    a("--aug", default="fer", choices=["fer", "none"])
    a("--aug-scale", type=float, default=AugmentConfig.scale, help="max zoom in or out, fraction of the side")
    a("--aug-shift", type=float, default=AugmentConfig.shift, help="max translation, fraction of the side")
    a("--train-crop", type=int, default=None, help="train on random square crops of this side (px at "
      "--input-size) and validate on the whole face: a fully convolutional net takes either")
    a("--drop", type=float, default=0.0, help="dropout before the classifier")
    a("--teacher-targets", default=None, help="distil from a file of the teachers' log-probabilities for every "
      "training face, computed offline on fixed views (python -m train.ensemble targets)")
    a("--teachers", nargs="+", default=None, help="distil from these checkpoint folders' ensemble, run on each "
      "augmented batch (online)")
    a("--kd-temperature", type=float, default=KDConfig.temperature, help="distillation temperature")
    a("--kd-weight", type=float, default=KDConfig.weight, help="the distillation term's share of the loss; the "
      "rest is cross-entropy on the (smoothed) labels")
    a("--ema", type=float, default=0.999, help="EMA decay of the weights (0 = off); each epoch the raw or "
      "EMA weights, whichever scores better on validation, are the candidate for best/")
    a("--select-metric", default="accuracy", choices=["accuracy", "macro_f1"])
    a("--patience", type=int, default=0, help="stop after N epochs without a better validation score (0 = off)")
    a("--amp", default="auto", choices=AMP_MODES)
    a("--no-channels-last", action="store_true")
    a("--seed", type=int, default=0)
    a("--limit-train", type=int, default=None)
    a("--limit-eval", type=int, default=None)
    a("--max-steps", type=int, default=None, help="stop after this many optimizer steps (tests)")
    a("--time-budget-min", type=float, default=None, help="stop at the last epoch boundary that fits in this "
      "many minutes, judged by the last epoch's time (a fresh run trains at least one), and exit 0 with last/ "
      "saved; continue with --resume")
    a("--out", default=None, help="run folder (default runs/<model>-<stem>; with --resume, the resumed one)")
    a("--resume", default=None, help="a run folder (or its last/) to continue exactly")
    a("--test", action="store_true", help="score best/ on the test split at the end (default: off; "
      "score it once, separately, with python -m train.evaluate)")
    # dest "workers_threads": the option's earlier name, which saved train_args and old commands still use
    a("--torch-threads", dest="workers_threads", type=int, default=None, metavar="N",
      help="torch CPU threads (default: all cores)")
    a("--workers-threads", dest="workers_threads", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---------------------------------------------------------------- setup ---

def setup_distributed():
    """(rank, world, device). torchrun sets RANK/WORLD_SIZE/LOCAL_RANK; otherwise one process."""
    if "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", 1)) > 1:
        local = int(os.environ["LOCAL_RANK"])
        if torch.cuda.is_available():
            torch.cuda.set_device(local)
            dist.init_process_group("nccl")
            return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local)
        dist.init_process_group("gloo")
        return dist.get_rank(), dist.get_world_size(), torch.device("cpu")
    if torch.cuda.is_available():
        return 0, 1, torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return 0, 1, torch.device("mps")
    return 0, 1, torch.device("cpu")


def lr_at(step: int, total: int, warmup: int, peak: float, sched: str) -> float:
    """The learning rate at `step` of a schedule that peaks at `peak`: linear warm-up, then cosine to 0
    (cosine) or linear to 0 (onecycle, peak at 30%)."""
    if sched == "onecycle":
        warmup = max(warmup, int(0.3 * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.5 * (1 + math.cos(math.pi * t)) if sched == "cosine" else max(0.0, 1 - t))


def train_step(model, optimizer, scaler, x, loss_of: Callable, autocast):
    """One optimizer step on the loss `loss_of(logits)`; returns (logits, loss)."""
    with autocast:
        logits = model(x)
    loss = loss_of(logits)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return logits, loss


def epoch_order(n: int, epoch: int, seed: int, labels: torch.Tensor, balance: str) -> torch.Tensor:
    """The sample order of one epoch, a pure function of (seed, epoch): resume needs no sampler state."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    if balance == "sampler":
        counts = torch.bincount(labels, minlength=NUM_CLASSES).double()
        return torch.multinomial((1.0 / counts.clamp(min=1))[labels], n, replacement=True, generator=g)
    return torch.randperm(n, generator=g)


def find_resumable(path: Path) -> Path:
    """The folder holding training state: `path` itself, its `last/`, or a half-swapped `last.old/`."""
    for candidate in (path, path / "last", path / "last.old"):
        if (candidate / ckpt.STATE_FILE).is_file():
            return candidate
    raise ckpt.CheckpointError(f"{str(path)!r} holds no resumable training state ({ckpt.STATE_FILE}): "
                               "pass a run folder written by python -m train.train")


# ------------------------------------------------------------------ run ---

# Options of one invocation rather than of the run: `--resume` takes them from its own command line.
PER_INVOCATION = ("resume", "max_steps", "time_budget_min", "test", "workers_threads")


@dataclass
class Progress:
    """What `last/`'s training state keeps besides weights, optimizer and RNGs."""

    step: int = 0
    best_score: float = -1.0
    stale: int = 0
    history: list = field(default_factory=list)


@dataclass
class Run:
    """Everything built once per run: data on the device, model, EMA, optimizer and schedule."""

    args: argparse.Namespace
    rank: int
    world: int
    device: torch.device
    log: Callable
    train_set: FaceSplit
    train_x: torch.Tensor  # train_set's faces and labels on the device
    train_y: torch.Tensor
    val_set: FaceSplit
    dataset_rev: str
    model: torch.nn.Module
    ema: ModelEmaV3 | None
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    mixup: Mixup | None
    class_weights: torch.Tensor | None
    aug_cfg: AugmentConfig | None
    aug_gen: torch.Generator
    autocast: torch.autocast  # the training step's autocast context, built once (entered once a step)
    steps_per_epoch: int
    teacher: Callable | None = None  # (indices, augmented batch) -> the teachers' log-probabilities
    kd: KDConfig = field(default_factory=KDConfig)
    train_model: torch.nn.Module | None = None  # the model, or its DDP wrapper

    @property
    def master(self) -> bool:
        return self.rank == 0

    @property
    def out(self) -> Path:
        return Path(self.args.out)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.args.epochs

    @property
    def max_steps(self) -> int:
        return min(self.total_steps, self.args.max_steps or self.total_steps)

    @property
    def warmup_steps(self) -> int:
        return int(self.args.warmup_epochs * self.steps_per_epoch)

    @property
    def model_config(self) -> dict:
        """The trained model's config without the record of its training (architecture, input size,
        normalization, labels): what validation scores it with."""
        return ckpt.make_config(self.args.model, self.args.stem, self.args.input_size)

    def checkpoint_config(self, metrics: dict | None, epoch: int, step: int) -> dict:
        """config.json of a checkpoint of this run at `epoch` and `step`."""
        return ckpt.make_config(self.args.model, self.args.stem, self.args.input_size, dataset=self.args.dataset,
                                dataset_revision=self.dataset_rev, train_args=vars(self.args),
                                metrics=metrics or {}, epoch=epoch, step=step)

    def candidates(self) -> dict[str, torch.nn.Module]:
        """The weights that compete for best/ each epoch: raw and, when kept, their EMA."""
        return {"raw": self.model} | ({"ema": self.ema.module} if self.ema is not None else {})


class Interrupt:
    """Ctrl-C on rank 0: the first asks training to stop after the current step and save a
    resumable `last/`; a second one aborts at once. A context manager that restores the old handler."""

    def __init__(self, active: bool, log: Callable):
        self.active, self.log, self.requested, self._previous = active, log, False, None

    def __enter__(self) -> "Interrupt":
        if self.active:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.log("\ninterrupt: saving a resumable checkpoint after this step (Ctrl-C again to abort)")


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return train(args)
    except (DataError, ckpt.CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def train(args) -> int:
    """Build, optionally resume, train epoch by epoch choosing on validation; 130 after Ctrl-C."""
    rank, world, device = setup_distributed()
    log = print if rank == 0 else (lambda *a, **k: None)
    try:
        args, resume_from = resumed_args(args)
        run = build_run(args, rank, world, device, log)
        progress = restore(run, resume_from) if resume_from is not None else Progress()
        run.out.mkdir(parents=True, exist_ok=True)
        run.train_model = ddp_wrap(run.model, world, device)
        with Interrupt(run.master, log) as interrupt:
            if fit(run, progress, interrupt) == "budget":
                epoch = progress.step // run.steps_per_epoch
                log(f"time budget of {args.time_budget_min:g} min spent after epoch {epoch}/{args.epochs}; "
                    f"last/ is saved: continue with python -m train.train --resume {run.out} "
                    f"--time-budget-min {args.time_budget_min:g}")
                return 0
            if interrupt.requested or stopped_mid_epoch(run, progress):
                save_last(run, progress, progress.step // run.steps_per_epoch)
                log(f"saved a resumable checkpoint at step {progress.step} to {run.out / 'last'}; "
                    f"continue with --resume {run.out}")
                return 130 if interrupt.requested else 0
        if run.master:
            finish(run, progress)
        return 0
    finally:
        if world > 1:
            dist.destroy_process_group()


def resumed_args(args) -> tuple[argparse.Namespace, Path | None]:
    """With --resume: the run's saved arguments (and the folder to resume from); else `args` as given."""
    resume_from = None
    if args.resume:
        resume_from = find_resumable(Path(args.resume))
        saved = vars(parse_args([])) | ckpt.read_config(resume_from)["train_args"]  # defaults for newer options
        saved.update({key: getattr(args, key) for key in PER_INVOCATION})
        saved["out"] = args.out or str(resume_from.parent)
        args = argparse.Namespace(**saved)
    args.out = args.out or f"runs/{args.model}-{args.stem}"
    return args, resume_from


def build_run(args, rank: int, world: int, device: torch.device, log: Callable) -> Run:
    if args.workers_threads:
        torch.set_num_threads(args.workers_threads)
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed batch shapes: pick the fastest kernels once
    torch.manual_seed(args.seed + rank)
    random.seed(args.seed + rank)
    np.random.seed(args.seed + rank)
    train_set, val_set, rev = load_splits(args, log)
    log(f"data: {len(train_set)} train / {len(val_set)} validation faces from {args.dataset!r}; "
        f"device {device}, {world} process(es)")
    if args.train_crop and args.aug == "none":
        raise ValueError("--train-crop is part of the augmentation: it needs --aug fer")
    steps_per_epoch = len(train_set) // (args.batch_size * world)
    if steps_per_epoch == 0:
        raise ValueError(f"--batch-size {args.batch_size} x {world} is larger than the {len(train_set)} train faces")
    model = build_model(args, device, log)
    counts = train_set.class_counts().double()
    return Run(
        args=args, rank=rank, world=world, device=device, log=log,
        # decoded once into uint8 tensors, moved to the device once
        train_set=train_set, train_x=train_set.images.to(device), train_y=train_set.labels.to(device),
        val_set=val_set, dataset_rev=rev, model=model,
        ema=ModelEmaV3(model, decay=args.ema) if args.ema > 0 else None,
        optimizer=create_optimizer_v2(model, opt="sgd" if args.opt == "sgd" else "adamw", lr=args.lr,
                                      weight_decay=args.weight_decay, momentum=args.momentum),
        scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype(device, args.amp) is torch.float16),
        mixup=Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, label_smoothing=args.label_smoothing,
                    num_classes=NUM_CLASSES) if (args.mixup > 0 or args.cutmix > 0) else None,
        class_weights=((counts.sum() / (NUM_CLASSES * counts.clamp(min=1))).float().to(device)
                       if args.class_balance == "loss" else None),
        aug_cfg=AugmentConfig(scale=args.aug_scale, shift=args.aug_shift, crop=args.train_crop)
        if args.aug == "fer" else None,
        aug_gen=torch.Generator(device).manual_seed(augment_seed(args, rank)),
        autocast=autocast_for(device, args.amp),
        steps_per_epoch=steps_per_epoch,
        teacher=make_teacher(args, train_set, device),
        kd=KDConfig(args.kd_temperature, args.kd_weight),
    )


def make_teacher(args, train_set: FaceSplit, device: torch.device) -> Callable | None:
    """The teachers' source when distilling (--teacher-targets offline, --teachers online), else None."""
    if args.teacher_targets and args.teachers:
        raise ValueError("--teacher-targets and --teachers are two sources of the same targets: choose one")
    if (args.teacher_targets or args.teachers) and (args.mixup > 0 or args.cutmix > 0):
        raise ValueError("distillation does not combine with --mixup/--cutmix here (the teachers' targets "
                         "would need the same mixing)")
    if args.teacher_targets:
        return TargetFile(args.teacher_targets, train_set, device)
    if args.teachers:
        config = ckpt.make_config(args.model, args.stem, args.input_size)
        return OnlineTeachers(args.teachers, config, device, autocast_for(device, args.amp))
    return None


def load_splits(args, log: Callable) -> tuple[FaceSplit, FaceSplit, str]:
    """(train, validation, dataset revision). The test split is not even loaded."""
    limits = {"train": args.limit_train, "validation": args.limit_eval}
    raw = load_raw(args.dataset, args.revision)
    splits = fer_splits(raw, args.dataset, ("train", "validation"), limits, args.seed, log=log)
    return splits["train"], splits["validation"], dataset_revision(raw)


def build_model(args, device: torch.device, log: Callable) -> torch.nn.Module:
    model = create_fer_model(args.model, args.stem, args.pretrained, args.pretrained_file, args.drop).to(device)
    if getattr(args, "init_checkpoint", None):  # absent from the configs of older runs
        init, _ = ckpt.load_model(args.init_checkpoint, device)
        model.load_state_dict(init.state_dict())
        log(f"initialised from {ckpt.resolve(args.init_checkpoint)}")
    return model.to(memory_format=memory_format(args))


def memory_format(args) -> torch.memory_format:
    return torch.contiguous_format if args.no_channels_last else torch.channels_last


def ddp_wrap(model: torch.nn.Module, world: int, device: torch.device) -> torch.nn.Module:
    if world == 1:
        return model
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)


def restore(run: Run, folder: Path) -> Progress:
    """Load `last/`'s weights, optimizer, scaler, EMA and RNG states into `run`; return its progress."""
    run.model.load_state_dict(ckpt.read_tensors(folder / ckpt.MODEL_FILE))
    state = ckpt.read_state(folder)
    run.optimizer.load_state_dict(state["optimizer"])
    run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None:
        run.ema.module.load_state_dict(state["ema"])
    torch.set_rng_state(state["torch_rng"])
    restore_augment_stream(run, state["aug_rng"], state["step"])
    random.setstate(state["py_rng"])
    progress = Progress(state["step"], state["best_score"], state["stale"], state["history"])
    run.log(f"resumed from {folder} at step {progress.step} (epoch {progress.step // run.steps_per_epoch})")
    return progress


def augment_seed(args, rank: int) -> int:
    return args.seed * 7 + rank


def restore_augment_stream(run: Run, saved: torch.Tensor, step: int) -> None:
    """Continue the augmentation stream where last/ left it. A run saved on another kind of device (a CPU
    generator's state does not fit a CUDA one's) cannot continue that stream: it gets a fresh one, seeded by
    the step, and says so (such a resume is not bit-exact anyway: other kernels)."""
    try:
        run.aug_gen.set_state(saved)
    except RuntimeError:
        run.aug_gen.manual_seed(augment_seed(run.args, run.rank) + 1_000_003 * (int(step) + 1))
        run.log(f"note: last/'s augmentation stream was drawn on another kind of device than {run.device}; "
                "a fresh stream continues it")


def fit(run: Run, progress: Progress, interrupt: Interrupt) -> str | None:
    """Train and validate epoch by epoch until the last epoch, max_steps, early stop or Ctrl-C;
    "budget" when the time budget leaves no room for one more epoch (after at least one)."""
    started = time.time()
    epoch_seconds = progress.history[-1]["epoch_s"] if progress.history else None  # an earlier sitting's pace
    for epoch in range(progress.step // run.steps_per_epoch, run.args.epochs):
        if progress.step >= run.max_steps or interrupt.requested:
            return None
        if rank0_decides(run, budget_spent(run.args.time_budget_min, time.time() - started, epoch_seconds)):
            return "budget"
        epoch_started = time.time()
        stats = train_one_epoch(run, progress, epoch, interrupt)
        if stopped_mid_epoch(run, progress):
            return None
        if rank0_decides(run, run.master and end_of_epoch(run, progress, epoch, stats)):
            return None
        epoch_seconds = time.time() - epoch_started
    return None


def budget_spent(budget_min: float | None, elapsed_s: float, epoch_s: float | None) -> bool:
    """Whether one more epoch, as long as the last one (validation included), would overrun the budget.
    A fresh run has no estimate before its first epoch, so that one always runs."""
    return budget_min is not None and epoch_s is not None and elapsed_s + epoch_s > budget_min * 60


def stopped_mid_epoch(run: Run, progress: Progress) -> bool:
    return progress.step < run.total_steps and progress.step % run.steps_per_epoch != 0


def rank0_decides(run: Run, decision: bool) -> bool:
    """Rank 0's `decision`, on every rank (only rank 0 validates)."""
    flag = torch.tensor([float(decision)], device=run.device)
    if run.world > 1:
        dist.broadcast(flag, 0)
    return bool(flag.item())


@dataclass
class EpochStats:
    """Running loss and accuracy of one epoch's (augmented) training batches, summed on the batches' device and
    read back only when asked for: a read per step was a host sync per step, which set the pace on a GPU."""

    world: int
    seen: int = 0
    loss_sum: torch.Tensor | float = 0.0
    correct: torch.Tensor | int = 0
    started: float = field(default_factory=time.time)

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.seen += len(y)
        self.loss_sum = self.loss_sum + loss.detach().float() * len(y)
        self.correct = self.correct + (logits.detach().argmax(1) == y).sum()

    @property
    def loss(self) -> float:
        return float(self.loss_sum) / max(self.seen, 1)

    @property
    def accuracy(self) -> float:
        return int(self.correct) / max(self.seen, 1)

    @property
    def seconds(self) -> float:
        return time.time() - self.started

    @property
    def img_s(self) -> float:
        return self.seen * self.world / self.seconds


# The progress bar's loss, accuracy and rate are read back every this many steps (each read waits for the GPU).
POSTFIX_EVERY = 50


def train_one_epoch(run: Run, progress: Progress, epoch: int, interrupt: Interrupt) -> EpochStats:
    """Train from `progress.step` to the end of `epoch`, or until max_steps or Ctrl-C."""
    args = run.args
    order = epoch_order(len(run.train_set), epoch, args.seed, run.train_set.labels, args.class_balance).to(run.device)
    run.model.train()
    stats = EpochStats(run.world)
    bar = tqdm(range(progress.step - epoch * run.steps_per_epoch, run.steps_per_epoch), disable=not run.master,
               desc=f"epoch {epoch + 1}/{args.epochs}", dynamic_ncols=True, leave=True, mininterval=1.0)
    for i in bar:
        x, y, loss_of = training_batch(run, order, i)
        set_lr(run.optimizer, lr_at(progress.step, run.total_steps, run.warmup_steps, args.lr, args.sched))
        logits, loss = train_step(run.train_model, run.optimizer, run.scaler, x, loss_of, run.autocast)
        if run.ema is not None:
            run.ema.update(run.model, step=progress.step)
        progress.step += 1
        stats.add(loss, logits, y)
        if i % POSTFIX_EVERY == 0:
            bar.set_postfix(loss=f"{stats.loss:.3f}", acc=f"{stats.accuracy:.3f}", img_s=f"{stats.img_s:.0f}",
                            refresh=False)
        if progress.step >= run.max_steps or interrupt.requested:
            break
    bar.close()
    return stats


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """The scheduled `lr` for every parameter group, times the group's `lr_scale` where it has one (timm's
    per-group factor, as its schedulers apply it; the trainer's groups have none, so each gets `lr` itself)."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["lr_scale"] if "lr_scale" in group else lr


def training_batch(run: Run, order: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor, Callable]:
    """This rank's share of global batch `i` of `order`: augmented input, labels and the loss of its logits."""
    args, per_step = run.args, run.args.batch_size * run.world
    idx = order[i * per_step:(i + 1) * per_step][run.rank::run.world]  # `order` is on the device already
    x = to_model_input(run.train_x[idx], args.input_size, FER_MEAN, FER_STD)
    y = run.train_y[idx]
    if run.aug_cfg is not None:  # on the batch's device, as are aug_gen's random numbers
        x = augment_batch(x, run.aug_cfg, run.aug_gen)
    targets = soft_targets(y, args.label_smoothing)
    if run.mixup is not None:
        x, targets = run.mixup(x, y)
    x = x.contiguous(memory_format=memory_format(args))
    return x, y, batch_loss(run, targets, None if run.teacher is None else run.teacher(idx, x))


def batch_loss(run: Run, targets: torch.Tensor, teacher_log_probs: torch.Tensor | None) -> Callable:
    """The loss of a batch's logits: cross-entropy on its label targets, mixed with the teachers' when distilling."""
    if teacher_log_probs is None:
        return lambda logits: weighted_soft_ce(logits, targets, run.class_weights)
    return lambda logits: distill_loss(logits, targets, teacher_log_probs, run.kd, run.class_weights)


def validate(models: dict[str, torch.nn.Module], faces: FaceSplit, config: dict) -> dict[str, dict]:
    """Validation metrics of each named model (raw and EMA weights).

    predict_probs scores in eval mode and restores each model's mode, so validating
    never changes BatchNorm's running statistics, and the figures are the ones an
    evaluation of the saved checkpoint gives.
    """
    return {name: classification_metrics(predict_probs(model, faces.images, config), faces.labels)
            for name, model in models.items()}


def end_of_epoch(run: Run, progress: Progress, epoch: int, stats: EpochStats) -> bool:
    """Validate, log, keep `best/` (chosen on validation only) and `last/`; True to stop early."""
    args, models = run.args, run.candidates()
    scored = validate(models, run.val_set, run.model_config)
    chosen = max(scored, key=lambda name: scored[name][args.select_metric])
    val = scored[chosen]
    record = epoch_record(run, progress, epoch, stats, scored, chosen)
    progress.history.append(record)
    with open(run.out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    improved = val[args.select_metric] > progress.best_score
    run.log(f"epoch {epoch + 1}: val acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f} "
            f"loss {val['nll']:.4f} ({chosen} weights)" + (" (best)" if improved else ""))
    if improved:
        progress.best_score, progress.stale = val[args.select_metric], 0
        save_best(run, progress, models[chosen], chosen, val, epoch + 1)
    else:
        progress.stale += 1
    save_last(run, progress, epoch + 1)
    if args.patience and progress.stale >= args.patience:
        run.log(f"early stop: no better validation {args.select_metric} for {progress.stale} epochs")
        return True
    return False


def epoch_record(run: Run, progress: Progress, epoch: int, stats: EpochStats, scored: dict, chosen: str) -> dict:
    """One line of metrics.jsonl."""
    val = scored[chosen]
    return {"weights": chosen, **{f"val_acc_{name}": v["accuracy"] for name, v in scored.items()},
            "epoch": epoch + 1, "step": progress.step, "lr": run.optimizer.param_groups[0]["lr"],
            "train_loss": stats.loss, "train_acc": stats.accuracy,
            "val_loss": val["nll"], "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"],
            "val_ece": val["ece"], "img_s": stats.img_s, "epoch_s": stats.seconds}


def save_best(run: Run, progress: Progress, model: torch.nn.Module, weights: str, val: dict, epoch: int) -> None:
    selected = {"split": "validation", "select_metric": run.args.select_metric, "weights": weights,
                **{key: val[key] for key in ("accuracy", "macro_f1", "ece", "n")}, "epoch": epoch}
    with ckpt.atomic_dir(run.out / "best") as tmp:
        ckpt.write_model(tmp, model, run.checkpoint_config(selected, epoch, progress.step))
        (tmp / "validation_report.json").write_text(json.dumps(val, indent=2))


def save_last(run: Run, progress: Progress, epoch_done: int) -> None:
    """Write `last/`: the raw weights and everything --resume needs to continue exactly (rank 0 only)."""
    if not run.master:
        return
    config = run.checkpoint_config(progress.history[-1] if progress.history else None, epoch_done, progress.step)
    state = {"optimizer": run.optimizer.state_dict(), "scaler": run.scaler.state_dict(), "step": progress.step,
             "best_score": progress.best_score, "stale": progress.stale, "history": progress.history,
             "torch_rng": torch.get_rng_state(), "aug_rng": run.aug_gen.get_state(), "py_rng": random.getstate()}
    if run.ema is not None:
        state["ema"] = run.ema.module.state_dict()
    with ckpt.atomic_dir(run.out / "last") as tmp:
        ckpt.write_model(tmp, run.model, config)
        ckpt.write_state(tmp, state)


def finish(run: Run, progress: Progress) -> None:
    """Training curves; with --test, best/'s test-split report."""
    if progress.history:
        plot_curves(progress.history, run.out / "curves.png")
    if run.args.test and (run.out / "best").is_dir():
        evaluate_and_report(run.out / "best", run.args.dataset, "test", run.args.revision, run.args.limit_eval,
                            out_dir=run.out / "best", tta=True)


if __name__ == "__main__":
    sys.exit(main())
