#!/usr/bin/env bash
# Rebuild the shipped model: recipe ablations, teachers, their ensemble, distillation ablations and the student,
# export, int8 copy, validation re-score, then the test split once (train/release.py says how).
# Resumable across sittings: run the same command again until it prints "release: done".
#
#   bash train/release.sh [DATASET] [BUDGET_MIN] [OPTIONS]   # e.g. bash train/release.sh ../shared/data/fer2013 150
# OPTIONS go to python -m train.release (--from-scratch: train every run anew, ignoring the committed logs).
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-../shared/data/fer2013}
BUDGET=${2:-}
PYTHON=${PYTHON:-python}
exec "$PYTHON" -m train.release --dataset "$DATASET" ${BUDGET:+--time-budget-min "$BUDGET"} "${@:3}"
