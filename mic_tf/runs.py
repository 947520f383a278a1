"""A finished run's channels: evaluate them, tune them, export them.

The library of ``experiments/evaluate.py`` and ``experiments/export.py``. It
sits next to ``mic_tf.training`` (which it uses to reload a run), so that
neither ``mic_tf.channels`` nor ``mic_tf.export`` depends on training.

``evaluate_run(run_dir, split="test", ...)`` reloads a run written by
``mic_tf.training.run_experiment``, optionally tunes the channel settings on
the *valid* users (``tune_grids``, see ``mic_tf.channels.tuning``),
evaluates every requested channel on ``split`` with each index kind and
writes ``<run_dir>/channels_<split>.json``::

  {"split": "test", "cutoffs": [20, 50], "channels": [...],
   "channel_config": {...},          # the settings used (tuned if asked)
   "num_users": 604,
   "left_out": [],                   # channels the catalogue is too big for
   "fusion": {"rule": "rrf u2u:1 ease:2", "channels": ["u2u", "ease"]},
   "results": {"exact": {"u2i": {"recall@20": ..}, ..}, "scann": {..}},
   "tuning": {"metric": "recall@50", "users": "valid",
              "channels": {"u2u": {"best_params": .., "best_value": ..,
                                   "rows": [..]},
                           "fused": {.., "summary": {"best_single": ..,
                                                      "best_mix": ..,
                                                      "mix_wins": ..}}}}}

``export_run(run_dir, export_dir, ...)`` exports the same channel modules
(``mic_tf.export``), with raw-id serving. Without a ``channel_config`` it
serves the settings tuned for the run: those of the newest report in
``run_dir`` that holds a tuning (``tuned_config``), and says which it used
(a console line, and ``channel_config_source`` in ``export.json``); a run
never tuned is exported with the default settings, and says so.

Channels the catalogue is too large for (EASE above its item limit) are
left out of the evaluation, the tuning and the export, with one console
line each (and ``left_out`` in the report).
"""

import glob
import json
import os
from typing import Any, Dict, Mapping, Optional, Sequence

from mic_tf import channels as channel_lib
from mic_tf import console
from mic_tf import export
from mic_tf import names
from mic_tf import training
from mic_tf.channels.assets import available_channels
from mic_tf.channels.assets import check_channels
from mic_tf.channels.evaluate import evaluate_channels

SPLITS = names.EVAL_SPLITS
INDEX_CHOICES = names.EVAL_INDEX_CHOICES
USER_TOWER = "user_tower"
ITEM_TOWER = "item_tower"


