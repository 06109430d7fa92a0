#!/usr/bin/env bash
# Rebuild the shipped model from scratch. Every choice below was fixed before the
# release run and is made on the validation split (PublicTest) alone; the test
# split (PrivateTest) is scored once, by the last two commands, after the choice.
#
#   bash train/release.sh [DATASET]     # about 2 hours on 2 CPU cores; resumable:
#   python -m train.train --resume runs/release    # continues an interrupted run exactly
set -euo pipefail
DATASET=${1:-../shared/data/fer2013}
RUN=runs/release
DEST=checkpoints/fer-resnet18

# 1. Train, choosing the epoch and raw-or-EMA weights on validation; no test scoring here.
if [ -f "$RUN/last/train_state.safetensors" ]; then
  python -m train.train --resume "$RUN"
else
  python -m train.train --dataset "$DATASET" --model resnet18 --stem s2 --epochs 80 --batch-size 128 \
    --lr 0.1 --opt sgd --sched cosine --warmup-epochs 1 --label-smoothing 0.1 --ema 0.999 --seed 0 \
    --out "$RUN"
fi
# 2. Package the validation-selected weights, quantize a fresh int8 copy (calibrated on validation faces).
python -m train.export "$RUN" "$DEST"
python -m train.quantize "$DEST"
# 3. Score validation (must match config.json), then the test split once.
python -m train.evaluate --checkpoint "$DEST" --dataset "$DATASET" --split validation
python -m train.evaluate --checkpoint "$DEST" --dataset "$DATASET" --split test --tta
python -m train.evaluate --checkpoint "$DEST" --dataset "$DATASET" --split test --tta --backend onnx-int8
