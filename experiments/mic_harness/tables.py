"""The result tables: mean ± std over seeds, paired comparisons, sign test.

Every table shows, per group of seeds, the epoch each seed selected on
validation users against the most epochs allowed, and flags the cells
whose selected epoch is the last allowed one ("not converged": still
improving when training stopped).

* Grid rows (``mic_harness.grid.run_grid``, ``grid.json``): ``summary_table``,
  ``paired_table`` (each variant against its tower's base, paired by seed;
  ``mic_harness.stats.paired_comparison``), ``cells_table``; ``grid_tables``
  prints all of them for ``experiments/grid_table.py``.
* Channel reports (``experiments/evaluate.py``, grouped by
  ``mic_harness.channel_tables``): ``channel_summary_table``,
  ``channel_metric_table`` (one metric, a column per channel),
  ``channel_paired_table``, ``channel_sign_table`` (pooled over pairs) and
  ``channel_seed_table`` (each paired seed).
"""

import json
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mic_tf import names
from mic_tf import training
from mic_harness import stats

METRICS = ("recall@20", "ndcg@20", "hr@20", "recall@50", "ndcg@50", "hr@50")


def _epochs_text(cells: Sequence[Dict[str, Any]]) -> str:
  """``"4, 6, 5 / 10"``: selected epochs per seed / most epochs allowed."""
  chosen = ", ".join(str(c.get("best_epoch", "?")) for c in cells)
  limits = {c.get("max_epochs") for c in cells}
  if len(limits) == 1:
    limit = limits.pop()
    return f"{chosen} / {'?' if limit is None else limit}"
  return ", ".join(f"{c.get('best_epoch', '?')}/{c.get('max_epochs', '?')}"
                   for c in cells)


def _not_converged_text(cells: Sequence[Dict[str, Any]]) -> str:
  """``"0/3"``, ``"2/3: s0, s2"`` or ``"?"`` when the limit is unknown."""
  flags = [training.is_converged(c.get("best_epoch"), c.get("max_epochs"))
           for c in cells]
  if any(f is None for f in flags):
    return "?"
  bad = [f"s{c.get('seed', '?')}" for c, f in zip(cells, flags) if not f]
  return f"{len(bad)}/{len(cells)}" + (": " + ", ".join(bad) if bad else "")


EPOCH_LEGEND = (
    "`epoch sel / max`: the epoch each seed selected on validation users / "
    "the most epochs allowed; `not converged`: cells whose selected epoch "
    "is the last allowed one (still improving; `?`: limit not recorded).")


def summary_table(rows: Sequence[Dict[str, Any]], split: str = "test",
                  metrics: Sequence[str] = METRICS,
                  with_time: bool = True) -> str:
  """Markdown table: one row per (tower, variant), mean ± std over seeds.

  Also shows each seed's selected epoch against the most epochs allowed,
  how many seeds did not converge, and the mean training time per run.
  """
  groups: Dict[str, List[Dict[str, Any]]] = {}
  for r in rows:
    groups.setdefault(r["label"], []).append(r)
  header = ["model", "seeds"] + list(metrics) + ["epoch sel / max",
                                                  "not converged"]
  if with_time:
    header.append("train s/run")
  lines = ["| " + " | ".join(header) + " |",
           "|" + "---|" * len(header)]
  for label, cells in groups.items():
    vals = [_mean_std([c[split][m] for c in cells]) for m in metrics]
    line = [label, str(len(cells))] + vals + [_epochs_text(cells),
                                              _not_converged_text(cells)]
    if with_time:
      line.append(_seconds_text([c["train_seconds"] for c in cells]))
    lines.append("| " + " | ".join(line) + " |")
  return "\n".join(lines)


def _seconds_text(seconds: Sequence[Optional[float]]) -> str:
  """Mean seconds; "?" when some run's time is unknown (resumed)."""
  if not seconds or any(s is None for s in seconds):
    return "?"
  return f"{np.mean(seconds):.0f}"


