"""Which users a model's recall comes from: test users by history length.

A mean Recall@50 can hide opposite effects: contrastive terms are often
said to help users with little history and cost the heavy ones. This module
splits the evaluated users into groups of (about) equal size by the number
of distinct items in their input history, and reports each channel's
Recall@50 per group, per run, and for a variant against its base paired by
seed (``mic_harness.stats``).

Each run's lists come from ``mic_tf.channels.evaluate_channels``, the code
behind ``experiments/evaluate.py`` and the served channels, with the channel
settings that ``evaluate.py`` chose on valid users and saved in the run's
report (``channels_<split>.json``), so a group's users average to exactly
that report's number when every group is put together.
"""

import dataclasses
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from mic_tf import features as F
from mic_tf import metrics as metric_lib
from mic_harness import stats
from mic_tf import training
from mic_tf.channels import ChannelAssets
from mic_tf.channels import ChannelConfig
from mic_tf.channels import evaluate_channels


def history_lengths(users: F.EvalUsers) -> np.ndarray:
  """Distinct real items (ids >= 1) in each evaluated user's input history."""
  return np.array([np.unique(h[h > 0]).size for h in users.histories],
                  dtype=np.int64)


def group_edges(lengths: np.ndarray, num_groups: int) -> np.ndarray:
  """Integer edges that split ``lengths`` into ``num_groups`` quantile groups.

  Group ``g`` holds the lengths in ``[edges[g], edges[g + 1])``; the first
  edge is the smallest length and the last is the largest plus one.

  Raises:
    ValueError: If ``num_groups`` < 1, there are no lengths, or they have
      too few distinct values for that many non-empty groups.
  """
  if num_groups < 1:
    raise ValueError(f"num_groups={num_groups}: use 1 or more.")
  lengths = np.asarray(lengths, np.int64)
  if lengths.size == 0:
    raise ValueError("No users to group.")
  ordered = np.sort(lengths)
  # Group g starts at the length of the user ranked ceil(g * n / G).
  inner = ordered[[int(np.ceil(g * lengths.size / num_groups))
                   for g in range(1, num_groups)]]
  edges = np.concatenate([[lengths.min()], inner, [lengths.max() + 1]])
  counts = np.bincount(assign_groups(lengths, edges), minlength=num_groups)
  if np.any(np.diff(edges) <= 0) or np.any(counts == 0):
    raise ValueError(
        f"The history lengths have too few distinct values for {num_groups} "
        "groups; use fewer groups (--num_groups).")
  return edges


def assign_groups(lengths: np.ndarray, edges: np.ndarray) -> np.ndarray:
  """The group index of each length (see ``group_edges``)."""
  return np.searchsorted(edges[1:-1], lengths, side="right").astype(np.int64)


def group_labels(edges: np.ndarray) -> List[str]:
  """``"18-44"``-style labels: each group's smallest and largest length."""
  return [f"{edges[g]}-{edges[g + 1] - 1}" for g in range(len(edges) - 1)]


@dataclasses.dataclass
class RunRecall:
  """One run's per-user recall on one split.

  Attributes:
    run_dir: The run directory.
    seed: Its training seed.
    recall: Channel -> ``(U,)`` per-user recall at ``cutoff``, percent.
    report: Channel -> the saved report's recall at ``cutoff`` (the check).
  """
  run_dir: str
  seed: int
  recall: Dict[str, np.ndarray]
  report: Dict[str, float]


def run_recall(run_dir: str, split: str = "test",
               channels: Optional[Sequence[str]] = None,
               cutoff: int = 50,
               prepared: Optional[F.Prepared] = None
               ) -> "tuple[RunRecall, F.Prepared]":
  """Per-user recall of a finished, evaluated run's channels.

  Args:
    run_dir: A run of ``experiments/train.py`` on which
      ``experiments/evaluate.py --split=<split>`` has written its report.
    split: ``"test"`` or ``"valid"``.
    channels: Channels to score (default: those of the report).
    cutoff: The recall cutoff (one of the run's cutoffs).
    prepared: The prepared data, if already loaded (same dataset).

  Returns:
    ``(RunRecall, prepared)``.

  Raises:
    FileNotFoundError: If the run has no report for ``split``.
    ValueError: On a channel the report lacks, or a cutoff the run lacks.
  """
  path = os.path.join(run_dir, f"channels_{split}.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} is missing: run experiments/evaluate.py --run_dir={run_dir} "
        f"--split={split} first (its channel settings are reused).")
  with open(path) as f:
    saved = json.load(f)
  exact = saved["results"].get("exact")
  if exact is None:
    raise ValueError(f"{path} has no exact-index results: evaluate with "
                     "--index=exact (or both).")
  channels = list(channels or saved["channels"])
  missing = [c for c in channels if c not in exact]
  if missing:
    raise ValueError(f"{path} has no results for {missing}: evaluate those "
                     "channels first, or drop them from --channels.")
  config, prepared, model = training.load_run(run_dir, prepared)
  cutoffs = config.evaluation.cutoffs
  if cutoff not in cutoffs:
    raise ValueError(f"cutoff {cutoff} is not one of the run's cutoffs "
                     f"{list(cutoffs)}.")
  users = getattr(prepared, split)
  assets = ChannelAssets(model, prepared.tables, prepared.dataset)
  _, lists = evaluate_channels(
      assets, users, channels, "exact",
      ChannelConfig.from_dict(saved["channel_config"]), cutoffs,
      config.evaluation.exclude_history)
  recall = {c: 100.0 * metric_lib.per_user_metrics(
      lists[c], users.targets, cutoffs)[f"recall@{cutoff}"]
            for c in channels}
  report = {c: exact[c][f"recall@{cutoff}"] for c in channels}
  return RunRecall(run_dir, config.training.seed, recall, report), prepared


