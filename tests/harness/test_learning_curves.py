"""Learning curves from generated metrics.json files."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from mic_harness import groups as groups_lib
from mic_harness import learning_curves

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _write_run(directory, seed, values, best_epoch, max_epochs=10):
  directory.mkdir(parents=True)
  history = [{"epoch": e + 1, "recall@50": v, "recall@20": v / 2}
             for e, v in enumerate(values)]
  (directory / "metrics.json").write_text(json.dumps(
      {"seed": seed, "best_epoch": best_epoch, "history": history,
       "config": {"epochs": max_epochs}}))
  return directory


def test_load_reads_a_run_directory_or_its_metrics_file(tmp_path):
  run = _write_run(tmp_path / "run", 3, [10.0, 12.0, 11.0], 2)
  for path in (str(run), str(run / "metrics.json")):
    c = learning_curves.load(path)
    assert (c.seed, c.epochs, c.values, c.best_epoch, c.max_epochs) == (
        3, [1, 2, 3], [10.0, 12.0, 11.0], 2, 10)
  assert learning_curves.load(str(run), "recall@20").values == [5.0, 6.0, 5.5]


def test_load_names_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="metrics.json is missing"):
    learning_curves.load(str(tmp_path))
  run = _write_run(tmp_path / "run", 0, [1.0], 1)
  with pytest.raises(ValueError, match="no 'hr@50' per epoch; use one of "
                     "recall@20, recall@50"):
    learning_curves.load(str(run), "hr@50")
  (tmp_path / "flat.json").write_text(json.dumps({"seed": 0}))
  with pytest.raises(ValueError, match="no per-epoch 'history'"):
    learning_curves.load(str(tmp_path / "flat.json"))


def test_table_means_over_the_seeds_that_ran_each_epoch(tmp_path):
  _write_run(tmp_path / "a_s0", 0, [10.0, 14.0, 12.0], 2)
  _write_run(tmp_path / "a_s1", 1, [12.0, 12.0, 13.0, 15.0, 11.0], 4)
  _write_run(tmp_path / "b_s0", 0, [9.0, 10.0], 2)
  groups = learning_curves.load_groups(groups_lib.parse(
      [f"A={tmp_path}/a_s*", f"B={tmp_path}/b_s0"]))
  assert [c.seed for c in groups["A"]] == [0, 1]
  lines = learning_curves.curves_table(groups).splitlines()
  assert lines[0] == ("| epoch | A (valid recall@50) | B (valid recall@50) |")
  assert lines[2] == "| 1 | 11.00 | 9.00 |"
  # Epoch 2 has A's highest mean among epochs both seeds ran (13 > 12.5);
  # epoch 4's 15.00 is one seed's and is not marked.
  assert lines[3] == "| 2 | 13.00 * | 10.00 * |"
  assert lines[4] == "| 3 | 12.50 |  |"
  assert lines[5] == "| 4 | 15.00 (1 of 2) |  |"
  assert lines[-1] == ("| selected (mean) | 14.50 (epochs 2, 4) | "
                       "10.00 (epochs 2) |")


def test_binary_writes_the_png_and_the_curves(tmp_path):
  pytest.importorskip("matplotlib")
  _write_run(tmp_path / "runs" / "base_s0", 0, [10.0, 12.0, 11.0], 2)
  _write_run(tmp_path / "runs" / "mic_s0", 0, [11.0, 13.0, 12.5], 2)
  out = tmp_path / "curves" / "c.png"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=str(_ROOT) + os.pathsep + os.environ.get(
                 "PYTHONPATH", ""))
  done = subprocess.run(
      [sys.executable, str(_ROOT / "experiments" / "learning_curves.py"),
       f"--groups=Base={tmp_path}/runs/base_s*",
       f"--groups=MIC={tmp_path}/runs/mic_s*", f"--output={out}"],
      capture_output=True, text=True, env=env, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "| 2 | 12.00 * | 13.00 * |" in done.stdout
  assert out.stat().st_size > 1000
  assert "| 2 | 12.00 * | 13.00 * |" in out.with_suffix(".md").read_text()
  saved = json.loads(out.with_suffix(".json").read_text())
  assert saved["groups"]["MIC"][0]["values"] == [11.0, 13.0, 12.5]
