#!/usr/bin/env bash
# The main job: sets up .venv, fetches MovieLens-1M from the package registry,
# fits the four reference rows (MostPopular, ItemKNN, UserKNN, EASE; UserKNN's
# k and EASE's lambda chosen on valid users), trains DSSM+MIC with the
# documented preset (MICConfig.tuned()) and early stopping on valid
# Recall@50 (patience 2, at most 8 epochs, so that the job fits 15 minutes
# on 2 cores; the converged DSSM against DSSM+MIC comparison is
# experiments/ablation.py, printed at the end), tunes the U2U, I2I and
# fusion settings on valid users, and prints one table for the test users:
# the reference rows and DSSM+MIC's U2I, U2U, I2I and fused lists. --deterministic: the same table on the
# AMD EPYCs checked, not on an Intel Xeon (docs/guides/reproducibility.md). Extra flags go to
# experiments/main.py, e.g. `bash experiments/run_main.sh --epochs=20`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/experiments/setup_env.sh"
cd "$ROOT"
.venv/bin/python experiments/main.py --dataset=ml-1m --tower=dssm \
  --mic_preset=tuned --epochs=8 --patience=2 --seed=0 --verbose=2 \
  --deterministic \
  --output_dir="${MIC_TF_RUN_DIR:-runs/main}" "$@"
