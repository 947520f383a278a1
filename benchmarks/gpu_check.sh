#!/usr/bin/env bash
# The GPU check: the MIC step-cost benchmark, then one ML-1M epoch of
# DSSM+MIC (UI+UU+II) with perturbed views of the *full* batch of 1024 (the
# paper's setting, too slow on the project's CPUs), evaluated on valid and
# test users. A few minutes on one modern GPU.
#
#   bash benchmarks/gpu_check.sh [--smoke] [OUT_DIR]
#
# Writes OUT_DIR (default runs/gpu_check) with:
#   device.txt     the devices TensorFlow sees (and nvidia-smi, if present)
#   step_cost.txt  benchmarks/mic_step_cost.py's table
#   train.txt      the epoch's log; mic_full_batch/metrics.json its numbers
#
# Without a visible GPU it stops with an error, unless --smoke is given:
# --smoke runs every step on the CPU with tiny settings (ML-100k, 1 round of
# 2 steps, 2,048 examples), to check the script itself in seconds-to-minutes.
# Needs the project's .venv (experiments/setup_env.sh) or PYTHON=...; for the
# GPU, TensorFlow with CUDA (pip install 'tensorflow[and-cuda]~=2.20.0').
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then
  SMOKE=1
  shift
fi
OUT="${1:-$ROOT/runs/gpu_check}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
if [[ ! -x "$PY" ]]; then
  echo "No Python at $PY: run 'bash experiments/setup_env.sh' first or set" \
       "PYTHON=/path/to/python (with mic-tf installed)." >&2
  exit 1
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
mkdir -p "$OUT"
cd "$ROOT"

echo "[gpu_check] devices" | tee "$OUT/device.txt"
GPUS="$("$PY" -c 'import mic_tf, tensorflow as tf
print(len(tf.config.list_physical_devices("GPU")))' 2>/dev/null | tail -1)"
"$PY" -c 'import mic_tf, tensorflow as tf
print("tensorflow", tf.__version__, tf.config.list_physical_devices())' \
  2>/dev/null | tee -a "$OUT/device.txt"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi | tee -a "$OUT/device.txt"
fi
if [[ "$GPUS" == "0" && "$SMOKE" == "0" ]]; then
  echo "[gpu_check] TensorFlow sees no GPU. Install TensorFlow with CUDA" \
       "(pip install 'tensorflow[and-cuda]~=2.20.0') or pass --smoke to" \
       "run the CPU smoke test." >&2
  exit 1
fi

if [[ "$SMOKE" == "1" ]]; then
  DATASET=ml-100k
  COST_ARGS=(--rounds=1 --steps=2)
  TRAIN_ARGS=(--examples_per_epoch=2048 --batch_size=256)
else
  DATASET=ml-1m
  COST_ARGS=(--rounds=5 --steps=10)
  TRAIN_ARGS=()
fi

echo "[gpu_check] step cost ($DATASET)"
"$PY" benchmarks/mic_step_cost.py --dataset="$DATASET" "${COST_ARGS[@]}" \
  2>&1 | tee "$OUT/step_cost.txt"

echo "[gpu_check] one $DATASET epoch, DSSM+MIC, views of the full batch"
rm -rf "$OUT/mic_full_batch"
"$PY" experiments/train.py --dataset="$DATASET" --tower=dssm --epochs=1 \
  --mic_terms=ui,uu,ii --seed=0 --verbose=2 \
  --output_dir="$OUT/mic_full_batch" "${TRAIN_ARGS[@]}" \
  2>&1 | tee "$OUT/train.txt"
test -f "$OUT/mic_full_batch/metrics.json"
echo "[gpu_check] done: $OUT"
