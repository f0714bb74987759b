#!/usr/bin/env bash
# Train the whole depth ladder (depths 1-8, seeds 0 and 1) at once on one GPU: one process per rung,
# one CPU thread each (the tiny models are bound by kernel launches, so rungs share the GPU well).
# Usage: bash experiments/depth/gpu_ladder.sh OUT_DIR SECONDS
#   SECONDS: the time budget; rungs still training then stop at their next evaluation and are
#   saved with stopped = "time budget". Then: python -m experiments.depth.catalogue OUT_DIR --install
set -u
out=${1:?usage: gpu_ladder.sh OUT_DIR SECONDS}
budget=${2:?usage: gpu_ladder.sh OUT_DIR SECONDS}
mkdir -p "$out/logs"
deadline=$(python3 -c "import time; print(time.time() + $budget)")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/logs/gpu.csv" 2>&1
pids=()
for seed in 0 1; do
  for layers in 1 2 3 4 5 6 7 8; do
    OMP_NUM_THREADS=1 python3 -m experiments.depth.train --layers "$layers" --seed "$seed" --device cuda \
      --threads 1 --deadline "$deadline" --out "$out" > "$out/logs/depth-${layers}-s${seed}.log" 2>&1 &
    pids+=($!)
  done
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
