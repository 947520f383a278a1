#!/usr/bin/env bash
# Creates (once) the project's virtual environment in .venv and installs
# mic-tf with its test extra into it. Safe to run again: it only installs
# what is missing. Sourced by run_main.sh and run_tests.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "mic-tf needs Python 3.11 (tensorflow 2.20 + scann 1.4.2 wheels);" \
       "found $("$PY" --version). Set PYTHON=/path/to/python3.11." >&2
  exit 1
fi
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "[setup] creating $ROOT/.venv"
  "$PY" -m venv "$ROOT/.venv"
fi
STAMP="$ROOT/.venv/.mic_tf_installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/setup.cfg" -nt "$STAMP" ]; then
  echo "[setup] installing mic-tf and its dependencies (a few minutes the first time)"
  "$ROOT/.venv/bin/python" -m pip install -q --upgrade pip
  "$ROOT/.venv/bin/python" -m pip install -q -e "$ROOT[test]"
  touch "$STAMP"
fi