def evaluate_run(run_dir: str, split: str = "test",
                 channels: Sequence[str] = names.CHANNELS,
                 index: str = names.EXACT,
                 channel_config: Optional[channel_lib.ChannelConfig] = None,
                 tune_grids: Optional[Mapping[str, Mapping[str, Any]]] = None,
                 tune_metric: str = "recall@50", prepared=None,
                 write: bool = True,
                 report_name: Optional[str] = None,
                 fusion_folds: Optional[int] = None,
                 prior_margin: Any = "default") -> Dict[str, Any]:
  """Evaluates the channels of a finished run (``experiments/train.py``).

  Args:
    run_dir: The run's output directory.
    split: ``"test"`` or ``"valid"``.
    channels: Channels to evaluate.
    index: ``"exact"``, ``"scann"`` or ``"both"``.
    channel_config: ``ChannelConfig`` (defaults if None); the starting
      point of the tuning when ``tune_grids`` is given.
    tune_grids: Optional ``{channel: {field: [values]}}`` (channels of
      ``mic_tf.channels.tuning.TUNABLE``) tuned on the valid users (exact
      index) before evaluating (``mic_tf.channels.DEFAULT_GRIDS`` is the
      default of the binary).
    tune_metric: Metric the tuning maximises.
    prepared: The run's prepared data, if already loaded.
    write: Write ``<run_dir>/channels_<split>.json``.
    report_name: Another file name for it (inside ``run_dir``), e.g. to
      keep the reports of two channel settings side by side.
    fusion_folds: Folds of the valid users that first choose the fusion's
      family of rules (``mic_tf.channels.tune_channels``; None: the
      library's ``FUSION_FOLDS``; 0: the refined best rule of all valid
      users).
    prior_margin: The fusion serves the searched rule only when it beats
      ``mic_tf.channels.PRIOR_FUSION`` on the valid users by more than this
      many standard errors; ``"default"``: the library's ``PRIOR_MARGIN``;
      None: always the searched rule.

  Returns:
    The report (module docstring).

  Raises:
    FileNotFoundError: If ``run_dir`` holds no finished run.
    ValueError: On bad arguments.
  """
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
  if index not in INDEX_CHOICES:
    raise ValueError(f"index must be one of {INDEX_CHOICES}, got {index!r}.")
  channels = check_channels(channels)
  config = channel_config or channel_lib.ChannelConfig()
  name = report_name or f"channels_{split}.json"
  if os.path.basename(name) != name or not name.endswith(".json"):
    raise ValueError(f"report_name must be a file name ending in .json, "
                     f"got {name!r}.")
  run_config, prepared, model = training.load_run(run_dir, prepared)
  assets = channel_lib.ChannelAssets(model, prepared.tables,
                                     prepared.dataset)
  requested = channels
  channels = available_channels(channels, prepared.tables.spec.num_items,
                                config, say=console.status)
  if not channels:
    raise ValueError(f"None of the channels {list(requested)} can be built "
                     "for this catalogue; choose others.")
  report = {"split": split, "cutoffs": list(run_config.evaluation.cutoffs),
            "channels": list(channels),
            "left_out": [c for c in requested if c not in channels]}
  if tune_grids:
    config, tuned = channel_lib.tune_channels(
        assets, prepared.valid, tune_grids, config, tune_metric,
        run_config.evaluation.cutoffs, run_config.evaluation.exclude_history,
        **({} if fusion_folds is None else {"fusion_folds": fusion_folds}),
        **({} if prior_margin == "default" else
           {"prior_margin": prior_margin}))
    report["tuning"] = {
        "metric": tune_metric, "users": "valid",
        "channels": {c: {"best_params": r.best_params,
                         "best_value": r.best_value, "rows": r.rows,
                         **({"summary": r.summary} if r.summary else {})}
                     for c, r in tuned.items()}}
  users = getattr(prepared, split)
  results, exact_lists = {}, None
  for kind in ((names.EXACT, names.SCANN) if index == "both" else (index,)):
    results[kind], lists = evaluate_channels(
        assets, users, channels, kind, config, run_config.evaluation.cutoffs,
        run_config.evaluation.exclude_history, exact_lists=exact_lists)
    if kind == names.EXACT:
      exact_lists = lists
  report["results"] = results
  report["channel_config"] = config.to_dict()
  report["fusion"] = {"rule": config.fusion.describe(),
                      "channels": list(config.fusion.channels)}
  report["num_users"] = int(len(users.users))
  if write:
    path = os.path.join(run_dir, name)
    with open(path + ".tmp", "w") as f:
      json.dump(report, f, indent=1)
    os.replace(path + ".tmp", path)
  return report


def export_run(run_dir: str, export_dir: str,
               channels: Sequence[str] = names.CHANNELS, k: int = 50,
               index: str = names.EXACT,
               channel_config: Optional[channel_lib.ChannelConfig] = None,
               raw_ids: bool = True, prepared=None) -> Dict[str, str]:
  """Exports the towers and one server per channel of a finished run.

  The servers are the channel modules the evaluation runs; history
  exclusion follows the run's ``exclude_history``.

  Args:
    run_dir: The run's output directory.
    export_dir: Output directory (see ``mic_tf.export``).
    channels: Channel servers to export (those the catalogue is too large
      for are left out, with a console line).
    k: Items per recommendation.
    index: ``"exact"``, ``"scann"`` or ``"auto"``.
    channel_config: ``ChannelConfig``; None serves the run's tuned settings
      (``tuned_config``), or the defaults for a run never tuned.
    raw_ids: Serve raw ids (``recommend``) besides internal ids
      (``recommend_ids``).
    prepared: The run's prepared data, if already loaded.

  Returns:
    Model name -> SavedModel path.

  Raises:
    FileNotFoundError: If ``run_dir`` holds no finished run.
    ValueError: On unknown channels or index kind, or a bad ``k``.
  """
  if channel_config is None:
    channel_config, source = tuned_config(run_dir)
    if source is None:
      source = "defaults"
      console.status(f"No tuned channel settings in {run_dir} (run "
                     "experiments/evaluate.py first): exporting the "
                     "default settings.")
    else:
      console.status(f"Exporting the channel settings tuned on valid users "
                     f"in {source} (fusion: "
                     f"{channel_config.fusion.describe()}).")
  else:
    source = "given"
  run_config, prepared, model = training.load_run(run_dir, prepared)
  return export_model(model, prepared, export_dir, channels, k, index,
                      channel_config, raw_ids,
                      run_config.evaluation.exclude_history,
                      extra_info={"run_dir": os.path.abspath(run_dir),
                                  "channel_config_source": source})


