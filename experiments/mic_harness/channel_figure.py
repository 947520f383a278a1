"""Each channel of groups of runs beside the reference rows, as one figure.

``figure_data`` reads the committed channel reports of groups of runs (a run
per seed, ``--groups=LABEL=GLOB`` as in ``channels_table.py``) and the rows
of ``experiments/baselines.py``'s JSON, and returns every value the figure
shows: per group and channel the per-seed test values of one metric, their
mean and sample std, and each reference row's value. ``plot`` draws it: one
cluster of bars per channel (U2I, U2U, I2I, fused), one bar per group with
its seed spread, and the reference rows as horizontal lines.
``experiments/channels_figure.py`` writes the PNG and its JSON twin; the
test of the docs checks that the twin is what the committed JSON gives.
"""

import json
import statistics
from typing import Any, Dict, Sequence

from mic_harness import channel_tables

CHANNELS = ("u2i", "u2u", "i2i", "fused")


def _row_label(row: Dict[str, Any]) -> str:
  params = row.get("params") or {}
  if not params:
    return row["name"]
  inner = ", ".join(f"{'k' if k == 'neighbours' else 'λ' if k == 'l2' else k}"
                    f"={v:g}" for k, v in params.items())
  return f"{row['name']} ({inner})"


def figure_data(specs: Sequence[str], baselines: str,
                metric: str = "recall@50", index: str = "exact",
                split: str = "test") -> Dict[str, Any]:
  """Everything the figure shows, from committed JSON only.

  Raises:
    ValueError: When a run's report lacks ``index`` or a channel, or the
      baselines file has no row.
  """
  groups = channel_tables.load_groups(specs, split)
  out: Dict[str, Any] = {"metric": metric, "split": split, "index": index,
                         "groups": {}, "reference": {},
                         "sources": {"groups": list(specs),
                                     "baselines": baselines}}
  for label, reports in groups.items():
    per_channel = {}
    for channel in CHANNELS:
      values = []
      for report in reports:
        results = report["results"].get(index)
        if results is None or channel not in results:
          raise ValueError(f"{report['run']}: no {index} {channel} result in "
                           "its channel report.")
        values.append(round(results[channel][metric], 6))
      per_channel[channel] = {
          "seeds": [r["run"].get("seed") for r in reports],
          "values": values,
          "mean": round(statistics.fmean(values), 6),
          "std": round(statistics.stdev(values), 6) if len(values) > 1
                 else 0.0}
    out["groups"][label] = per_channel
  with open(baselines) as f:
    rows = json.load(f)["rows"]
  if not rows:
    raise ValueError(f"{baselines} has no reference rows.")
  for row in rows:
    out["reference"][_row_label(row)] = round(row[split][metric], 6)
  return out


def plot(data: Dict[str, Any], path: str, title: str = "") -> None:
  """Writes the bar chart of ``figure_data`` to ``path`` (PNG)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  labels = list(data["groups"])
  width = 0.8 / max(len(labels), 1)
  fig, ax = plt.subplots(figsize=(9.5, 4.5))
  for g, label in enumerate(labels):
    means = [data["groups"][label][c]["mean"] for c in CHANNELS]
    stds = [data["groups"][label][c]["std"] for c in CHANNELS]
    xs = [i - 0.4 + width * (g + 0.5) for i in range(len(CHANNELS))]
    ax.bar(xs, means, width, yerr=stds, capsize=3, label=label)
  styles = ("dotted", "dashdot", "dashed", "solid")
  for r, (name, value) in enumerate(data["reference"].items()):
    ax.axhline(value, color="0.35", linewidth=1,
               linestyle=styles[r % len(styles)], label=name)
  ax.set_xticks(range(len(CHANNELS)))
  ax.set_xticklabels([c.upper() if c != "fused" else "fused"
                      for c in CHANNELS])
  low = min(min(data["reference"].values()),
            min(data["groups"][l][c]["mean"] for l in labels
                for c in CHANNELS))
  ax.set_ylim(max(0.0, low - 3.0), None)
  ax.set_ylabel(f"{data['split']} {data['metric']} (%)")
  ax.set_title(title or f"Each channel ({data['index']}, mean ± std over "
               "seeds) and the reference rows")
  ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