def group_rows(runs: Mapping[str, Sequence[RunRecall]],
               groups: np.ndarray, labels: Sequence[str],
               base: Optional[str] = None) -> List[Dict]:
  """Mean ± std over seeds of each group's recall, per model and channel.

  Args:
    runs: Model label -> its runs (one per seed).
    groups: ``(U,)`` group index of each user (``assign_groups``).
    labels: Group labels.
    base: Optional model label every other model is compared with, paired
      by seed.

  Returns:
    One row per (channel, group, model): ``channel``, ``group``, ``users``,
    ``model``, ``values`` (seed -> recall), and for non-base models with a
    base, ``paired`` (``stats.PairedComparison`` fields).
  """
  if base is not None and base not in runs:
    raise ValueError(f"base {base!r} is not one of the groups "
                     f"{sorted(runs)}.")
  channels = None
  for model_runs in runs.values():
    for r in model_runs:
      names = list(r.recall)
      channels = names if channels is None else [c for c in channels
                                                 if c in names]
  rows = []
  for channel in channels or []:
    for g, label in enumerate(labels):
      mask = groups == g
      values = {m: {r.seed: float(r.recall[channel][mask].mean())
                    for r in model_runs} for m, model_runs in runs.items()}
      for model, by_seed in values.items():
        row = {"channel": channel, "group": label,
               "users": int(mask.sum()), "model": model, "values": by_seed}
        if base is not None and model != base:
          row["paired"] = dataclasses.asdict(
              stats.paired_comparison(by_seed, values[base]))
        rows.append(row)
  return rows


def format_rows(rows: Sequence[Mapping]) -> str:
  """A Markdown table of ``group_rows``."""
  out = ["| channel | history length | users | model | seeds | recall@50 | "
         "Δ vs base | p (paired t) | verdict |",
         "|---|---|---|---|---|---|---|---|---|"]
  for row in rows:
    values = list(row["values"].values())
    cells = [row["channel"], row["group"], str(row["users"]), row["model"],
             str(len(values)), stats.format_mean_std(values)]
    paired = row.get("paired")
    if paired:
      comparison = stats.PairedComparison(
          **{**paired, "seeds": tuple(paired["seeds"]),
             "differences": tuple(paired["differences"])})
      diff = (f"{comparison.mean:+.2f}" if comparison.n < 2 else
              f"{comparison.mean:+.2f} ± {comparison.std:.2f}")
      p = "n/a" if comparison.n < 2 else f"{comparison.p_value:.3g}"
      cells += [diff, p, comparison.verdict]
    else:
      cells += ["", "", ""]
    out.append("| " + " | ".join(cells) + " |")
  return "\n".join(out)


def compare_by_history(dirs: Mapping[str, Sequence[str]], split: str = "test",
                       channels: Optional[Sequence[str]] = None,
                       num_groups: int = 3, base: Optional[str] = None,
                       prepared: Optional[F.Prepared] = None) -> Dict:
  """Every run's channels per history-length group, models paired by seed.

  Each run's users must average to its saved report (a stale report, one
  the model no longer gives, is refused rather than averaged).

  Args:
    dirs: Label -> run directories (``mic_harness.groups.parse``).
    split: ``"test"`` or ``"valid"``.
    channels: Channels to score (default: each run's report).
    num_groups: Groups of about equal size by history length.
    base: Label every other model is compared with.
    prepared: The prepared data, if already loaded (same dataset).

  Returns:
    The record ``experiments/user_groups.py`` writes: ``split``,
    ``groups`` (the run dirs), ``base``, ``edges``, ``labels``, ``rows``
    (``group_rows``), ``check_against_reports``, plus ``num_users`` and the
    Markdown ``table``.

  Raises:
    ValueError: On a stale report, and as ``run_recall`` and
      ``group_rows``.
    FileNotFoundError: On a run without its report.
  """
  runs, check = {}, []
  for label, run_dirs in dirs.items():
    runs[label] = []
    for run_dir in run_dirs:
      run, prepared = run_recall(run_dir, split, channels, prepared=prepared)
      runs[label].append(run)
      check += [{"run_dir": run_dir, "channel": c,
                 "mean_of_users": float(values.mean()),
                 "report": run.report[c]} for c, values in run.recall.items()]
  for c in check:
    if abs(c["mean_of_users"] - c["report"]) > 1e-6:
      raise ValueError(
          f"{c['run_dir']}: its {c['channel']} users average to recall "
          f"{c['mean_of_users']:.4f} but its saved report says "
          f"{c['report']:.4f}; the report is stale: run "
          "experiments/evaluate.py on it again.")
  users = getattr(prepared, split)
  lengths = history_lengths(users)
  edges = group_edges(lengths, num_groups)
  labels = group_labels(edges)
  rows = group_rows(runs, assign_groups(lengths, edges), labels, base)
  return {"split": split, "groups": {k: list(v) for k, v in dirs.items()},
          "base": base, "edges": edges.tolist(), "labels": labels,
          "rows": rows, "check_against_reports": check,
          "num_users": len(users.users), "table": format_rows(rows)}

