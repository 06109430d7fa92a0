"""Fine-tune a timm ResNet on FER2013.

    python -m train.train --dataset ../shared/data/fer2013 --epochs 30 --out runs/r18
    torchrun --nproc_per_node 4 -m train.train --dataset Aaryan333/fer2013_train_publicTest_privateTest ...

The run folder gets `best/` (selected on the validation split only), `last/`
(resumable: optimizer, step, RNG, EMA), `metrics.jsonl`, `curves.png`, and the
test-split report of `best/` at the end.
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
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from timm.utils import ModelEmaV3
from tqdm import tqdm

from fer_demo import checkpoint as ckpt
from fer_demo.augment import AugmentConfig, augment_batch
from fer_demo.data import DEFAULT_DATASET, DataError, dataset_revision, fer_splits, load_raw
from fer_demo.evaluation import autocast_for, classification_metrics, predict_probs
from fer_demo.labels import FER_LABELS, NUM_CLASSES
from fer_demo.model import STEMS, create_fer_model
from fer_demo.transforms import FER_MEAN, FER_STD, to_model_input

from .report import evaluate_and_report, plot_curves


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--dataset", default=DEFAULT_DATASET, help="Hub id, local folder, or .csv/.parquet file")
    a("--revision", default=None, help="Hub revision (branch, tag or commit)")
    a("--model", default="resnet18", help="any timm ResNet: resnet18, resnet18d, resnet34, resnet50...")
    a("--stem", default="s2", choices=list(STEMS), help="imagenet: stride-2 conv + max-pool; "
      "s2: stride-2 conv, no max-pool; s1: stride-1 conv, no max-pool")
    a("--input-size", type=int, default=48)
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
    a("--drop", type=float, default=0.0, help="dropout before the classifier")
    a("--ema", type=float, default=0.999, help="EMA decay of the weights (0 = off); each epoch the raw or "
      "EMA weights, whichever scores better on validation, are the candidate for best/")
    a("--select-metric", default="accuracy", choices=["accuracy", "macro_f1"])
    a("--patience", type=int, default=0, help="stop after N epochs without a better validation score (0 = off)")
    a("--amp", default="auto", choices=["auto", "bf16", "fp16", "off"])
    a("--no-channels-last", action="store_true")
    a("--seed", type=int, default=0)
    a("--limit-train", type=int, default=None)
    a("--limit-eval", type=int, default=None)
    a("--max-steps", type=int, default=None, help="stop after this many optimizer steps (tests)")
    a("--out", default=None, help="run folder (default runs/<model>-<stem>; with --resume, the resumed one)")
    a("--resume", default=None, help="a run folder (or its last/) to continue exactly")
    a("--no-test", action="store_true", help="skip the final test-split evaluation")
    a("--workers-threads", type=int, default=None, help="torch CPU threads (default: all cores)")
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


def amp_context(mode: str, device: torch.device):
    if mode == "off":
        return torch.autocast(device.type, enabled=False)
    if mode == "auto":
        return autocast_for(device)
    return torch.autocast(device.type, dtype=torch.bfloat16 if mode == "bf16" else torch.float16)


def lr_at(step: int, total: int, warmup: int, peak: float, sched: str) -> float:
    """Linear warm-up, then cosine to 0 (cosine) or linear to 0 (onecycle, peak at 30%)."""
    if sched == "onecycle":
        warmup = max(warmup, int(0.3 * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.5 * (1 + math.cos(math.pi * t)) if sched == "cosine" else max(0.0, 1 - t))


def soft_targets(y: torch.Tensor, smoothing: float) -> torch.Tensor:
    off = smoothing / NUM_CLASSES
    return torch.full((len(y), NUM_CLASSES), off, device=y.device).scatter_(1, y.unsqueeze(1), 1 - smoothing + off)


def weighted_soft_ce(logits, targets, class_weights=None):
    """Cross-entropy with soft targets; class weights weigh each sample by its target mass."""
    loss = -(targets * F.log_softmax(logits.float(), -1)).sum(-1)
    if class_weights is None:
        return loss.mean()
    w = targets @ class_weights
    return (loss * w).sum() / w.sum()


def train_step(model, optimizer, scaler, x, targets, class_weights, autocast):
    """One optimizer step; returns (logits, loss)."""
    with autocast:
        logits = model(x)
    loss = weighted_soft_ce(logits, targets, class_weights)
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


def checkpoint_config(args, dataset_rev: str, metrics: dict | None, epoch: int, step: int) -> dict:
    return {
        "format": "fer-demo/1", "arch": args.model, "stem": args.stem, "input_size": args.input_size,
        "mean": FER_MEAN, "std": FER_STD, "labels": list(FER_LABELS), "num_classes": NUM_CLASSES,
        "dataset": args.dataset, "dataset_revision": dataset_rev, "train_args": vars(args),
        "metrics": metrics or {}, "epoch": epoch, "step": step,
    }


# ------------------------------------------------------------------ run ---

def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        return train(args)
    except (DataError, ckpt.CheckpointError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def train(args) -> int:  # noqa: C901 - one readable loop, nanoGPT style
    rank, world, device = setup_distributed()
    master = rank == 0
    log = print if master else (lambda *a, **k: None)
    if args.workers_threads:
        torch.set_num_threads(args.workers_threads)
    resume_from = None
    if args.resume:
        resume_from = find_resumable(Path(args.resume))
        saved_args = ckpt.read_config(resume_from)["train_args"]
        for key in ("resume", "max_steps", "no_test", "workers_threads"):
            saved_args[key] = getattr(args, key)
        saved_args["out"] = args.out or str(resume_from.parent)
        args = argparse.Namespace(**saved_args)
    args.out = args.out or f"runs/{args.model}-{args.stem}"
    out = Path(args.out)

    torch.manual_seed(args.seed + rank)
    random.seed(args.seed + rank)
    np.random.seed(args.seed + rank)

    # data: decoded once into uint8 tensors, moved to the device once
    limits = {"train": args.limit_train, "validation": args.limit_eval}
    raw = load_raw(args.dataset, args.revision)
    splits = fer_splits(raw, args.dataset, ("train", "validation"), limits, args.seed, log=log)
    train_set, val_set = splits["train"], splits["validation"]
    rev = dataset_revision(raw)
    log(f"data: {len(train_set)} train / {len(val_set)} validation faces from {args.dataset!r}; "
        f"device {device}, {world} process(es)")
    train_x, train_y = train_set.images.to(device), train_set.labels.to(device)

    model = create_fer_model(args.model, args.stem, args.pretrained, args.pretrained_file, args.drop).to(device)
    memory_format = torch.contiguous_format if args.no_channels_last else torch.channels_last
    if getattr(args, "init_checkpoint", None):
        init, _ = ckpt.load_model(args.init_checkpoint, device)
        model.load_state_dict(init.state_dict())
        log(f"initialised from {ckpt.resolve(args.init_checkpoint)}")
    model = model.to(memory_format=memory_format)
    ema = ModelEmaV3(model, decay=args.ema) if args.ema > 0 else None
    optimizer = create_optimizer_v2(model, opt="sgd" if args.opt == "sgd" else "adamw", lr=args.lr,
                                    weight_decay=args.weight_decay, momentum=args.momentum)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp == "fp16" or (
        args.amp == "auto" and device.type == "cuda" and not torch.cuda.is_bf16_supported()))
    mixup = Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, label_smoothing=args.label_smoothing,
                  num_classes=NUM_CLASSES) if (args.mixup > 0 or args.cutmix > 0) else None
    counts = train_set.class_counts().double()
    class_weights = ((counts.sum() / (NUM_CLASSES * counts.clamp(min=1))).float().to(device)
                     if args.class_balance == "loss" else None)
    aug_cfg = AugmentConfig() if args.aug == "fer" else None
    aug_gen = torch.Generator().manual_seed(args.seed * 7 + rank)

    steps_per_epoch = len(train_set) // (args.batch_size * world)
    if steps_per_epoch == 0:
        raise ValueError(f"--batch-size {args.batch_size} x {world} is larger than the {len(train_set)} train faces")
    total_steps = steps_per_epoch * args.epochs
    warmup = int(args.warmup_epochs * steps_per_epoch)
    step, best_score, stale, history = 0, -1.0, 0, []

    if resume_from is not None:
        model_state = ckpt.read_tensors(resume_from / ckpt.MODEL_FILE)
        model.load_state_dict(model_state)
        state = ckpt.read_state(resume_from)
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        if ema is not None:
            ema.module.load_state_dict(state["ema"])
        step, best_score, stale, history = state["step"], state["best_score"], state["stale"], state["history"]
        torch.set_rng_state(state["torch_rng"])
        aug_gen.set_state(state["aug_rng"])
        random.setstate(state["py_rng"])
        log(f"resumed from {resume_from} at step {step} (epoch {step // steps_per_epoch})")

    model_config = checkpoint_config(args, rev, None, 0, 0)
    out.mkdir(parents=True, exist_ok=True)
    train_model = model
    if world > 1:
        train_model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None)

    def save_last(epoch_done: int):
        if not master:
            return
        config = checkpoint_config(args, rev, history[-1] if history else None, epoch_done, step)
        state = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "step": step,
                 "best_score": best_score, "stale": stale, "history": history,
                 "torch_rng": torch.get_rng_state(), "aug_rng": aug_gen.get_state(),
                 "py_rng": random.getstate()}
        if ema is not None:
            state["ema"] = ema.module.state_dict()
        with ckpt.atomic_dir(out / "last") as tmp:
            ckpt.write_model(tmp, model, config)
            ckpt.write_state(tmp, state)

    def end_of_epoch(epoch: int, loss_sum: float, seen: int, correct: int, seconds: float) -> bool:
        """Validate, log, keep `best` (validation only) and `last`; True to stop early."""
        nonlocal best_score, stale
        candidates = {"raw": model} | ({"ema": ema.module} if ema is not None else {})
        scored = {name: classification_metrics(predict_probs(m, val_set.images, model_config), val_set.labels)
                  for name, m in candidates.items()}
        chosen = max(scored, key=lambda name: scored[name][args.select_metric])
        eval_model, val = candidates[chosen], scored[chosen]
        record = {"weights": chosen, **{f"val_acc_{name}": v["accuracy"] for name, v in scored.items()}, "epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"],
                  "train_loss": loss_sum / max(seen, 1), "train_acc": correct / max(seen, 1),
                  "val_loss": val["nll"], "val_acc": val["accuracy"], "val_macro_f1": val["macro_f1"],
                  "val_ece": val["ece"], "img_s": seen * world / seconds, "epoch_s": seconds}
        history.append(record)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        score = val[args.select_metric]
        improved = score > best_score
        log(f"epoch {epoch + 1}: val acc {val['accuracy']:.4f} macro-F1 {val['macro_f1']:.4f} "
            f"loss {val['nll']:.4f} ({chosen} weights)" + (" (best)" if improved else ""))
        if improved:
            best_score, stale = score, 0
            selected = {"split": "validation", "select_metric": args.select_metric, "weights": chosen,
                        "accuracy": val["accuracy"],
                        "macro_f1": val["macro_f1"], "ece": val["ece"], "n": val["n"], "epoch": epoch + 1}
            with ckpt.atomic_dir(out / "best") as tmp:
                ckpt.write_model(tmp, eval_model, checkpoint_config(args, rev, selected, epoch + 1, step))
                (tmp / "validation_report.json").write_text(json.dumps(val, indent=2))
        else:
            stale += 1
        save_last(epoch + 1)
        if args.patience and stale >= args.patience:
            log(f"early stop: no better validation {args.select_metric} for {stale} epochs")
            return True
        return False

    interrupted = False

    def on_sigint(signum, frame):
        nonlocal interrupted
        if interrupted:
            raise KeyboardInterrupt
        interrupted = True
        log("\ninterrupt: saving a resumable checkpoint after this step (Ctrl-C again to abort)")

    previous_handler = signal.signal(signal.SIGINT, on_sigint) if master else None
    max_steps = min(total_steps, args.max_steps or total_steps)
    start_epoch = step // steps_per_epoch
    try:
        for epoch in range(start_epoch, args.epochs):
            if step >= max_steps or interrupted:
                break
            order = epoch_order(len(train_set), epoch, args.seed, train_set.labels, args.class_balance)
            first = step - epoch * steps_per_epoch
            model.train()
            t0, seen, loss_sum, correct = time.time(), 0, 0.0, 0
            bar = tqdm(range(first, steps_per_epoch), disable=not master, desc=f"epoch {epoch + 1}/{args.epochs}",
                       dynamic_ncols=True, leave=True, mininterval=1.0)
            for i in bar:
                global_batch = order[i * args.batch_size * world:(i + 1) * args.batch_size * world]
                idx = global_batch[rank::world].to(device)
                x = to_model_input(train_x[idx], args.input_size, FER_MEAN, FER_STD)
                y = train_y[idx]
                if aug_cfg is not None:
                    x = augment_batch(x, aug_cfg, aug_gen) if device.type == "cpu" else \
                        augment_batch(x.cpu(), aug_cfg, aug_gen).to(device)
                targets = soft_targets(y, args.label_smoothing)
                if mixup is not None:
                    x, targets = mixup(x, y)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step, total_steps, warmup, args.lr, args.sched)
                logits, loss = train_step(train_model, optimizer, scaler, x.contiguous(memory_format=memory_format),
                                          targets, class_weights, amp_context(args.amp, device))
                if ema is not None:
                    ema.update(model, step=step)
                step += 1
                seen += len(y)
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}",
                                img_s=f"{seen * world / (time.time() - t0):.0f}", refresh=False)
                if step >= max_steps or interrupted:
                    break
            bar.close()
            if step % steps_per_epoch != 0:  # stopped mid-epoch
                break
            stop = torch.zeros(1, device=device)
            if master:
                stop += end_of_epoch(epoch, loss_sum, seen, correct, time.time() - t0)
            if world > 1:
                dist.broadcast(stop, 0)
            if stop.item():
                break
        if interrupted or (step < total_steps and step % steps_per_epoch != 0):
            save_last(step // steps_per_epoch)
            log(f"saved a resumable checkpoint at step {step} to {out / 'last'}; continue with --resume {out}")
            return 130 if interrupted else 0
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)

    if master:
        out.mkdir(parents=True, exist_ok=True)
        if history:
            plot_curves(history, out / "curves.png")
        if not args.no_test and (out / "best").is_dir():
            evaluate_and_report(out / "best", args.dataset, "test", args.revision, args.limit_eval,
                                out_dir=out / "best", tta=True)
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
