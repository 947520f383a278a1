#!/usr/bin/env bash
# What changes the numbers of a seeded run: the same short ML-100k training
# (DSSM + MIC, seed 0) under settings that differ between machines of one
# kind. Prints one table row per setting; equal rows = equal numbers.
#   bash benchmarks/repro_sweep.sh            (PYTHON=... to pick the python)
# ONEDNN_MAX_CPU_ISA=AVX2 makes this CPU pick the oneDNN kernels a CPU
# without AVX-512 would pick; taskset -c 0 gives the process one core.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
FLAGS="--dataset=ml-100k --epochs=2 --examples_per_epoch=16384 --seed=0"
FLAGS="$FLAGS --verbose=0 --mic_terms=ui,uu,ii --contrastive_batch_size=128"
run() {  # label, environment/prefix, extra flags
  row=$(eval "env PYTHONPATH=$ROOT $2 $PY experiments/train.py $FLAGS $3" \
        2>&1 | grep '^| DSSM')
  echo "| $1 | ${row#| }"
}
echo "| setting | model | recall@20 | ndcg@20 | ndcg_gt@20 | hr@20 | recall@50 | ndcg@50 | ndcg_gt@50 | hr@50 |"
echo "|---|---|---|---|---|---|---|---|---|---|"
run "default" "" ""
run "default, 1 core" "taskset -c 0" ""
run "CPU without AVX-512 (emulated)" "ONEDNN_MAX_CPU_ISA=AVX2" ""
run "TF_ENABLE_ONEDNN_OPTS=0" "TF_ENABLE_ONEDNN_OPTS=0" ""
run "TF_ENABLE_ONEDNN_OPTS=0, CPU without AVX-512" \
    "TF_ENABLE_ONEDNN_OPTS=0 ONEDNN_MAX_CPU_ISA=AVX2" ""
run "--deterministic" "" "--deterministic"
run "--deterministic, 1 core" "taskset -c 0" "--deterministic"
