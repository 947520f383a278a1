"""The main job: a model's four channels against the reference rows, in one table.

``run_main_job(config)`` is what ``bash experiments/run_main.sh`` runs
(through ``experiments/main.py``); a notebook can call it the same way:

1. The reference rows (``baselines.BASELINES``: MostPopular, ItemKNN, UserKNN,
   EASE) are fitted on the training users; UserKNN's neighbours ``k`` and
   EASE's ``l2`` are chosen on the valid users (``baselines.run_baseline``).
2. The model is trained with early stopping on the valid users' U2I
   Recall@50, and the best epoch is kept (``training.run_experiment``).
3. The channels' settings and the fusion are tuned on the valid users
   (``channels.DEFAULT_GRIDS``: U2I's history weight, U2U, I2I, the
   classical channels ItemKNN, UserKNN and EASE, then the fusion of all
   six), and U2I, U2U, I2I and the
   fused list are evaluated once on the test users (``runs.evaluate_run``,
   which writes ``<output_dir>/channels_test.json``).

It returns a ``MainJobResult``: one row per reference model and one per
channel (valid and test metrics), a one-line summary (the best list on the
test users and its ratio to EASE) and where the run wrote. Nothing is
selected on the test users.
"""

import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from mic_tf import channels as channel_lib
from mic_tf import baselines
from mic_tf import console
from mic_tf import names
from mic_tf import runs
from mic_tf import training

#: The rows of the main job's table besides the model's channels.
REFERENCE_ROWS = baselines.BASELINES
#: The reference row the summary compares the best list with.
SUMMARY_REFERENCE = "EASE"
#: The model's lists in the table (the classical channels join the fusion;
#: their own lists are the reference rows').
TABLE_CHANNELS = names.BASE_CHANNELS + (names.FUSED,)
CHANNEL_LABELS = {names.U2I: "U2I", names.U2U: "U2U", names.I2I: "I2I",
                  names.ITEMKNN: "ItemKNN", names.USERKNN: "UserKNN",
                  names.EASE: "EASE", names.FUSED: "fused"}
#: File (in the run directory) of the rows and the summary.
RESULT_FILE = "main_job.json"


@dataclasses.dataclass
class MainJobResult:
  """What ``run_main_job`` returns.

  Attributes:
    rows: The reference rows, then one row per channel of the model, each
      ``{"name", "valid", "test", ...}`` (``baselines.results_table`` prints
      them); a channel row also has ``"channel"`` and, when its settings
      were tuned, ``"params"`` (the settings chosen on the valid users).
    summary: One line: the best list on the test users (``metric``) and
      its ratio to EASE.
    metric: The metric the summary compares.
    model_label: The model's name in the rows, e.g. ``DSSM+MIC``.
    training: The training results (``run_experiment`` without the model).
    channels: The channel report (``runs.evaluate_run``).
    output_dir: The run directory (None if the config keeps nothing).
  """
  rows: List[Dict[str, Any]]
  summary: str
  metric: str
  model_label: str
  training: Dict[str, Any]
  channels: Dict[str, Any]
  output_dir: Optional[str]

  @property
  def tensorboard_dir(self) -> Optional[str]:
    return (os.path.join(self.output_dir, "tensorboard")
            if self.output_dir else None)

  def table(self) -> str:
    """The test users' table (``baselines.results_table``)."""
    return baselines.results_table(self.rows)


def model_label(config: training.ExperimentConfig) -> str:
  """The model's name in the table (``mic_tf.names.model_label``)."""
  return names.model_label(config.model.tower, config.mic.terms,
                           config.mining.enabled)


