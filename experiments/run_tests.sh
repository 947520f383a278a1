#!/usr/bin/env bash
# The test command: sets up .venv (with pytest) and runs the whole suite,
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
exec .venv/bin/python -m pytest -q --durations=15 "$@"
