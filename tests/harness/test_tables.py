"""The result tables: mean ± std, paired comparisons, sign and per-seed."""

import pytest

import mic_tf  # noqa: F401
from mic_tf import names
from mic_harness import grid
from mic_harness import stats
from mic_harness import tables


def test_summary_table_mean_and_sample_std():
  rows = [{"label": "A", "test": {"recall@20": v}, "train_seconds": 2.0}
          for v in (1.0, 2.0, 3.0)]
  table = tables.summary_table(rows, metrics=("recall@20",))
  assert "| A | 3 | 2.00 ± 1.00 | ?, ?, ? / ? | ? | 2 |" in table


def _row(variant, seed, recall, best_epoch=3, max_epochs=10, tower="dssm"):
  terms, _ = grid.parse_variant(variant)
  metrics = {"recall@50": recall, "recall@20": recall / 2}
  return {"tower": tower, "variant": variant, "seed": seed,
          "label": names.model_label(tower, terms), "valid": metrics,
          "test": metrics, "best_epoch": best_epoch, "max_epochs": max_epochs,
          "epochs_run": best_epoch + 2, "train_seconds": 100.0 + seed}


def _grid_rows():
  # base 10, 12, 11; ui = base + 1, 2, 3 (see test_stats: p = 0.0742);
  # ii = base + 1 exactly, seed 2 stopped at its last allowed epoch.
  rows = [_row("base", s, r) for s, r in enumerate((10.0, 12.0, 11.0))]
  rows += [_row("ui", s, r) for s, r in enumerate((11.0, 14.0, 14.0))]
  rows += [_row("ii", s, r, best_epoch=10 if s == 2 else 4)
           for s, r in enumerate((11.0, 13.0, 12.0))]
  return rows


def test_summary_table_epochs_and_convergence():
  table = tables.summary_table(_grid_rows(), metrics=("recall@50",))
  assert "epoch sel / max | not converged | train s/run |" in table
  assert "| DSSM | 3 | 11.00 ± 1.00 | 3, 3, 3 / 10 | 0/3 | 101 |" in table
  assert ("| DSSM+MIC(II) | 3 | 12.00 ± 1.00 | 4, 4, 10 / 10 | 1/3: s2 | "
          "101 |") in table


def test_summary_table_of_old_rows_marks_unknown_limit():
  rows = [{"label": "A", "test": {"recall@20": 1.0}, "train_seconds": 2.0,
           "best_epoch": 2, "seed": 0}]
  table = tables.summary_table(rows, metrics=("recall@20",))
  assert "| A | 1 | 1.00 | 2 / ? | ? | 2 |" in table


def test_paired_table():
  table = tables.paired_table(_grid_rows(), metrics=("recall@50",))
  lines = {line.split(" | ")[0]: line for line in table.splitlines()}
  ui = lines["| DSSM+MIC(UI)"]
  assert "| DSSM | 0, 1, 2 | 0/3; 0/3 | +2.00 ± 1.00 | 1.41 | 0.0742 | no | " \
         "no | n.s. |" in ui
  ii = lines["| DSSM+MIC(II)"]
  # Constant +1: p = 0; pooled std 1 (both sd 1), so 1 > 2 fails.
  assert "| 1/3: s2; 0/3 | +1.00 ± 0.00 | 1.00 | 0 | no | yes | " \
         "gain (p < 0.05) |" in ii
  assert "paired t-test (scipy.stats.ttest_rel)" in table
  assert "2·sqrt((s_base² + s_variant²)/2)" in table


def test_paired_table_notes_a_tower_without_base():
  rows = _grid_rows() + [_row("all", 0, 5.0, tower="youtube_dnn")]
  table = tables.paired_table(rows)
  assert "no 'base' cells of tower youtube_dnn" in table


def test_cells_table_flags_last_epoch():
  table = tables.cells_table(_grid_rows())
  assert "| DSSM+MIC(II) | 2 | 10 | 10 | 12 | NOT CONVERGED | 102 | 12.00 | " \
         "12.00 |" in table
  assert "| DSSM | 0 | 3 | 10 | 5 | yes | 100 | 10.00 | 10.00 |" in table


