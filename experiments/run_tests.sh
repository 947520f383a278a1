#!/usr/bin/env bash
# The test command: sets up .venv (with pytest) and runs the whole suite.
# MovieLens-100k is fetched once into the data cache by the tests' fixture.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/experiments/setup_env.sh"
cd "$ROOT"
exec .venv/bin/python -m pytest -q "$@"
