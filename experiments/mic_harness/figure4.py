"""Paper Figure 4: representation geometry of MIC variants against recall.

For each finished run (a Table 3 variant: base, UI, UU, II, UI+UU, UI+II,
UU+II, all) ``run_geometry`` measures, on the valid or test users, the
alignment and uniformity (``mic_harness.alignment_uniformity``, whose
docstring defines the positive pairs) of the three spaces:

* ``ui_align``, ``ui_user_uniform``, ``ui_item_uniform``: shared space (U2I);
* ``uu_align``, ``uu_uniform``: user space (U2U);
* ``ii_align``, ``ii_uniform``: item space (I2I).

``collect`` adds each run's channel recall from the
``channels_<split>.json`` that ``experiments/evaluate.py`` wrote, and
``plot`` draws one PNG per channel (U2I, U2U, I2I): two panels of
uniformity against alignment, one point per variant (mean over its seeds),
coloured by that channel's recall (yellow = higher) and labelled with the
variant as in the paper (Base, UI, UI-UU, UI-UU-II, ...).
``experiments/figure4.py`` is the binary.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from mic_tf import features as F
from mic_tf import training
from mic_tf.config import ExperimentConfig
from mic_harness import alignment_uniformity as au
from mic_tf.models import encode

GEOMETRY = ("ui_align", "ui_user_uniform", "ui_item_uniform", "uu_align",
            "uu_uniform", "ii_align", "ii_uniform")
CHANNELS = ("u2i", "u2u", "i2i")
# Per channel PNG: (x, y) of each panel.
PANELS = {
    "u2i": (("ui_align", "ui_item_uniform"), ("ui_align", "ui_user_uniform")),
    "u2u": (("ui_align", "uu_uniform"), ("uu_align", "uu_uniform")),
    "i2i": (("ui_align", "ii_uniform"), ("ii_align", "ii_uniform")),
}
AXIS_TITLES = {
    "ui_align": "UI-Align (user query, target item; shared space)",
    "ui_user_uniform": "UI-Uniform, users (shared space)",
    "ui_item_uniform": "UI-Uniform, items (shared space)",
    "uu_align": "UU-Align (two history halves; user space)",
    "uu_uniform": "UU-Uniform (user space)",
    "ii_align": "II-Align (consecutive items; item space)",
    "ii_uniform": "II-Uniform (item space)",
}


def _user_summary(queries: np.ndarray) -> np.ndarray:
  """One unit vector per user: multi-interest -> mean of unit interests."""
  if queries.ndim == 3:
    queries = au.l2_normalize(queries).mean(axis=1)
  return au.l2_normalize(queries)


def run_geometry(model, prepared: F.Prepared, split: str = "test",
                 max_points: int = 4096, max_pairs: int = 20000,
                 seed: int = 0) -> Dict[str, Any]:
  """Alignment and uniformity of a trained model's three spaces.

  Args:
    model: A trained ``MICModel``.
    prepared: Its prepared data.
    split: ``"test"`` or ``"valid"`` users.
    max_points: Points per uniformity (seeded subset above it).
    max_pairs: Positive pairs per alignment (seeded subset above it).
    seed: Seed of the subsets.

  Returns:
    ``GEOMETRY`` values plus ``num_ui_pairs``, ``num_uu_pairs``,
    ``num_ii_pairs``.
  """
  if split not in ("test", "valid"):
    raise ValueError(f"split must be 'test' or 'valid', got {split!r}.")
  users = prepared.test if split == "test" else prepared.valid
  tables = prepared.tables
  rng = np.random.default_rng(seed)
  out: Dict[str, Any] = {}

  # UI: shared space.
  queries = encode.encode_users(model, users.features, "shared")
  items = encode.encode_items(model, "shared")
  rows, targets = au.user_target_pairs(users.targets)
  if rows.size > max_pairs:
    keep = np.sort(rng.choice(rows.size, max_pairs, replace=False))
    rows, targets = rows[keep], targets[keep]
  out["ui_align"] = au.alignment(
      au.closest_interest(queries[rows], items[targets]), items[targets])
  out["ui_user_uniform"] = au.uniformity(_user_summary(queries), max_points=
                                         max_points, seed=seed)
  out["ui_item_uniform"] = au.uniformity(items[1:], max_points=max_points,
                                         seed=seed)
  out["num_ui_pairs"] = int(rows.size)

  # UU: user space, each user from two disjoint halves of the history.
  maxlen = tables.spec.maxlen
  rows, first, second = au.history_halves(users.histories, maxlen)
  if rows.size < 2:
    raise ValueError("Fewer than 2 users have 2 history items: no UU pairs.")

  def encode_halves(halves):
    padded = np.stack([F.pad_history(h, len(h), maxlen) for h in halves])
    feats = tables.user_features(users.users[rows], padded)
    return encode.encode_users(model, feats, "user")

  out["uu_align"] = au.alignment(encode_halves(first), encode_halves(second))
  out["uu_uniform"] = au.uniformity(
      encode.encode_users(model, users.features, "user"),
      max_points=max_points, seed=seed)
  out["num_uu_pairs"] = int(rows.size)

  # II: item space, consecutive items of the users' whole sequences.
  item_space = encode.encode_items(model, "item")
  pairs = au.consecutive_pairs(
      [prepared.dataset.sequences[u] for u in users.users], max_pairs, seed)
  if pairs.shape[0] == 0:
    raise ValueError("The users' sequences hold no consecutive item pairs.")
  out["ii_align"] = au.alignment(item_space[pairs[:, 0]],
                                 item_space[pairs[:, 1]])
  out["ii_uniform"] = au.uniformity(item_space[1:], max_points=max_points,
                                    seed=seed)
  out["num_ii_pairs"] = int(pairs.shape[0])
  return out


def variant_name(config: ExperimentConfig) -> str:
  """The paper's label: ``Base``, ``UI``, ``UI-UU``, ..., ``+nn`` if mined."""
  name = "-".join(t.upper() for t in config.mic.terms) or "Base"
  return name + "+nn" if config.mining.enabled else name