def _report(recall, seed, best_epoch=3):
  cell = {"recall@50": recall}
  return {"results": {"exact": {"u2i": cell, "u2u": dict(cell)}},
          "run": {"seed": seed, "best_epoch": best_epoch, "max_epochs": 5,
                  "train_seconds": 50.0}}


def test_channel_sign_table_pools_every_pair_and_seed():
  groups = {"A": [_report(10.0, s) for s in range(3)],
            "A+MIC": [_report(r, s) for s, r in enumerate((11.0, 12.0, 9.0))],
            "B": [_report(5.0, s) for s in range(2)],
            "B+MIC": [_report(6.0, s) for s in range(3)]}  # seed 2 unpaired
  table = tables.channel_sign_table(groups, [("A+MIC", "A"), ("B+MIC", "B")])
  # 5 paired seeds: 4 higher (A s0, s1; B s0, s1), 1 lower (A s2);
  # p = 2 * (C(5,4) + C(5,5)) / 2^5 = 0.375.
  assert "| exact | u2i | 2 | 5 | 4 | 1 | 0.375 | no |" in table
  assert "| exact | u2u | 2 | 5 | 4 | 1 | 0.375 | no |" in table
  with pytest.raises(ValueError, match="pools \\(variant, base\\) pairs"):
    tables.channel_sign_table(groups, [])
  with pytest.raises(ValueError, match="Group 'C' is not among"):
    tables.channel_sign_table(groups, [("A+MIC", "C")])


def test_channel_seed_table_lists_each_paired_seed_of_each_pair():
  groups = {"A": [_report(10.0, s) for s in range(3)],
            "A+MIC": [_report(r, s, best_epoch=4)
                      for s, r in enumerate((11.0, 12.5, 9.0))],
            "B": [_report(5.0, s) for s in range(2)],
            "B+MIC": [_report(6.0, s) for s in range(3)]}  # seed 2 unpaired
  del groups["B+MIC"][1]["results"]["exact"]["u2u"]
  groups["A+MIC"][0]["run"]["epochs_run"] = 7
  table = tables.channel_seed_table(groups, [("A+MIC", "A"), ("B+MIC", "B")])
  lines = table.splitlines()
  assert lines[0] == ("| index | model | vs | seed | epoch sel / run "
                      "(model; vs) | Δ u2i recall@50 | Δ u2u recall@50 |")
  assert lines[2:7] == [
      "| exact | A+MIC | A | 0 | 4 / 7; 3 / ? | +1.00 | +1.00 |",
      "| exact | A+MIC | A | 1 | 4 / ?; 3 / ? | +2.50 | +2.50 |",
      "| exact | A+MIC | A | 2 | 4 / ?; 3 / ? | -1.00 | -1.00 |",
      "| exact | B+MIC | B | 0 | 3 / ?; 3 / ? | +1.00 | +1.00 |",
      "| exact | B+MIC | B | 1 | 3 / ?; 3 / ? | +1.00 | - |"]
  assert lines[7] == "" and lines[8] == tables.SEED_LEGEND
  # A base label compares every other group with it, then the pairs.
  assert tables.comparison_pairs(groups, "A", [("B+MIC", "B")]) == [
      ("A+MIC", "A"), ("B", "A"), ("B+MIC", "A"), ("B+MIC", "B")]
  with pytest.raises(ValueError, match="pass some"):
    tables.channel_seed_table(groups, [])
  with pytest.raises(ValueError, match="Group 'C' is not among"):
    tables.channel_seed_table(groups, [("A+MIC", "C")])


