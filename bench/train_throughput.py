"""Training throughput of the default recipe on this machine: fp32 vs bf16 autocast + channels_last.

    python -m bench.train_throughput [--model resnet18 --stem s2 --crop 40 --batch-size 128 --steps 20]

Times whole training steps as the trainer runs them (uint8 faces -> input ->
batch augmentation -> forward/backward/SGD step) after warm-up, and prints one
JSON line.
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
from train.losses import soft_targets, weighted_soft_ce
from train.train import train_step


def images_per_second(model_name, stem, batch_size, steps, warmup, bf16_channels_last: bool,
                      crop: int | None = None) -> float:
    torch.manual_seed(0)
    model = create_fer_model(model_name, stem)
    memory_format = torch.channels_last if bf16_channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    optimizer = create_optimizer_v2(model, opt="sgd", lr=0.01, weight_decay=5e-4, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    faces = torch.randint(0, 256, (batch_size, 48, 48), dtype=torch.uint8)
    labels = torch.randint(0, 7, (batch_size,))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16_channels_last)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        x = augment_batch(to_model_input(faces, 48, FER_MEAN, FER_STD), AugmentConfig(crop=crop))
        targets = soft_targets(labels, 0.1)
        train_step(model, optimizer, scaler, x.contiguous(memory_format=memory_format),
                   lambda logits: weighted_soft_ce(logits, targets), autocast)
    return batch_size * steps / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet18")
    p.add_argument("--stem", default="s2")
    p.add_argument("--crop", type=int, default=None, help="train on random crops of this side (train --train-crop)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args()
    fp32 = images_per_second(args.model, args.stem, args.batch_size, args.steps, args.warmup, False, args.crop)
    fast = images_per_second(args.model, args.stem, args.batch_size, args.steps, args.warmup, True, args.crop)
    print(json.dumps({"bench": "train_throughput", "model": args.model, "stem": args.stem, "crop": args.crop,
                      "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                      "fp32_img_s": round(fp32, 1), "bf16_channels_last_img_s": round(fast, 1),
                      "speedup": round(fast / fp32, 2)}))


if __name__ == "__main__":
    main()