def _prepared_key(config: ExperimentConfig) -> str:
  return json.dumps(dataclasses.asdict(config.data), sort_keys=True,
                    default=str)


def collect(run_dirs: Sequence[str], split: str = "test",
            metric: str = "recall@50", index: str = "exact",
            **geometry_kwargs) -> List[Dict[str, Any]]:
  """Geometry and channel recall of every run.

  Args:
    run_dirs: Finished runs, each evaluated with ``experiments/evaluate.py
      --split=<split> --channels=u2i,u2u,i2i``.
    split: Users of both the geometry and the recall.
    metric: The channel metric that colours the points.
    index: Which index's results (``exact`` or ``scann``).
    **geometry_kwargs: Passed to ``run_geometry``.

  Returns:
    One record per run: ``run_dir``, ``label``, ``seed``, ``terms``,
    ``geometry`` and ``recall`` (channel -> metric).

  Raises:
    FileNotFoundError: If a run or its channel report is missing.
    ValueError: If a report lacks a channel.
  """
  if not run_dirs:
    raise ValueError("Pass at least one run directory.")
  records, cache = [], {}
  for run_dir in run_dirs:
    report_path = os.path.join(run_dir, f"channels_{split}.json")
    if not os.path.exists(report_path):
      raise FileNotFoundError(
          f"{report_path} is missing: run experiments/evaluate.py "
          f"--run_dir={run_dir} --split={split} --channels=u2i,u2u,i2i "
          "first.")
    with open(report_path) as f:
      results = json.load(f)["results"].get(index, {})
    missing = [c for c in CHANNELS if c not in results]
    if missing:
      raise ValueError(
          f"{report_path} has no {index} results for {missing}; rerun "
          f"experiments/evaluate.py --run_dir={run_dir} --split={split} "
          "--channels=u2i,u2u,i2i.")
    with open(os.path.join(run_dir, "config.json")) as f:
      key = _prepared_key(ExperimentConfig.from_dict(json.load(f)))
    config, prepared, model = training.load_run(run_dir, cache.get(key))
    cache[key] = prepared
    records.append({
        "run_dir": run_dir, "label": variant_name(config),
        "seed": config.training.seed, "terms": list(config.mic.terms),
        "geometry": run_geometry(model, prepared, split, **geometry_kwargs),
        "recall": {c: results[c][metric] for c in CHANNELS},
        "metric": metric, "split": split,
    })
  return records


def summarise(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
  """Means over the seeds of each label (order of first appearance)."""
  groups: Dict[str, List[Dict[str, Any]]] = {}
  for r in records:
    groups.setdefault(r["label"], []).append(r)
  out = []
  for label, rs in groups.items():
    out.append({
        "label": label, "seeds": [r["seed"] for r in rs],
        "geometry": {k: float(np.mean([r["geometry"][k] for r in rs]))
                     for k in GEOMETRY},
        "recall": {c: float(np.mean([r["recall"][c] for r in rs]))
                   for c in CHANNELS},
    })
  return out


def plot(records: Sequence[Dict[str, Any]], output_dir: str,
         prefix: str = "figure4") -> List[str]:
  """One PNG per channel; returns their paths.

  Args:
    records: From ``collect`` (averaged over seeds per label here).
    output_dir: Where ``<prefix>_<channel>.png`` go.
    prefix: File name prefix.
  """
  try:
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib.ticker import MaxNLocator  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise ImportError("Plotting needs matplotlib: pip install "
                      "'mic-tf[experiments]'.") from e
  points = summarise(records)
  metric = records[0]["metric"]
  split = records[0]["split"]
  os.makedirs(output_dir, exist_ok=True)
  paths = []
  for channel, panels in PANELS.items():
    recall = np.array([p["recall"][channel] for p in points])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 1,
                                                      4.8),
                             squeeze=False, layout="constrained")
    norm = matplotlib.colors.Normalize(vmin=recall.min(), vmax=recall.max())
    for ax, (x_key, y_key) in zip(axes[0], panels):
      x = [p["geometry"][x_key] for p in points]
      y = [p["geometry"][y_key] for p in points]
      sc = ax.scatter(x, y, c=recall, cmap="viridis", norm=norm, s=80,
                      edgecolors="black", linewidths=0.5)
      for p, xi, yi in zip(points, x, y):
        ax.annotate(p["label"], (xi, yi), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
      ax.set_xlabel(AXIS_TITLES[x_key] + " (lower = better)", fontsize=8)
      ax.set_ylabel(AXIS_TITLES[y_key] + " (lower = better)", fontsize=8)
      ax.grid(alpha=0.3)
      ax.margins(0.15)
      ax.xaxis.set_major_locator(MaxNLocator(5))
      ax.yaxis.set_major_locator(MaxNLocator(6))
    fig.colorbar(sc, ax=list(axes[0]), label=f"{channel.upper()} {metric} (%)")
    seeds = sorted({len(p["seeds"]) for p in points})
    fig.suptitle(f"{channel.upper()} channel, {split} users "
                 f"(mean over {'/'.join(map(str, seeds))} seed(s) per point)")
    path = os.path.join(output_dir, f"{prefix}_{channel}.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    paths.append(path)
  return paths