def tuned_config(run_dir: str):
  """The newest tuned ``ChannelConfig`` of a run, and the report it is from.

  Reads the reports ``evaluate_run`` wrote in ``run_dir``
  (``channels*.json``) and takes the newest (by modification time) that
  holds a tuning on valid users.

  Returns:
    ``(ChannelConfig, report path)``, or ``(ChannelConfig(), None)`` when no
    report holds a tuning.
  """
  found = []
  for path in glob.glob(os.path.join(run_dir, "channels*.json")):
    try:
      with open(path) as f:
        report = json.load(f)
    except (OSError, ValueError):
      continue
    if (isinstance(report, dict) and report.get("tuning")
        and "channel_config" in report):
      found.append((os.path.getmtime(path), path, report))
  if not found:
    return channel_lib.ChannelConfig(), None
  _, path, report = max(found, key=lambda t: (t[0], t[1]))
  return channel_lib.ChannelConfig.from_dict(report["channel_config"]), path


def export_model(model, prepared, export_dir: str,
                 channels: Sequence[str] = names.CHANNELS, k: int = 50,
                 index: str = names.EXACT,
                 channel_config: Optional[channel_lib.ChannelConfig] = None,
                 raw_ids: bool = True, exclude_history: bool = True,
                 extra_info: Optional[Mapping[str, Any]] = None
                 ) -> Dict[str, str]:
  """Exports the towers and one server per channel of a model in memory.

  ``export_run`` calls it for a finished run; notebooks call it through
  ``mic_tf.export_models``.

  Returns:
    Model name -> SavedModel path.
  """
  channels = check_channels(channels)
  config = channel_config or channel_lib.ChannelConfig()
  channels = available_channels(channels, prepared.tables.spec.num_items,
                                config, say=console.status)
  assets = channel_lib.ChannelAssets(model, prepared.tables,
                                     prepared.dataset)
  raw = (channel_lib.RawIds(prepared.tables.spec, prepared.dataset)
         if raw_ids else None)
  built = channel_lib.build_channels(assets, channels, k, index, config,
                                     exclude_history, raw_ids=raw)
  modules = {USER_TOWER: assets.encoder,
             ITEM_TOWER: channel_lib.ItemEncoder(model),
             **{c: built[c] for c in channels}}
  spec = prepared.tables.spec
  info = {**dict(extra_info or {}), "channels": list(channels),
          "k": k, "index": index,
          "exclude_history": exclude_history,
          "channel_config": config.to_dict(),
          "num_items": spec.num_items, "maxlen": spec.maxlen,
          "user_fields": {f.name: {"vocab_size": f.vocab_size,
                                   "length": f.length}
                          for f in spec.user_fields},
          "raw_ids": raw.describe() if raw is not None else None}
  return export.export_modules(modules, export_dir, info)


def format_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]
                 ) -> str:
  """A plain-text table: one row per (index, channel), one column per metric.

  Args:
    results: ``{index kind: {channel: metrics}}`` (the report's
      ``"results"``).

  Returns:
    The table as a string.
  """
  metric_names = []
  for by_channel in results.values():
    for m in by_channel.values():
      metric_names += [n for n in m if n not in metric_names]
  header = ["index", "channel"] + metric_names
  rows = [[kind, channel] + [f"{m[n]:.3f}" if n in m else "-"
                             for n in metric_names]
          for kind, by_channel in results.items()
          for channel, m in by_channel.items()]
  widths = [max(len(str(r[i])) for r in [header] + rows)
            for i in range(len(header))]
  return "\n".join("  ".join(str(c).rjust(w) for c, w in zip(r, widths))
                   for r in [header] + rows)
