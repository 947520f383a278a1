#!/usr/bin/env bash
# The test command: sets up .venv (with pytest) and runs the whole suite on
# two pytest-xdist workers (MIC_TF_TEST_WORKERS=N for N, 0 for one process),
# printing the 15 slowest tests. Arguments go to pytest, e.g.
#   bash experiments/run_tests.sh -m "not slow"   # the fast tier: units and
#                                                 # numpy references
#   bash experiments/run_tests.sh -m docs         # the docs tables only
#   bash experiments/run_tests.sh -m slow         # training and binaries
# MovieLens-100k is fetched once into the data cache by the tests' fixture.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/experiments/setup_env.sh"
cd "$ROOT"
# TensorFlow's C++ start-up notes (INFO) would print once per worker.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"
exec .venv/bin/python -m pytest -q --durations=15 \
  -n "${MIC_TF_TEST_WORKERS:-2}" --dist worksteal "$@"
