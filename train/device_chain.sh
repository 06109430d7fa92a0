#!/usr/bin/env bash
# The release's training on a lent GPU machine (the device tool), from the payload that
# `python -m tools.device_payload pack` wrote into .device/ here: one call a folder of it, back to back (the machine
# stays warm 30 s between calls), the last one training:
#
#   carry [".device/call-1"]: bash train/device_chain.sh stage
#   carry [".device/call-2"]: bash train/device_chain.sh stage
#   carry [".device/call-3"]: bash train/device_chain.sh train MINUTES [JOBS]
#
# `stage` keeps the call's files in FER_STAGE (outside the tree, which each call lays anew), installs the wheels
# once they are there and checks the environment. `train` stages too, joins the data's parts, trains the release's
# runs for at most MINUTES (--train-only: the test split never travels), JOBS runs of a step at once (default 4),
# and packs the runs' logs and configs, and the student once trained, into $OUT. A `train` call that ends
# unfinished is continued by another on the warm machine: the runs live in FER_RUNS there. Back here:
# python -m tools.device_payload unpack-results DIR, then python -m train.release packages the student and scores
# the test split, once. docs/training.md has the steps.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${FER_STAGE:-/root/fer-stage}
export FER_RUNS=${FER_RUNS:-/root/fer-runs} PYTHONUNBUFFERED=1
mkdir -p "$STAGE"
for folder in .device/call-*; do
  if [ -d "$folder" ]; then cp -r "$folder"/. "$STAGE"/; fi
done
echo "staged in $STAGE: $(ls "$STAGE" | tr '\n' ' ')"
# The environment, checked on the first call already (it carries the wheels): the packages the image lacks, the GPU.
if [ -d "$STAGE/wheels" ] && [ ! -d /tmp/site/datasets ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$STAGE"/wheels/*.whl
fi
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 -c 'import pyarrow, torch, timm, datasets; print("torch", torch.__version__, "timm", timm.__version__,
  "datasets", datasets.__version__, "pyarrow", pyarrow.__version__, "cuda", torch.cuda.is_available())'
if [ "${1:-stage}" = stage ]; then exit 0; fi
MINUTES=${2:?usage: bash train/device_chain.sh train MINUTES [JOBS]}
JOBS=${3:-4}
if [ ! -d "$STAGE/fer2013" ]; then python3 -m tools.device_payload unpack-data "$STAGE"; fi
status=0
python3 -m train.release --dataset "$STAGE/fer2013" --train-only --jobs "$JOBS" --time-budget-min "$MINUTES" \
  2>&1 | tee "$OUT/release.log" || status=$?
python3 -m tools.device_payload pack-results "$OUT"
exit "$status"