def test_channel_tables_with_runs():
  groups = {"DSSM": [_report(r, s) for s, r in enumerate((10.0, 12.0, 11.0))],
            "MIC": [_report(r, s, best_epoch=5 if s == 0 else 2)
                    for s, r in enumerate((11.0, 14.0, 14.0))]}
  summary = tables.channel_summary_table(groups, metrics=("recall@50",))
  assert ("| exact | u2u | MIC | 3 | 13.00 ± 1.73 | 5, 2, 2 / 5 | 1/3: s0 | "
          "50 |") in summary
  paired = tables.channel_paired_table(groups, "DSSM", metrics=("recall@50",))
  assert ("| exact | u2i | MIC | DSSM | 0, 1, 2 | 1/3: s0; 0/3 | "
          "+2.00 ± 1.00 | 1.41 | 0.0742 | no | no | n.s. |") in paired
  with pytest.raises(ValueError, match="Group 'X' is not among"):
    tables.channel_paired_table(groups, "X")
  with pytest.raises(ValueError, match="Group 'Y' is not among"):
    tables.channel_paired_table(groups, pairs=[("MIC", "Y")])
  with pytest.raises(ValueError, match="Nothing to compare"):
    tables.channel_paired_table(groups)
  # Each variant against its own base (Table 2: every tower with its +MIC).
  both = dict(groups, YT=[_report(r, s) for s, r in enumerate((9., 9., 9.))],
              **{"YT+MIC": [_report(r, s)
                            for s, r in enumerate((9.5, 9., 10.))]})
  by_pairs = tables.channel_paired_table(
      both, pairs=[("MIC", "DSSM"), ("YT+MIC", "YT")])
  rows = [l for l in by_pairs.splitlines() if l.startswith("| exact | u2i")]
  assert [l.split(" | ")[2:4] for l in rows] == [["MIC", "DSSM"],
                                                 ["YT+MIC", "YT"]]
  assert "| +0.50 ± 0.50 |" in rows[1]
  del groups["MIC"][0]["run"]["seed"]
  with pytest.raises(ValueError, match="no run seed"):
    tables.channel_paired_table(groups, "DSSM")


def test_one_pair_shows_the_difference_and_no_criteria():
  c = stats.paired_comparison({0: 24.5}, {0: 24.0})
  assert tables._paired_cells(c) == ["+0.50", "n/a", "n/a", "n/a", "n/a",
                                   "n/a (1 seed)"]


def test_channel_metric_table_puts_channels_side_by_side():
  groups = {"DSSM": [_report(r, s) for s, r in enumerate((10.0, 12.0, 11.0))],
            "UI": [_report(9.0, 0)]}
  del groups["UI"][0]["results"]["exact"]["u2u"]
  table = tables.channel_metric_table(groups, "recall@50").splitlines()
  assert table[0] == ("| model | seeds | u2i recall@50 | u2u recall@50 | "
                      "epoch sel / max | not converged | train s/run |")
  assert table[2] == ("| DSSM | 3 | 11.00 ± 1.00 | 11.00 ± 1.00 | "
                      "3, 3, 3 / 5 | 0/3 | 50 |")
  assert table[3] == "| UI | 1 | 9.00 | - | 3 / 5 | 0/1 | 50 |"


def test_channel_metric_table_shows_the_validation_score_that_selected():
  groups = {"DSSM": [_report(r, s) for s, r in enumerate((10.0, 12.0))],
            "UI": [_report(9.0, 0)]}
  for report, valid in zip(groups["DSSM"], (20.0, 22.0)):
    report["run"][tables.VALID_KEY] = valid
  table = tables.channel_metric_table(groups, "recall@50").splitlines()
  assert table[0] == ("| model | seeds | u2i recall@50 | u2u recall@50 | "
                      "valid recall@50 (selection) | epoch sel / max | "
                      "not converged | train s/run |")
  assert table[2] == ("| DSSM | 2 | 11.00 ± 1.41 | 11.00 ± 1.41 | "
                      "21.00 ± 1.41 | 3, 3 / 5 | 0/2 | 50 |")
  assert table[3] == "| UI | 1 | 9.00 | 9.00 | ? | 3 / 5 | 0/1 | 50 |"
