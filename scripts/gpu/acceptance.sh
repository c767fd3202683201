#!/usr/bin/env bash
# Issue 28's GPU acceptance in one call on a GPU machine, after scripts/gpu/offline_bundle.sh here
# (or, where the project is installed there, WHEELS=0 PYTHON=.venv/bin/python MPLS_DATA_DIR=…).
# The CUDA tests; the simulator's bare GPU step against both engines; the held-out paper30
# four-algorithm comparison on the batched engine to its target (goal: <= 60 s wall); `mpls up
# --workers 6 --device cuda`; the runtime node's own cost on a GPU step. Each part has its own time
# limit (540 s together); the log is $OUT/gpu-acceptance.log. A dry run of the script's logic on a
# CPU: DEVICE=cpu PYTHON=.venv/bin/python WHEELS=0 bash scripts/gpu/acceptance.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
if [ "${WHEELS:-1}" = 1 ]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
fi
export MPLS_DATA_DIR="${MPLS_DATA_DIR:-$PWD/.data}" PYTHONUNBUFFERED=1 MPLS_STATE_DIR=/tmp/mpls-state
export MPLS_RUNS_DIR=/tmp/mpls-runs
LOG="${OUT:-/tmp}/gpu-acceptance.log"

part() { # title, seconds, command...
  local title=$1 seconds=$2 TIMEFORMAT="-- %R s wall"
  shift 2
  echo "== $title"
  time timeout "$seconds" "$@"
  echo "-- exit $? (124: its time limit)"
}

{
  nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
  part "CUDA tests" 120 "$PYTHON" -m pytest -q -n0 -x \
    tests/core/test_devices.py tests/runtime/test_run.py -k "cuda or mps or device"
  part "simulator: the bare step against both engines (--until 3)" 100 \
    "$PYTHON" -m scripts.bench_sim --device "$DEVICE" --until 3
  part "paper30, four algorithms, batched engine, to 90 % (goal <= 60 s)" 180 \
    "$PYTHON" -m mpls_celery sim --algo mpls,appg,netmax,rand-mpls --profile paper30 \
    --topology full --model lenet5 --dataset mnist --until 600s --target-acc 0.9 \
    --stop-at-target --seed 7 --device "$DEVICE" --engine batched --jobs 4
  part "mpls up --workers 6 --device $DEVICE" 90 "$PYTHON" -m mpls_celery up --workers 6 \
    --model lenet5 --dataset mnist --device "$DEVICE" --iterations 60 --topology full
  part "the runtime node's own cost on this device's step" 50 \
    "$PYTHON" -m scripts.bench_node --device "$DEVICE" --iterations 200
} 2>&1 | tee "$LOG"
