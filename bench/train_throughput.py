"""Training throughput of the default recipe on this machine: fp32 vs bf16 autocast + channels_last.

    python -m bench.train_throughput [--model resnet18 --stem s2 --crop 40 --batch-size 128 --steps 20]
    python -m bench.train_throughput --distill [--teachers 3]

Times whole training steps as the trainer runs them (uint8 faces -> input ->
batch augmentation -> forward/backward/SGD step) after warm-up, and prints one
JSON line. `--distill` prints the release chain's costs instead (train/distill_plan.py), bf16 only, in one run:
the s1-40 recipe's epoch in baseline epochs (s2 at 48 px), and what online teachers add to a student's step,
per teacher.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from timm.optim import create_optimizer_v2

from fer_demo.core.model import create_fer_model
from fer_demo.core.transforms import FER_MEAN, FER_STD, to_model_input
from train.augment import AugmentConfig, augment_batch
from fer_demo.core.inference import log_mean_views
from train.losses import KDConfig, distill_loss, soft_targets, weighted_soft_ce
from train.train import train_step


def online_teachers(model_name: str, stem: str, count: int, memory_format, autocast):
    """`count` teachers of the student's shape, run as train.teachers.OnlineTeachers runs them (eval, no grad)."""
    models = [create_fer_model(model_name, stem).to(memory_format=memory_format).eval() for _ in range(count)]

    @torch.no_grad()
    def answer(x):
        with autocast:
            return log_mean_views(torch.stack([m(x).float().log_softmax(-1) for m in models]))
    return answer


def images_per_second(model_name, stem, batch_size, steps, warmup, bf16_channels_last: bool,
                      crop: int | None = None, teachers: int = 0) -> float:
    torch.manual_seed(0)
    model = create_fer_model(model_name, stem)
    memory_format = torch.channels_last if bf16_channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = create_optimizer_v2(model, opt="sgd", lr=0.01, weight_decay=5e-4, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    faces = torch.randint(0, 256, (batch_size, 48, 48), dtype=torch.uint8)
    labels = torch.randint(0, 7, (batch_size,))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_channels_last)
    teach = online_teachers(model_name, stem, teachers, memory_format,
                            torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_channels_last))
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x = augment_batch(to_model_input(faces, 48, FER_MEAN, FER_STD), AugmentConfig(crop=crop))
        x = x.contiguous(memory_format=memory_format)
        targets = soft_targets(labels, 0.1)
        if teachers:
            teacher = teach(x)
            loss_of = lambda logits: distill_loss(logits, targets, teacher, KDConfig(2.0, 0.7))  # noqa: E731
        else:
            loss_of = lambda logits: weighted_soft_ce(logits, targets)  # noqa: E731
        train_step(model, optimizer, scaler, x, loss_of, autocast)
    return batch_size * steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--stem", default="s2")
    p.add_argument("--crop", type=int, default=None, help="train on random crops of this side (train --train-crop)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--distill", action="store_true", help="the distillation chain's costs (see above)")
    p.add_argument("--teachers", type=int, default=3, help="--distill: online teachers to time")
    args = p.parse_args()
    if args.distill:
        return distill_costs(args)
    fp32 = images_per_second(args.model, args.stem, args.batch_size, args.steps, args.warmup, False, args.crop)
    fast = images_per_second(args.model, args.stem, args.batch_size, args.steps, args.warmup, True, args.crop)
    print(json.dumps({"bench": "train_throughput", "model": args.model, "stem": args.stem, "crop": args.crop,
                      "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                      "fp32_img_s": round(fp32, 1), "bf16_channels_last_img_s": round(fast, 1),
                      "speedup": round(fast / fp32, 2)}))


def distill_costs(args) -> None:
    """bf16 img/s of the baseline (s2 at 48 px), the s1-40 recipe, and s1-40 with `--teachers` online teachers."""
    def ips(stem, crop, teachers=0):
        return images_per_second(args.model, stem, args.batch_size, args.steps, args.warmup, True, crop, teachers)

    baseline, student, online = ips("s2", None), ips("s1", 40), ips("s1", 40, args.teachers)
    print(json.dumps({"bench": "train_throughput --distill", "threads": torch.get_num_threads(),
                      "baseline_s2_48_img_s": round(baseline, 1), "s1_40_img_s": round(student, 1),
                      "s1_40_epoch_in_baseline_epochs": round(baseline / student, 2),
                      f"s1_40_with_{args.teachers}_online_teachers_img_s": round(online, 1),
                      "online_cost_per_teacher": round((student / online - 1) / args.teachers, 3)}))


if __name__ == "__main__":
    main()