def run_main_job(config: training.ExperimentConfig,
                 reference: Sequence[str] = REFERENCE_ROWS,
                 tune_grids: Optional[Mapping[str, Mapping[str, Any]]] = (
                     channel_lib.DEFAULT_GRIDS),
                 metric: Optional[str] = None,
                 prepared: Optional[training.Prepared] = None,
                 verbose: int = 1) -> MainJobResult:
  """Reference rows, training, channel tuning on valid users, test table.

  Args:
    config: The model's experiment config; ``output_dir`` is required (the
      channels are evaluated from the run's checkpoint).
    reference: Reference rows (``baselines.BASELINES`` names).
    tune_grids: The U2U / I2I / fusion grids tuned on the valid users;
      None evaluates the default channel settings.
    metric: Metric of the tuning and the summary (default
      ``recall@{max cutoff}``, the metric that selects the epoch).
    prepared: The prepared data, if already loaded.
    verbose: Keras ``fit`` verbosity.

  Returns:
    The ``MainJobResult``; also written to ``<output_dir>/main_job.json``.

  Raises:
    ValueError: Without an ``output_dir``, or on an unknown reference row.
  """
  if not config.output_dir:
    raise ValueError("The main job needs an output_dir: the channels are "
                     "evaluated from the run's best checkpoint.")
  unknown = [r for r in reference if r not in baselines.BASELINES]
  if unknown:
    raise ValueError(f"Unknown reference rows {unknown}; choose from "
                     f"{baselines.BASELINES}.")
  metric = metric or f"recall@{max(config.evaluation.cutoffs)}"
  prepared = prepared or training.prepare_data(config)
  rows = []
  for name in console.track(list(reference), "reference rows", unit="rows"):
    rows.append(baselines.run_baseline(
        name, prepared, config.evaluation.cutoffs,
        config.evaluation.exclude_history))
  results = training.run_experiment(config, prepared, verbose=verbose)
  results.pop("model")
  report = runs.evaluate_run(config.output_dir, split="test",
                             channels=TABLE_CHANNELS, index=names.EXACT,
                             tune_grids=tune_grids, tune_metric=metric,
                             prepared=prepared)
  label = model_label(config)
  rows += channel_rows(label, results, report)
  summary = summarize(rows, metric, model=label)
  out = MainJobResult(rows=rows, summary=summary, metric=metric,
                      model_label=label, training=results, channels=report,
                      output_dir=config.output_dir)
  path = os.path.join(config.output_dir, RESULT_FILE)
  with open(path + ".tmp", "w") as f:
    json.dump({"rows": rows, "summary": summary, "metric": metric},
              f, indent=1, default=_json_default)
  os.replace(path + ".tmp", path)
  return out


def channel_rows(label: str, training_results: Mapping[str, Any],
                 report: Mapping[str, Any]) -> List[Dict[str, Any]]:
  """One table row per channel of an exact channel report.

  ``valid``: U2I's from training (the kept epoch), a tuned channel's the
  metrics of its chosen settings on the valid users (what the tuning
  measured; only the tuned metric for a fusion refined past its grid),
  else None. ``test``: the report's.
  """
  tuned = report.get("tuning", {}).get("channels", {})
  rows = []
  for channel, test in report["results"][names.EXACT].items():
    row = {"name": f"{label} {CHANNEL_LABELS.get(channel, channel)}",
           "channel": channel, "test": test, "valid": None}
    if channel == names.U2I:
      row["valid"] = training_results["valid"]
    elif channel in tuned:
      best = tuned[channel]["best_params"]
      row["settings"] = best
      chosen = next((r for r in tuned[channel]["rows"]
                     if all(r.get(k) == v for k, v in best.items())), None)
      # A fusion refined past its grid has only the tuned metric's value.
      row["valid"] = ({k: v for k, v in chosen.items() if k not in best}
                      if chosen else
                      {report["tuning"]["metric"]: tuned[channel]["best_value"]})
    rows.append(row)
  return rows


def summarize(rows: Sequence[Mapping[str, Any]], metric: str,
              model: str = "", reference: str = SUMMARY_REFERENCE) -> str:
  """One line: the best list on the test users and its ratio to EASE.

  E.g. ``Best list on the test users (recall@50): DSSM+MIC fused at
  25.120, 1.08x EASE (l2=500) at 23.210.`` When a reference row is best,
  the line also gives the model's best channel and its ratio.
  """
  def value(row):
    return row["test"][metric]

  best = max(rows, key=value)
  ref = next((r for r in rows if r["name"] == reference), None)
  line = (f"Best list on the test users ({metric}): {baselines.row_label(best)} "
          f"at {value(best):.3f}")
  if ref is not None and best is not ref:
    line += (f", {value(best) / value(ref):.2f}x {baselines.row_label(ref)} at "
             f"{value(ref):.3f}")
  own = [r for r in rows if "channel" in r]
  if own and "channel" not in best:
    mine = max(own, key=value)
    label = CHANNEL_LABELS.get(mine["channel"], mine["channel"])
    line += f"; {model}'s best, {label} at {value(mine):.3f}"
    if ref is not None:
      line += f", is {value(mine) / value(ref):.2f}x {reference}"
  return line + "."


def tuned_lines(report: Mapping[str, Any]) -> List[str]:
  """One line per channel tuned on the valid users: its chosen settings."""
  tuning = report.get("tuning")
  if not tuning:
    return []
  out = []
  for channel, tuned in tuning["channels"].items():
    params = ", ".join(f"{k}={_short(v)}" for k, v in
                       tuned["best_params"].items())
    out.append(f"{CHANNEL_LABELS.get(channel, channel)} tuned on valid "
               f"users: {params} ({tuning['metric']} "
               f"{tuned['best_value']:.3f})")
  return out


def _short(value: Any) -> str:
  if isinstance(value, list) and value and isinstance(value[0], list):
    return "+".join(f"{c}:{w:g}" for c, w in value)  # fusion weights
  if isinstance(value, float):
    return f"{value:g}"
  return str(value)


def _json_default(o):
  if hasattr(o, "item"):
    return o.item()
  raise TypeError(f"Not JSON serialisable: {type(o)}")
