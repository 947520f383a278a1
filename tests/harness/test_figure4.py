"""experiments/figure4.py end to end on two tiny ML-100k runs."""

import json
import os
import pathlib
import subprocess
import sys

import analysis_test_lib as lib
import numpy as np
import pytest

from mic_tf import training
from mic_harness import figure4

_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(ml100k, tmp_path_factory):
  root = tmp_path_factory.mktemp("figure4")
  prepared = lib.train_tiny_runs(
      ml100k, root, [("base", (), 0), ("ii", ("ii",), 0)],
      channels=("u2i", "u2u", "i2i"))
  return root, [str(root / "base"), str(root / "ii")], prepared


def test_command_writes_one_png_per_channel_and_the_numbers(runs):
  root, _, _ = runs
  out_dir = root / "docs"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=str(_ROOT) + os.pathsep + os.environ.get(
                 "PYTHONPATH", ""))
  done = subprocess.run(
      [sys.executable, str(_ROOT / "experiments" / "figure4.py"),
       f"--run_dirs={root}/*", "--max_points=500", "--max_pairs=2000",
       f"--output_dir={out_dir}"],
      capture_output=True, text=True, env=env, timeout=600)
  assert done.returncode == 0, done.stderr[-3000:]
  for channel in ("u2i", "u2u", "i2i"):
    png = out_dir / f"figure4_{channel}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  with open(out_dir / "figure4.json") as f:
    record = json.load(f)
  assert [p["label"] for p in record["points"]] == ["Base", "II"]
  for run in record["runs"]:
    g = run["geometry"]
    assert 0 <= g["ui_align"] <= 4 and 0 <= g["uu_align"] <= 4
    assert 0 <= g["ii_align"] <= 4
    for k in ("ui_user_uniform", "ui_item_uniform", "uu_uniform",
              "ii_uniform"):
      assert -8 <= g[k] <= 0
    with open(os.path.join(run["run_dir"], "channels_test.json")) as f:
      report = json.load(f)["results"]["exact"]
    assert run["recall"] == {c: report[c]["recall@50"]
                             for c in ("u2i", "u2u", "i2i")}
  assert "| Base | 1 |" in done.stdout


def test_geometry_is_deterministic_and_missing_report_is_named(runs):
  _, dirs, prepared = runs
  _, prepared, model = training.load_run(dirs[0], prepared)
  a = figure4.run_geometry(model, prepared, max_points=300, max_pairs=500)
  b = figure4.run_geometry(model, prepared, max_points=300, max_pairs=500)
  assert a == b and a["num_ui_pairs"] == 500
  assert np.isfinite(list(a.values())).all()
  os.rename(os.path.join(dirs[1], "channels_test.json"),
            os.path.join(dirs[1], "moved.json"))
  try:
    with pytest.raises(FileNotFoundError, match="run experiments/evaluate.py"):
      figure4.collect(dirs, split="test")
  finally:
    os.rename(os.path.join(dirs[1], "moved.json"),
              os.path.join(dirs[1], "channels_test.json"))
