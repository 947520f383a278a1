"""Recall by history-length group: grouping, the per-user scores, the binary."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import analysis_test_lib as lib
import numpy as np
import pytest

from mic_harness import groups as groups_lib
from mic_harness import user_groups

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_groups_split_lengths_by_quantile_with_half_open_edges():
  lengths = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6])
  edges = user_groups.group_edges(lengths, 3)
  groups = user_groups.assign_groups(lengths, edges)
  assert edges[0] == 1 and edges[-1] == 10
  assert np.bincount(groups).tolist() == [3, 3, 3]
  for g, label in enumerate(user_groups.group_labels(edges)):
    low, high = map(int, label.split("-"))
    members = lengths[groups == g]
    assert members.min() == low and members.max() == high
  assert user_groups.group_labels(user_groups.group_edges(lengths, 1)) == [
      "1-9"]
  with pytest.raises(ValueError, match="too few distinct values"):
    user_groups.group_edges(np.array([4, 4, 4, 5]), 3)
  with pytest.raises(ValueError, match="use 1 or more"):
    user_groups.group_edges(lengths, 0)


def test_group_rows_pair_by_seed():
  def run(seed, values):
    return user_groups.RunRecall(f"r{seed}", seed,
                                 {"u2i": np.array(values, float)}, {})
  groups = np.array([0, 0, 1, 1])
  runs = {"B": [run(0, [10, 20, 30, 40]), run(1, [20, 20, 30, 30])],
          "V": [run(0, [20, 30, 30, 40]), run(1, [30, 30, 30, 30])]}
  rows = user_groups.group_rows(runs, groups, ["a", "b"], base="B")
  by = {(r["group"], r["model"]): r for r in rows}
  assert by[("a", "B")]["values"] == {0: 15.0, 1: 20.0}
  assert list(by[("a", "V")]["paired"]["differences"]) == [10.0, 10.0]
  assert by[("b", "V")]["paired"]["mean"] == 0.0
  assert "paired" not in by[("a", "B")]
  table = user_groups.format_rows(rows)
  assert "| u2i | a | 2 | V | 2 | 27.50 ± 3.54 | +10.00 ± 0.00 |" in table
  with pytest.raises(ValueError, match="not one of the groups"):
    user_groups.group_rows(runs, groups, ["a", "b"], base="X")


@pytest.fixture(scope="module")
def evaluated_runs(ml100k, tmp_path_factory):
  root = tmp_path_factory.mktemp("user_groups")
  prepared = lib.train_tiny_runs(
      ml100k, root, [("base_s0", (), 0), ("base_s1", (), 1),
                     ("uu_s0", ("uu",), 0), ("uu_s1", ("uu",), 1)],
      channels=("u2i", "u2u"), tune_grids={"u2u": {"alpha": [0.0, 1.0]}})
  return root, prepared


def test_per_user_recall_averages_to_the_saved_report(evaluated_runs):
  root, prepared = evaluated_runs
  run, _ = user_groups.run_recall(str(root / "uu_s0"), prepared=prepared)
  assert set(run.recall) == {"u2i", "u2u"} and run.seed == 0
  for channel, values in run.recall.items():
    assert values.shape == (len(prepared.test.users),)
    assert values.mean() == pytest.approx(run.report[channel], abs=1e-9)
  with pytest.raises(ValueError, match="no results for"):
    user_groups.run_recall(str(root / "uu_s0"), channels=["i2i"],
                           prepared=prepared)
  with pytest.raises(ValueError, match="not one of the run's cutoffs"):
    user_groups.run_recall(str(root / "uu_s0"), cutoff=10, prepared=prepared)


def _binary(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=str(_ROOT) + os.pathsep + os.environ.get(
                 "PYTHONPATH", ""))
  return subprocess.run(
      [sys.executable, str(_ROOT / "experiments" / "user_groups.py"), *args],
      capture_output=True, text=True, env=env, timeout=600)


def test_binary_writes_the_table_and_refuses_bad_input(evaluated_runs,
                                                       tmp_path):
  root, prepared = evaluated_runs
  out = tmp_path / "groups.json"
  done = _binary(f"--groups=Base={root}/base_s*", f"--groups=UU={root}/uu_s*",
                 "--base=Base", "--num_groups=2", f"--output={out}")
  assert done.returncode == 0, done.stderr[-3000:]
  assert "every run's users average to its saved report" in done.stdout
  record = json.loads(out.read_text())
  assert len(record["labels"]) == 2
  # 2 channels x 2 groups x 2 models.
  assert len(record["rows"]) == 8
  assert all(len(r["values"]) == 2 for r in record["rows"])
  assert (tmp_path / "groups.md").read_text().startswith("| channel |")
  # Bad input, through the binary's library function (one process).
  # A run never evaluated: the error names the fix.
  fresh = tmp_path / "unevaluated"
  shutil.copytree(root / "base_s0", fresh)
  os.remove(fresh / "channels_test.json")
  with pytest.raises(FileNotFoundError, match="run experiments/evaluate.py"):
    user_groups.compare_by_history({"X": [str(fresh)]}, prepared=prepared)
  with pytest.raises(ValueError, match="No run directory matches"):
    groups_lib.parse([f"X={tmp_path}/nothing*"], dirs_only=True)
  # A report that no longer matches the model is refused, not averaged.
  report = json.loads((root / "base_s1" / "channels_test.json").read_text())
  stale = tmp_path / "stale"
  shutil.copytree(root / "base_s1", stale)
  report["results"]["exact"]["u2i"]["recall@50"] += 1.0
  (stale / "channels_test.json").write_text(json.dumps(report))
  with pytest.raises(ValueError, match="the report is stale"):
    user_groups.compare_by_history({"X": [str(stale)]}, prepared=prepared)
