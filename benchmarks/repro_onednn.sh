#!/usr/bin/env bash
# Does --deterministic give the same numbers whatever the CPU's oneDNN
# default? TensorFlow turns oneDNN's graph rewrites on by default on some
# CPUs only; TF_ENABLE_ONEDNN_OPTS=0 stands for a CPU whose default is off,
# and the cap ONEDNN_MAX_CPU_ISA=AVX2 (set by --deterministic) for one
# without AVX-512. Runs the first epochs of a training command twice, with
# the variable unset and set to 0, and prints each run's epoch lines.
#   bash benchmarks/repro_onednn.sh [train.py flags...]
# Default flags: the DSSM reference run (ML-1M, seed 0), one epoch.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
OUT="${OUT_DIR:-$(mktemp -d)}"
cd "$ROOT"
if [ $# -eq 0 ]; then
  set -- --dataset=ml-1m --tower=dssm --epochs=1 --seed=0 --verbose=2
fi
echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
echo "# flags: $* --deterministic"
for setting in unset 0; do
  if [ "$setting" = unset ]; then env=(env -u TF_ENABLE_ONEDNN_OPTS)
  else env=(env TF_ENABLE_ONEDNN_OPTS=0); fi
  echo "## TF_ENABLE_ONEDNN_OPTS $setting"
  PYTHONPATH="$ROOT" "${env[@]}" "$PY" experiments/train.py "$@" \
      --deterministic --output_dir="$OUT/$setting" 2>&1 \
    | grep -E 'val_recall@50|^\| |deterministic mode sets' \
    | sed -E 's/ - [0-9]+s\/epoch - [0-9]+ms\/step//; s/^([0-9]+\/[0-9]+) - [0-9]+s - /\1 - /'
  python3 -c "import json,sys; n=json.load(open(sys.argv[1]))['numerics']; print('numerics:', {k: n[k] for k in ('deterministic_mode','onednn_opts','onednn_max_cpu_isa','pinned_overrides')})" "$OUT/$setting/run_record.json"
done
