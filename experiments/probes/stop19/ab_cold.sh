#!/bin/bash
# Stop 19 probe: alternating cold-cache wall times of `moestat run` on the contaminated
# distinguishable preset, source tree BASE (e.g. `git archive <commit> src | tar -x -C DIR`,
# then BASE=DIR/src) against this checkout's src.
#   BASE=/tmp/base/src experiments/probes/stop19/ab_cold.sh TAG PRESET ROUNDS [WORK_DIR]
# Prints "round version cold seconds" and, per round, the seconds of a 2000 x 2000 NumPy
# matrix product (this shared machine's speed drifts by up to 1.7x within a session); the runs
# stay in WORK_DIR (default /tmp/ab) for experiments/probes/same_rows.py.
TAG=$1; PRESET=${2:-full}; ROUNDS=${3:-3}; W=${4:-/tmp/ab}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
mkdir -p "$W"
cd "$ROOT" || exit 1
for round in $(seq 1 "$ROUNDS"); do
  .venv/bin/python -c "import time, numpy as np; a = np.random.rand(2000, 2000); a @ a
t = time.perf_counter(); [a @ a for _ in range(5)]
print('$round machine: 2000^2 matmul', round((time.perf_counter() - t) / 5, 3), 's')"
  for v in new base; do
    if [ $v = base ]; then PP=$BASE; else PP=$ROOT/src; fi
    out=$W/${TAG}_${v}_$round; cache=$W/${TAG}c_${v}_$round
    rm -rf "$out" "$cache"
    s=$(date +%s.%N)
    PYTHONPATH=$PP MOESTAT_CACHE_DIR=$cache .venv/bin/python -m moestat run \
      experiments/contaminated_distinguishable.toml --preset "$PRESET" --out "$out" \
      > "$out.log" 2>&1 || echo "run failed: $out.log"
    e=$(date +%s.%N)
    echo "$round $v $PRESET cold $(echo "$e - $s" | bc)"
  done
done
