"""Learning curves: a validation metric epoch by epoch, per run and per group.

Every run of ``experiments/train.py`` (and every cell of
``experiments/ablation.py``) writes ``metrics.json`` with one ``history``
entry per epoch: the validation users' metrics after that epoch, the same
numbers early stopping reads. This module reads those histories (from run
directories or from committed copies of ``metrics.json``), tabulates the mean
over seeds per epoch and plots every seed with its selected epoch marked.
"""

import dataclasses
import json
import os
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from mic_tf.config import experiment_setting


@dataclasses.dataclass
class Curve:
  """One run's validation metric by epoch."""
  source: str
  seed: int
  epochs: List[int]
  values: List[float]
  best_epoch: int
  max_epochs: Optional[int]  # None when the file does not record it


def load(path: str, metric: str = "recall@50") -> Curve:
  """Reads one run's curve.

  Args:
    path: A run directory (its ``metrics.json`` is read) or a ``metrics.json``
      file or a copy of one (e.g. ``docs/results/converged/dssm_base_s0.json``).
    metric: A metric of the history entries, e.g. ``"recall@50"``.

  Raises:
    FileNotFoundError: When there is no metrics file.
    ValueError: When the file has no per-epoch history or lacks ``metric``.
  """
  file = os.path.join(path, "metrics.json") if os.path.isdir(path) else path
  if not os.path.exists(file):
    raise FileNotFoundError(f"{file} is missing: pass a finished run "
                            "directory or its metrics.json.")
  with open(file) as f:
    metrics = json.load(f)
  history = metrics.get("history")
  if not history:
    raise ValueError(f"{file} has no per-epoch 'history': it is not the "
                     "metrics.json of experiments/train.py.")
  if metric not in history[0]:
    known = sorted(k for k in history[0] if k not in ("epoch", "seconds"))
    raise ValueError(f"{file} has no {metric!r} per epoch; use one of "
                     f"{', '.join(known)}.")
  max_epochs = metrics.get("max_epochs", experiment_setting(
      metrics.get("config"), "epochs"))
  return Curve(source=file, seed=int(metrics["seed"]),
               epochs=[int(h.get("epoch", i + 1))
                       for i, h in enumerate(history)],
               values=[float(h[metric]) for h in history],
               best_epoch=int(metrics["best_epoch"]),
               max_epochs=int(max_epochs) if max_epochs else None)


def load_groups(paths: Mapping[str, Sequence[str]],
                metric: str = "recall@50") -> Dict[str, List[Curve]]:
  """``{label: [run dir or metrics file, ...]}`` (as ``groups.parse``
  returns) -> ``{label: curves sorted by seed}``."""
  return {label: sorted((load(p, metric) for p in found),
                        key=lambda c: c.seed)
          for label, found in paths.items()}


def mean_by_epoch(curves: Sequence[Curve]) -> Dict[int, List[float]]:
  """Epoch -> the values of the seeds that ran it."""
  by_epoch: Dict[int, List[float]] = {}
  for c in curves:
    for e, v in zip(c.epochs, c.values):
      by_epoch.setdefault(e, []).append(v)
  return dict(sorted(by_epoch.items()))


def _peak(table: Mapping[int, List[float]], num_seeds: int) -> int:
  """The epoch of the highest mean among those every seed ran (a mean over
  fewer seeds is not comparable with the others)."""
  full = [e for e, v in table.items() if len(v) == num_seeds] or list(table)
  return max(full, key=lambda e: np.mean(table[e]))


def curves_table(groups: Mapping[str, Sequence[Curve]],
                 metric: str = "recall@50") -> str:
  """Markdown: a row per epoch, a column per group.

  A cell is the mean over the seeds that ran that epoch, with their number
  when some seeds had already stopped; a ``*`` marks the group's highest
  mean among the epochs all its seeds ran. The last row gives the mean of
  the values at each seed's selected epoch.
  """
  header = ["epoch"] + [f"{label} (valid {metric})" for label in groups]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  tables = {label: mean_by_epoch(curves) for label, curves in groups.items()}
  peaks = {label: _peak(t, len(groups[label])) for label, t in tables.items()}
  last = max(max(t) for t in tables.values())
  for epoch in range(1, last + 1):
    row = [str(epoch)]
    for label, curves in groups.items():
      values = tables[label].get(epoch)
      if not values:
        row.append("")
        continue
      cell = f"{np.mean(values):.2f}"
      if len(values) < len(curves):
        cell += f" ({len(values)} of {len(curves)})"
      if epoch == peaks[label]:
        cell += " *"
      row.append(cell)
    lines.append("| " + " | ".join(row) + " |")
  selected = ["selected (mean)"]
  for curves in groups.values():
    picked = [c.values[c.epochs.index(c.best_epoch)] for c in curves
              if c.best_epoch in c.epochs]
    epochs = ", ".join(str(c.best_epoch) for c in curves)
    selected.append(f"{np.mean(picked):.2f} (epochs {epochs})"
                    if picked else "?")
  lines.append("| " + " | ".join(selected) + " |")
  return "\n".join(lines)


def plot(groups: Mapping[str, Sequence[Curve]], path: str,
         metric: str = "recall@50", title: str = "") -> str:
  """One PNG: every seed's curve (thin), each group's mean (thick), and a dot
  at each seed's selected epoch. Returns ``path``."""
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("Plotting needs matplotlib: pip install "
                      "'mic-tf[experiments]'.") from e
  fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
  colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, (label, curves) in enumerate(groups.items()):
    colour = colours[i % len(colours)]
    for c in curves:
      ax.plot(c.epochs, c.values, color=colour, alpha=0.35, linewidth=0.8)
      if c.best_epoch in c.epochs:
        ax.plot([c.best_epoch], [c.values[c.epochs.index(c.best_epoch)]],
                "o", color=colour, markersize=4)
    table = mean_by_epoch(curves)
    full = [e for e, v in table.items() if len(v) == len(curves)]
    ax.plot(full, [np.mean(table[e]) for e in full], color=colour,
            linewidth=2.2, label=f"{label} ({len(curves)} seeds; mean while "
            "all run)")
  ax.set_xlabel("epoch")
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set_ylabel(f"valid {metric} (%)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower right")
  if title:
    ax.set_title(title, fontsize=10)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return path
