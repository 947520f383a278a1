"""The per-channel tables of groups of runs (``experiments/channels_table.py``).

A group is one model over several seeds (``mic_harness.groups``); each
of its runs is a run directory evaluated by ``experiments/evaluate.py`` or a
committed copy of one (``docs/results/.../<cell>.json``, with the channel
report beside it as ``channels_<cell>.json``). ``channel_tables`` returns
the tables the results pages (docs/experiments/) show: mean ± std over seeds of every
channel, the epoch each seed selected, and, with a base or pairs, the
per-seed paired differences and their significance.
"""

import json
import os
from typing import Optional, Sequence, Tuple

from mic_tf import training
from mic_tf.config import experiment_setting
from mic_harness import groups as groups_lib
from mic_harness import tables


def committed_copy(path: str) -> bool:
  """Whether ``path`` is a committed copy of a run's metrics.json (e.g.
  ``docs/results/converged/dssm_base_s0.json``) rather than a run dir."""
  return os.path.isfile(path) and path.endswith(".json")


def report_path(run: str, split: str) -> str:
  """The channel report of a run dir, or the committed copy beside a
  committed metrics copy (``channels_<name>.json``, test users only)."""
  if committed_copy(run):
    if split != "test":
      raise ValueError(f"{run} is a committed copy: only test reports are "
                       "committed (use --split=test, or the run dirs).")
    folder, name = os.path.split(run)
    return os.path.join(folder, f"channels_{name}")
  return os.path.join(run, f"channels_{split}.json")


def load_run_info(run_dir: str) -> dict:
  """Seed, selected epoch, most epochs allowed, training time and the
  selected epoch's valid Recall@50 of a run (a run dir or a committed copy
  of its metrics.json)."""
  path = (run_dir if committed_copy(run_dir)
          else os.path.join(run_dir, "metrics.json"))
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} is missing: {run_dir!r} is not a "
                            "finished run of experiments/train.py.")
  with open(path) as f:
    metrics = json.load(f)
  info = {"seed": metrics["seed"], "best_epoch": metrics["best_epoch"],
          "max_epochs": experiment_setting(metrics["config"], "epochs"),
          "epochs_run": metrics.get("epochs_run", len(metrics["history"])),
          "train_seconds": training.whole_train_seconds(metrics)}
  # The score that selected the epoch: valid U2I Recall@50, or the mean of
  # the channels of ``select_on`` when the run selected on others.
  valid = metrics.get("valid", {})
  valid = valid.get(training.SELECTION, valid.get("recall@50"))
  if valid is not None:
    info[tables.VALID_KEY] = valid
  return info


def parse_pair(spec: str) -> Tuple[str, str]:
  """``'VARIANT:BASE'`` -> ``('VARIANT', 'BASE')``."""
  variant, sep, base = spec.rpartition(":")
  if not sep or not variant or not base:
    raise ValueError(f"--pair needs VARIANT:BASE (two --groups labels), got "
                     f"{spec!r}; e.g. --pair='DSSM+MIC:DSSM'.")
  return variant, base


def load_groups(specs: Sequence[str], split: str = "test") -> dict:
  """``LABEL=GLOB`` specs -> label -> the runs' channel reports, each with
  its run's ``load_run_info`` under ``"run"``."""
  groups = {}
  for label, runs in groups_lib.parse(specs).items():
    reports = []
    for run in runs:
      path = report_path(run, split)
      if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: run experiments/evaluate.py --run_dir={run} "
            "first." if not committed_copy(run) else
            f"{path} is missing: {run} has no committed channel report.")
      with open(path) as f:
        reports.append({**json.load(f), "run": load_run_info(run)})
    groups[label] = reports
  return groups


def channel_tables(specs: Sequence[str], split: str = "test",
                   base: Optional[str] = None, pairs: Sequence[str] = (),
                   compact: Optional[str] = None,
                   paired_metrics: Sequence[str] = ("recall@50",),
                   sign_test: bool = False, per_seed: bool = False) -> str:
  """The tables of ``experiments/channels_table.py``, as markdown text.

  Args:
    specs: ``LABEL=GLOB`` groups (``mic_harness.groups``).
    split: ``"test"`` or ``"valid"`` (run dirs only).
    base: Label of the group every other group is compared with.
    pairs: ``"VARIANT:BASE"`` comparisons, each variant with its own base.
    compact: One metric only: a row per group, a column per channel.
    paired_metrics: Metrics of the paired comparison.
    sign_test: Also the sign test of each channel pooled over the
      comparisons (those of ``base`` and ``pairs``; first paired metric).
    per_seed: Also each comparison's difference on every paired seed
      (first paired metric), with the epochs both runs selected.

  Raises:
    ValueError: On a malformed group or pair, or an unknown label.
    FileNotFoundError: On a run without its metrics or channel report.
  """
  pairs = [parse_pair(spec) for spec in pairs]
  groups = load_groups(specs, split)
  parts = [tables.channel_metric_table(groups, compact) if compact
           else tables.channel_summary_table(groups), tables.EPOCH_LEGEND]
  if base or pairs:
    parts.append(tables.channel_paired_table(groups, base,
                                             metrics=paired_metrics,
                                             pairs=pairs))
  compared = tables.comparison_pairs(groups, base, pairs)
  if sign_test:
    parts.append(tables.channel_sign_table(groups, compared,
                                           paired_metrics[0]))
  if per_seed:
    parts.append(tables.channel_seed_table(groups, compared,
                                           paired_metrics[0]))
  return "\n\n".join(parts)
