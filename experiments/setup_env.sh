#!/usr/bin/env bash
# Creates (once) the project's virtual environment in .venv and installs
# mic-tf with its test extra into it. Safe to run again: it only installs
# what is missing. Sourced by run_main.sh and run_tests.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# CPython 3.10 to 3.13 (keep in step with python_requires in setup.cfg):
# tensorflow 2.20 and scann 1.4.2 ship wheels for 3.9 to 3.13, and
# tensorflow-recommenders 0.7.7 does not import on 3.9.
supported() {
  "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' \
    2>/dev/null
}
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.13 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && supported "$candidate"; then
      PY="$candidate"
      break
    fi
  done
fi
if [ -z "$PY" ] || ! supported "$PY"; then
  found="none on PATH"
  [ -n "$PY" ] && found="$("$PY" --version 2>&1 || echo "$PY")"
  echo "mic-tf needs Python 3.10 to 3.13 (tensorflow 2.20, scann 1.4.2," \
       "tensorflow-recommenders 0.7.7); found $found." \
       "Set PYTHON=/path/to/python3.11." >&2
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
