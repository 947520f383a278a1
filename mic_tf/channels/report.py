"""Channel evaluation of a finished run: the library of experiments/evaluate.py.

``evaluate_run(run_dir, split="test", channels=..., index="exact")`` reloads
a run written by ``mic_tf.training.run_experiment`` (``training.load_run``),
optionally tunes the channel settings on the *valid* users
(``tune_grids``, see ``mic_tf.channels.tuning``), evaluates every requested
channel on ``split`` with each index kind and writes
``<run_dir>/channels_<split>.json``::

  {"split": "test", "cutoffs": [20, 50], "channels": [...],
   "channel_config": {...},          # the settings used (tuned if asked)
   "num_users": 604,
   "results": {"exact": {"u2i": {"recall@20": ..}, ..}, "scann": {..}},
   "tuning": {"metric": "recall@50", "users": "valid",
              "channels": {"u2u": {"best_params": .., "best_value": ..,
                                   "rows": [..]}}}}
"""

import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence

from mic_tf import training
from mic_tf.channels.assets import build_channel_assets
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.config import CHANNELS
from mic_tf.channels.evaluate import build_context
from mic_tf.channels.evaluate import check_channels
from mic_tf.channels.evaluate import evaluate_channels
from mic_tf.channels.evaluate import INDEX_CHOICES
from mic_tf.channels.evaluate import USER_SETS
from mic_tf.channels.tuning import tune_channels


def evaluate_run(run_dir: str, split: str = "test",
                 channels: Sequence[str] = CHANNELS, index: str = "exact",
                 channel_config: Optional[ChannelConfig] = None,
                 tune_grids: Optional[Mapping[str, Mapping[str, Any]]] = None,
                 tune_metric: str = "recall@50", prepared=None,
                 write: bool = True) -> Dict[str, Any]:
  """Evaluates the channels of a finished run (``experiments/train.py``).

  Args:
    run_dir: The run's output directory.
    split: ``"test"`` or ``"valid"``.
    channels: Channels to evaluate.
    index: ``"exact"``, ``"scann"`` or ``"both"``.
    channel_config: ``ChannelConfig`` (defaults if None); the starting
      point of the tuning when ``tune_grids`` is given.
    tune_grids: Optional ``{"u2u" | "i2i" | "fused": {field: [values]}}``
      tuned on the valid users (exact index) before evaluating.
    tune_metric: Metric the tuning maximises.
    prepared: The run's prepared data, if already loaded.
    write: Write ``<run_dir>/channels_<split>.json``.

  Returns:
    The report (module docstring).

  Raises:
    FileNotFoundError: If ``run_dir`` holds no finished run.
    ValueError: On bad arguments.
  """
  if split not in USER_SETS:
    raise ValueError(f"split must be one of {USER_SETS}, got {split!r}.")
  if index not in INDEX_CHOICES:
    raise ValueError(f"index must be one of {INDEX_CHOICES}, got {index!r}.")
  channels = check_channels(channels)
  config = channel_config or ChannelConfig()
  run_config, prepared, model = training.load_run(run_dir, prepared)
  assets = build_channel_assets(model, prepared.tables, prepared.dataset)
  report = {"split": split, "cutoffs": list(run_config.cutoffs),
            "channels": list(channels)}
  if tune_grids:
    context = build_context(model, prepared, "valid", "exact",
                            run_config.exclude_history, assets=assets)
    config, tuned = tune_channels(context, tune_grids, config, tune_metric,
                                  run_config.cutoffs)
    report["tuning"] = {
        "metric": tune_metric, "users": "valid",
        "channels": {c: {"best_params": r.best_params,
                         "best_value": r.best_value, "rows": r.rows}
                     for c, r in tuned.items()}}
  kinds = ("exact", "scann") if index == "both" else (index,)
  report["results"] = {
      kind: evaluate_channels(model, prepared, split, kind, config,
                              run_config.cutoffs, channels,
                              run_config.exclude_history, assets=assets)
      for kind in kinds}
  report["channel_config"] = config.to_dict()
  report["num_users"] = int(len(getattr(prepared, split).users))
  if write:
    path = os.path.join(run_dir, f"channels_{split}.json")
    with open(path + ".tmp", "w") as f:
      json.dump(report, f, indent=1)
    os.replace(path + ".tmp", path)
  return report


def format_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]
                 ) -> str:
  """A plain-text table: one row per (index, channel), one column per metric.

  Args:
    results: ``{index kind: {channel: metrics}}`` (the report's
      ``"results"``).

  Returns:
    The table as a string.
  """
  names = []
  for by_channel in results.values():
    for m in by_channel.values():
      names += [n for n in m if n not in names]
  header = ["index", "channel"] + names
  rows = [[kind, channel] + [f"{m[n]:.3f}" if n in m else "-" for n in names]
          for kind, by_channel in results.items()
          for channel, m in by_channel.items()]
  widths = [max(len(str(r[i])) for r in [header] + rows)
            for i in range(len(header))]
  return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths))
                   for r in [header] + rows)
