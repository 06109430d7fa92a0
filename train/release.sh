#!/usr/bin/env bash
# Rebuild the shipped model from scratch: ablations on validation, the chosen recipe's release run,
# export, int8 copy, validation re-score, then the test split once (train/release.py says how).
# Resumable across sittings: run the same command again until it prints "release: done".
#
#   bash train/release.sh [DATASET] [BUDGET_MIN]     # e.g. bash train/release.sh ../shared/data/fer2013 150
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-../shared/data/fer2013}
BUDGET=${2:-}
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m train.release --dataset "$DATASET" ${BUDGET:+--time-budget-min "$BUDGET"}