def cells_table(rows: Sequence[Dict[str, Any]],
                metric: str = "recall@50") -> str:
  """Markdown table with one row per cell (tower, variant, seed).

  Columns: the selected epoch, the most epochs allowed, the epochs actually
  run (fewer with early stopping), convergence, training wall time, and the
  valid and test ``metric``.
  """
  header = ["model", "seed", "epoch sel", "max epochs", "epochs run",
            "converged", "train s", f"valid {metric}", f"test {metric}"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for c in rows:
    ok = training.is_converged(c.get("best_epoch"), c.get("max_epochs"))
    lines.append("| " + " | ".join([
        c["label"], str(c.get("seed", "?")), str(c.get("best_epoch", "?")),
        str(c.get("max_epochs", "?")), str(c.get("epochs_run", "?")),
        {True: "yes", False: "NOT CONVERGED", None: "?"}[ok],
        _seconds_text([c["train_seconds"]]), f"{c['valid'][metric]:.2f}",
        f"{c['test'][metric]:.2f}"]) + " |")
  return "\n".join(lines)


PAIRED_LEGEND = (
    "Δ: per-seed difference variant − base over the paired seeds, mean ± "
    "sample std. Two criteria, each shown: `> 2 pooled std` is |mean Δ| > "
    "2·sqrt((s_base² + s_variant²)/2) (s: sample std over seeds); `p < 0.05` "
    "is a two-sided paired t-test (scipy.stats.ttest_rel). `verdict` names "
    "the criteria met; n.s.: neither.")


def _paired_header(metric: str) -> List[str]:
  return [f"Δ {metric}", "pooled std", "p (paired t)", "> 2 pooled std",
          "p < 0.05", "verdict"]


def _paired_cells(c: stats.PairedComparison) -> List[str]:
  yes_no = {True: "yes", False: "no", None: "n/a"}
  # One pair has no spread: the difference alone, no criteria.
  delta = (f"{c.mean:+.2f}" if math.isnan(c.std)
           else f"{c.mean:+.2f} ± {c.std:.2f}")
  pooled = "n/a" if math.isnan(c.pooled_std) else f"{c.pooled_std:.2f}"
  return [delta, pooled,
          "n/a" if math.isnan(c.p_value) else f"{c.p_value:.3g}",
          yes_no[c.beyond_2_pooled_std], yes_no[c.p_significant], c.verdict]


def paired_table(rows: Sequence[Dict[str, Any]], split: str = "test",
                 metrics: Sequence[str] = ("recall@50",),
                 base_variant: str = "base") -> str:
  """Each variant against the base variant of its tower, paired by seed.

  Args:
    rows: Grid rows (``run_grid`` or ``grid.json``).
    split: ``test`` or ``valid``.
    metrics: One block of columns per metric.
    base_variant: The variant every other one is compared with.

  Returns:
    A Markdown table and its legend; towers without a base are skipped
    with a note.
  """
  by_cell: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
  for r in rows:
    by_cell.setdefault((r["tower"], r["variant"]), []).append(r)
  header = ["model", "vs", "paired seeds", "not converged (variant, base)"]
  for m in metrics:
    header += _paired_header(m)
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  notes = []
  for (tower, variant), cells in by_cell.items():
    if variant == base_variant:
      continue
    base = by_cell.get((tower, base_variant))
    if not base:
      notes.append(f"{cells[0]['label']}: no {base_variant!r} cells of "
                   f"tower {tower} to pair with.")
      continue
    line = [cells[0]["label"], base[0]["label"]]
    comparisons = [stats.paired_comparison(
        {c["seed"]: c[split][m] for c in cells},
        {c["seed"]: c[split][m] for c in base}) for m in metrics]
    seeds = comparisons[0].seeds
    line.append(", ".join(str(s) for s in seeds))
    line.append(
        _not_converged_text([c for c in cells if c["seed"] in seeds]) + "; " +
        _not_converged_text([c for c in base if c["seed"] in seeds]))
    for comparison in comparisons:
      line += _paired_cells(comparison)
    lines.append("| " + " | ".join(line) + " |")
  return "\n".join(lines + [""] + notes + [PAIRED_LEGEND])


def grid_tables(paths: Sequence[str], split: str = "test",
                paired_metrics: Sequence[str] = ("recall@50",),
                base_variant: str = "base",
                default_max_epochs: Optional[int] = None) -> str:
  """The tables of ``experiments/grid_table.py`` for grid.json files.

  Summary (mean ± std per variant), the epoch legend, the per-seed paired
  comparison with ``base_variant`` and one row per cell, as markdown.
  ``default_max_epochs`` fills ``max_epochs`` of rows written before it was
  recorded.
  """
  rows = []
  for path in paths:
    with open(path) as f:
      rows += json.load(f)
  if default_max_epochs:
    for r in rows:
      r.setdefault("max_epochs", default_max_epochs)
  return "\n\n".join([
      summary_table(rows, split=split), EPOCH_LEGEND,
      paired_table(rows, split=split, metrics=paired_metrics,
                   base_variant=base_variant),
      cells_table(rows)])


def channel_summary_table(groups: Dict[str, Sequence[Dict[str, Any]]],
                          metrics: Sequence[str] = METRICS) -> str:
  """Mean ± std over seeds of per-channel reports.

  Args:
    groups: Label -> the ``channels_<split>.json`` reports of its seeds
      (written by ``experiments/evaluate.py``). A report may carry a
      ``"run"`` entry (``seed``, ``best_epoch``, ``max_epochs``,
      ``train_seconds`` from the run's metrics.json, as
      ``experiments/channels_table.py`` adds); then the epoch, convergence
      and training time columns are filled.
    metrics: Metric columns.

  Returns:
    A Markdown table, one row per (index, channel, label).
  """
  header = ["index", "channel", "model", "seeds"] + list(metrics)
  has_scann = any("scann" in r["results"] for rs in groups.values()
                  for r in rs)
  if has_scann:
    header.append("ScaNN recall@50 vs exact")
  has_runs = any("run" in r for rs in groups.values() for r in rs)
  if has_runs:
    header += ["epoch sel / max", "not converged", "train s/run"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  indexes = sorted({i for rs in groups.values() for r in rs
                    for i in r["results"]})
  for index in indexes:
    for channel in _channels_of(groups, index):
      for label, reports in groups.items():
        kept = [r for r in reports
                if channel in r["results"].get(index, {})]
        if not kept:
          continue
        cells = [r["results"][index][channel] for r in kept]
        vals = [_mean_std([c[m] for c in cells]) for m in metrics]
        line = [index, channel, label, str(len(cells))] + vals
        if has_scann:
          line.append(_mean_std([c["scann_recall@50"] for c in cells])
                      if "scann_recall@50" in cells[0] else "-")
        if has_runs:
          line += _run_columns(kept)
        lines.append("| " + " | ".join(line) + " |")
  return "\n".join(lines)


# The validation score a run's selected epoch reached: the key under which
# experiments/channels_table.py puts it in a report's "run" entry.
VALID_KEY = "valid_recall@50"


def channel_metric_table(groups: Dict[str, Sequence[Dict[str, Any]]],
                         metric: str = "recall@50",
                         index: str = "exact") -> str:
  """One metric of every channel side by side: a row per group.

  Args:
    groups: As ``channel_summary_table``.
    metric: The metric shown (mean ± std over seeds).
    index: The index whose results are shown.

  Returns:
    A Markdown table: model, seeds, one column per channel, and the epoch,
    convergence and training time columns when the reports carry runs.
    When the runs carry their ``valid_recall@50`` (the selected epoch's
    score on validation users, which early stopping and variant selection
    read), a column shows it before the epoch columns.
  """
  channels = _channels_of(groups, index)
  has_runs = any("run" in r for rs in groups.values() for r in rs)
  has_valid = any(VALID_KEY in r.get("run", {}) for rs in groups.values()
                  for r in rs)
  header = ["model", "seeds"] + [f"{c} {metric}" for c in channels]
  if has_valid:
    header.append("valid recall@50 (selection)")
  if has_runs:
    header += ["epoch sel / max", "not converged", "train s/run"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for label, reports in groups.items():
    kept = [r for r in reports if index in r["results"]]
    if not kept:
      continue
    line = [label, str(len(kept))]
    for channel in channels:
      values = [r["results"][index][channel][metric] for r in kept
                if channel in r["results"][index]]
      line.append(_mean_std(values) if values else "-")
    if has_valid:
      valid = [r.get("run", {}).get(VALID_KEY) for r in kept]
      line.append("?" if None in valid else _mean_std(valid))
    if has_runs:
      line += _run_columns(kept)
    lines.append("| " + " | ".join(line) + " |")
  return "\n".join(lines)


def _run_columns(reports: Sequence[Dict[str, Any]]) -> List[str]:
  """Epoch, convergence and training-time cells of reports with runs."""
  runs = [r.get("run", {}) for r in reports]
  return [_epochs_text(runs), _not_converged_text(runs),
          _seconds_text([run.get("train_seconds") for run in runs])]


def _channels_of(groups, index) -> List[str]:
  return [c for c in names.CHANNELS
          if any(c in r["results"].get(index, {})
                 for rs in groups.values() for r in rs)]


def comparison_pairs(groups: Mapping[str, Any], base_label: Optional[str],
                pairs: Sequence[Tuple[str, str]] = ()
                ) -> List[Tuple[str, str]]:
  """``(variant, base)`` pairs: every other group against ``base_label``
  (when given), then ``pairs``."""
  first = ([] if base_label is None else
           [(label, base_label) for label in groups if label != base_label])
  return first + list(pairs)


def channel_paired_table(groups: Dict[str, Sequence[Dict[str, Any]]],
                         base_label: Optional[str] = None,
                         metrics: Sequence[str] = ("recall@50",),
                         pairs: Sequence[Tuple[str, str]] = ()) -> str:
  """Variants against their bases, per (index, channel), paired by seed.

  Args:
    groups: As ``channel_summary_table``; every report needs its ``"run"``
      entry with the ``seed``.
    base_label: Every other group is compared with this one.
    metrics: One block of columns per metric.
    pairs: ``(variant, base)`` labels compared besides (or instead of)
      those of ``base_label``, e.g. each tower+MIC with its own tower.

  Returns:
    A Markdown table and its legend.

  Raises:
    ValueError: If no comparison is asked for, a label is not a group, or a
      report has no seed.
  """
  pairs = comparison_pairs(groups, base_label, pairs)
  if not pairs and base_label is None:
    raise ValueError("Nothing to compare: pass a base group or "
                     "(variant, base) pairs.")
  _check_labels(groups, {l for pair in pairs for l in pair} |
                ({base_label} if base_label is not None else set()))
  for label, reports in groups.items():
    for r in reports:
      if "seed" not in r.get("run", {}):
        raise ValueError(
            f"A report of group {label!r} has no run seed; load the reports "
            "with experiments/channels_table.py (it reads each run's "
            "metrics.json) to pair seeds.")
  header = ["index", "channel", "model", "vs", "paired seeds",
            "not converged (variant, base)"]
  for m in metrics:
    header += _paired_header(m)
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  indexes = sorted({i for rs in groups.values() for r in rs
                    for i in r["results"]})
  for index in indexes:
    for channel in _channels_of(groups, index):
      for label, base_of in pairs:
        base_kept = [r for r in groups[base_of]
                     if channel in r["results"].get(index, {})]
        kept = [r for r in groups[label]
                if channel in r["results"].get(index, {})]
        if not base_kept or not kept:
          continue
        comparisons = [stats.paired_comparison(
            _by_seed(kept, index, channel, m),
            _by_seed(base_kept, index, channel, m)) for m in metrics]
        seeds = comparisons[0].seeds
        line = [index, channel, label, base_of,
                ", ".join(str(s) for s in seeds),
                _not_converged_text([r["run"] for r in kept
                                     if r["run"]["seed"] in seeds]) + "; " +
                _not_converged_text([r["run"] for r in base_kept
                                     if r["run"]["seed"] in seeds])]
        for comparison in comparisons:
          line += _paired_cells(comparison)
        lines.append("| " + " | ".join(line) + " |")
  return "\n".join(lines + ["", PAIRED_LEGEND])


SIGN_LEGEND = (
    "Pooled over every pair above and each of its paired seeds: how many "
    "per-seed differences Δ are above / below zero, and the two-sided sign "
    "test of those counts (scipy.stats.binomtest, p = 1/2, ties dropped). It "
    "asks whether the variants are higher more often than chance across "
    "models, not by how much; it treats seeds of different models as "
    "independent.")


def channel_sign_table(groups: Dict[str, Sequence[Dict[str, Any]]],
                       pairs: Sequence[Tuple[str, str]],
                       metric: str = "recall@50") -> str:
  """The sign test of each (index, channel), pooled over ``pairs``.

  Args:
    groups: As ``channel_paired_table``.
    pairs: ``(variant, base)`` labels, e.g. each tower+MIC with its tower.
    metric: The compared metric.

  Returns:
    A Markdown table and its legend.

  Raises:
    ValueError: On no pairs, or a label that is not a group.
  """
  _check_pairs(groups, pairs, "The sign test pools")
  header = ["index", "channel", "pairs", "paired seeds", f"Δ {metric} > 0",
            f"Δ {metric} < 0", "p (sign test)", "p < 0.05"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  indexes = sorted({i for rs in groups.values() for r in rs
                    for i in r["results"]})
  for index in indexes:
    for channel in _channels_of(groups, index):
      differences, used = [], []
      for label, base_of in pairs:
        variant = _by_seed(groups[label], index, channel, metric)
        base = _by_seed(groups[base_of], index, channel, metric)
        if set(variant) & set(base):
          used.append(label)
          differences += stats.paired_comparison(variant, base).differences
      if not differences:
        continue
      test = stats.sign_test(differences)
      p_text = "n/a" if math.isnan(test.p_value) else f"{test.p_value:.3g}"
      significant = ("n/a" if math.isnan(test.p_value) else
                     "yes" if test.p_value < 0.05 else "no")
      lines.append("| " + " | ".join([
          index, channel, str(len(used)), str(len(differences)),
          str(test.higher), str(test.lower), p_text, significant]) + " |")
  return "\n".join(lines + ["", SIGN_LEGEND])


SEED_LEGEND = (
    "One row per paired seed: Δ is variant − base on that seed, per channel "
    "(`-`: the channel is missing from one of the two reports); `epoch sel / "
    "run` the epoch each of the two runs selected on validation users / the "
    "epochs it ran.")


def channel_seed_table(groups: Dict[str, Sequence[Dict[str, Any]]],
                       pairs: Sequence[Tuple[str, str]],
                       metric: str = "recall@50") -> str:
  """Each pair's per-seed differences, a row per (index, pair, seed).

  The per-seed view behind ``channel_paired_table``'s means: which seeds
  gained and which lost, with the epochs both runs selected.

  Args:
    groups: As ``channel_paired_table``.
    pairs: ``(variant, base)`` labels.
    metric: The compared metric.

  Returns:
    A Markdown table and its legend.

  Raises:
    ValueError: On no pairs, or a label that is not a group.
  """
  _check_pairs(groups, pairs, "The per-seed table compares")
  indexes = sorted({i for rs in groups.values() for r in rs
                    for i in r["results"]})
  channels = [c for c in names.CHANNELS
              if any(c in _channels_of(groups, i) for i in indexes)]
  header = (["index", "model", "vs", "seed", "epoch sel / run (model; vs)"]
            + [f"Δ {c} {metric}" for c in channels])
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for index in indexes:
    for label, base_of in pairs:
      variant = {r["run"]["seed"]: r for r in groups[label]
                 if index in r["results"]}
      base = {r["run"]["seed"]: r for r in groups[base_of]
              if index in r["results"]}
      for seed in sorted(set(variant) & set(base)):
        v, b = variant[seed]["results"][index], base[seed]["results"][index]
        epochs = "; ".join(f"{r['run']['best_epoch']} / "
                           f"{r['run'].get('epochs_run', '?')}"
                           for r in (variant[seed], base[seed]))
        deltas = [f"{v[c][metric] - b[c][metric]:+.2f}"
                  if c in v and c in b else "-" for c in channels]
        lines.append("| " + " | ".join(
            [index, label, base_of, str(seed), epochs] + deltas) + " |")
  return "\n".join(lines + ["", SEED_LEGEND])


def _check_pairs(groups: Mapping[str, Any],
                 pairs: Sequence[Tuple[str, str]], what: str) -> None:
  if not pairs:
    raise ValueError(f"{what} (variant, base) pairs: pass some "
                     "(channels_table.py: --pair=VARIANT:BASE or --base).")
  _check_labels(groups, {l for pair in pairs for l in pair})


def _check_labels(groups: Mapping[str, Any], labels) -> None:
  for label in sorted(labels):
    if label not in groups:
      raise ValueError(f"Group {label!r} is not among the groups "
                       f"{sorted(groups)}; pass one of them.")


def _by_seed(reports: Sequence[Dict[str, Any]], index: str, channel: str,
             metric: str) -> Dict[int, float]:
  """Seed -> ``metric`` of ``channel`` for the reports that have it."""
  return {r["run"]["seed"]: r["results"][index][channel][metric]
          for r in reports if channel in r["results"].get(index, {})}


def _mean_std(values: Sequence[float]) -> str:
  return stats.format_mean_std(values)
