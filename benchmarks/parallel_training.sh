#!/usr/bin/env bash
# Real training, not single steps: does a pair of runs side by side with
# --threads=1 train more per hour than one run with TensorFlow's default
# threads? Alternates, ROUNDS times: one experiments/train.py run (default
# threads), then two started together with --threads=1. Each run trains one
# epoch of STEPS steps and evaluates the valid users (what a grid cell does
# every epoch); the epoch's seconds are read from Keras's log line, so data
# loading at start-up is left out. Prints each set-up's mean epoch seconds
# and the throughput ratio (epochs per hour of the pair / of one run).
#
#   bash benchmarks/parallel_training.sh                # DSSM+MIC, tuned
#   ROUNDS=2 STEPS=300 FLAGS="--mic_preset=tuned --tower=comirec_dr" \
#     bash benchmarks/parallel_training.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
ROUNDS="${ROUNDS:-2}"
STEPS="${STEPS:-300}"
DATASET="${DATASET:-ml-1m}"
read -r -a FLAGS_ARR <<< "${FLAGS:---mic_preset=tuned}"
for name in ROUNDS STEPS; do
  if ! [[ "${!name}" =~ ^[1-9][0-9]*$ ]]; then
    echo "parallel_training.sh: $name='${!name}' is not a positive integer." >&2
    exit 2
  fi
done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

train() {  # output name, extra flags...
  local out=$1
  shift
  "$PY" "$ROOT/experiments/train.py" --dataset="$DATASET" --epochs=1 \
    --steps_per_epoch="$STEPS" --seed=0 --verbose=2 "${FLAGS_ARR[@]}" "$@" \
    --output_dir="$WORK/$out" > "$WORK/$out.log" 2>&1
  # Keras: "300/300 - 41s - ..."
  grep -oE "^$STEPS/$STEPS - [0-9]+s" "$WORK/$out.log" | grep -oE "[0-9]+s$" \
    | tr -d s
}

single=()
pair=()
for r in $(seq "$ROUNDS"); do
  single+=("$(train "single_$r")")
  train "pair_a_$r" --threads=1 > "$WORK/a" &
  a=$!
  train "pair_b_$r" --threads=1 > "$WORK/b" &
  b=$!
  wait "$a" "$b"
  pair+=("$(cat "$WORK/a")" "$(cat "$WORK/b")")
  echo "round $r/$ROUNDS: one run ${single[-1]} s; two runs ${pair[-2]} s and ${pair[-1]} s"
done
"$PY" - "${single[*]}" "${pair[*]}" "$DATASET" "$STEPS" "${FLAGS_ARR[*]}" <<'PY'
import os, statistics, sys
single = [float(x) for x in sys.argv[1].split()]
pair = [float(x) for x in sys.argv[2].split()]
s, p = statistics.mean(single), statistics.mean(pair)
print(f"\n{sys.argv[3]}, {sys.argv[4]} steps + valid evaluation per epoch, "
      f"flags: {sys.argv[5]}; {os.cpu_count()} CPUs; "
      f"{len(single)} rounds")
print("| one run, default threads: epoch s | two runs, 1 thread each: "
      "epoch s (each) | epochs/hour of the pair / of one run |")
print("|---|---|---|")
print(f"| {s:.1f} | {p:.1f} | {2 * s / p:.2f}x |")
PY
