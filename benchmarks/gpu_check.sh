#!/usr/bin/env bash
# GPU check in one call of the device machine (see benchmarks/gpu_check.py for the figures):
#   here, once:  benchmarks/gpu_wheels.sh            (the packages that machine lacks, as wheels)
#   then:        device run, carry [".whl"], command "bash benchmarks/gpu_check.sh", timeout 480
# Writes $OUT/gpu_check.json (./gpu-check/ when $OUT is unset) and the pytest log beside it.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1 GEOHSR_CACHE_DIR=/tmp/geohsr-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/gpu_check.py --out "${OUT:-gpu-check}" "$@"
