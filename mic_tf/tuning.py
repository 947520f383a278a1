"""Hyper-parameter search on validation users, built on Optuna.

A study trains one model per trial, selects on validation Recall@50 only,
prunes trials that fall behind (Optuna's median pruner, one report per
epoch), and writes every trial to JSON. The test users are never evaluated
during the search: ``evaluate_best`` scores them once, for the selected
trial, after the search.

A search space is a mapping from a setting's name to a ``Dimension``; the
names are ``MICConfig`` fields (``lambda_``, ``temperature``, masking rates,
...), the per-term settings ``w_ui``/``w_uu``/``w_ii`` and ``tau_ui``/
``tau_uu``/``tau_ii``, or ``ExperimentConfig`` fields (``learning_rate``,
...). ``MIC_SPACE`` is the space behind ``MICConfig.tuned()``; the record of
that search is in ``docs/results/tuning/``.

The study lives in ``study_dir`` (an SQLite file and one JSON per trial); a
search that was interrupted resumes where it stopped, re-running the trial
that was cut off with the same parameters.
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from absl import logging
import tensorflow as tf

from mic_tf import console
from mic_tf import training
from mic_tf.models.config import TERMS

try:  # Optuna is an optional dependency (extra "experiments").
  import optuna
except ImportError:  # pragma: no cover - exercised only without the extra
  optuna = None


@dataclasses.dataclass(frozen=True)
class Dimension:
  """One searched setting.

  Attributes:
    kind: ``"float"``, ``"int"`` or ``"categorical"``.
    low: Lower bound (float/int).
    high: Upper bound (float/int).
    log: Sample on a log scale (float/int).
    choices: The values of a categorical dimension.
  """
  kind: str
  low: float = 0.0
  high: float = 1.0
  log: bool = False
  choices: Sequence[Any] = ()

  def suggest(self, trial, name: str) -> Any:
    if self.kind == "float":
      return trial.suggest_float(name, self.low, self.high, log=self.log)
    if self.kind == "int":
      return trial.suggest_int(name, int(self.low), int(self.high),
                               log=self.log)
    if self.kind == "categorical":
      return trial.suggest_categorical(name, list(self.choices))
    raise ValueError(f"Unknown dimension kind {self.kind!r}; use float, int "
                     "or categorical.")


def uniform(low: float, high: float) -> Dimension:
  return Dimension("float", low, high)


def log_uniform(low: float, high: float) -> Dimension:
  return Dimension("float", low, high, log=True)


def one_of(*choices: Any) -> Dimension:
  return Dimension("categorical", choices=tuple(choices))


# The MIC objective's settings searched for MICConfig.tuned(): the weight of
# the basic loss, temperatures, per-term weights, perturbation strength,
# views, the rows that get views and the contrastive warm-up.
MIC_SPACE: Dict[str, Dimension] = {
    "lambda_": uniform(0.5, 0.95),
    "temperature": log_uniform(0.05, 0.5),
    "tau_ii": log_uniform(0.05, 1.0),
    "w_ui": log_uniform(0.1, 1.0),
    "w_uu": log_uniform(0.1, 1.0),
    "w_ii": log_uniform(0.1, 1.0),
    "history_mask": uniform(0.0, 0.5),
    "user_attribute_mask": uniform(0.0, 0.5),
    "item_attribute_mask": uniform(0.0, 0.5),
    "item_users_mask": uniform(0.0, 0.5),
    "embedding_dropout": uniform(0.0, 0.5),
    "num_views": one_of(1, 2),
    "contrastive_batch_size": one_of(128, 256),
    "contrastive_warmup_steps": one_of(0, 500),
}

# The base model's own settings, so that MIC is compared with a tuned base.
BASE_SPACE: Dict[str, Dimension] = {
    "learning_rate": log_uniform(3e-4, 3e-3),
    "basic_loss": one_of("softmax", "logistic"),
    "basic_temperature": log_uniform(0.05, 0.5),
}

SPACES = {"mic": MIC_SPACE, "base": BASE_SPACE}

_EXPERIMENT_FIELDS = {f.name for f in dataclasses.fields(
    training.ExperimentConfig)} - {"mic", "mining"}


def apply_params(base: training.ExperimentConfig,
                 params: Mapping[str, Any]) -> training.ExperimentConfig:
  """A copy of ``base`` with searched settings applied.

  Args:
    base: The experiment every trial starts from.
    params: Setting name -> value (see the module docstring for names).

  Returns:
    The trial's ``ExperimentConfig``.

  Raises:
    ValueError: On a name that is no setting.
  """
  mic = base.mic.to_dict()
  experiment = {}
  weights = dict(mic["weights"])
  temps = dict(mic["term_temperatures"])
  for name, value in params.items():
    prefix, _, term = name.partition("_")
    if prefix == "w" and term in TERMS:
      weights[term] = float(value)
    elif prefix == "tau" and term in TERMS:
      temps[term] = float(value)
    elif name in mic:
      mic[name] = value
    elif name in _EXPERIMENT_FIELDS:
      experiment[name] = value
    else:
      raise ValueError(f"{name!r} is not a searchable setting: use a "
                       "MICConfig or ExperimentConfig field, w_<term> or "
                       "tau_<term>.")
  mic["weights"], mic["term_temperatures"] = weights, temps
  out = dataclasses.replace(base, **experiment)
  out.mic = type(base.mic).from_dict(mic)
  return out


class _Reporter(tf.keras.callbacks.Callback):
  """Reports validation Recall@50 to Optuna each epoch; prunes on request."""

  def __init__(self, trial, monitor: str):
    super().__init__()
    self.trial = trial
    self.monitor = monitor
    self.pruned_at: Optional[int] = None
    self.values = []

  def on_epoch_end(self, epoch, logs=None):
    value = float((logs or {})[f"val_{self.monitor}"])
    self.values.append(value)
    self.trial.report(value, epoch)
    if self.trial.should_prune():
      self.pruned_at = epoch + 1
      self.model.stop_training = True


def _write_json(path: str, obj: Any) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(obj, f, indent=1, sort_keys=True, default=str)
  os.replace(tmp, path)


def run_study(base: training.ExperimentConfig,
              space: Mapping[str, Dimension],
              study_dir: str,
              num_trials: int,
              seed: int = 0,
              prepared: Optional[training.Prepared] = None,
              startup_trials: int = 4,
              verbose: int = 0,
              on_trial: Optional[Callable[[Dict[str, Any]], None]] = None
              ) -> "optuna.Study":
  """Runs (or resumes) a seeded search until ``num_trials`` trials finished.

  Args:
    base: The experiment every trial starts from (its ``epochs`` and
      ``patience`` bound each trial).
    space: The searched settings.
    study_dir: Study folder: ``study.db``, ``trials/NNN.json`` and each
      trial's run directory ``trials/NNN/``.
    num_trials: Trials to have finished (complete or pruned) in the end.
    seed: Seed of the sampler (TPE; its first ``startup_trials`` trials
      are random).
    prepared: Prepared data to reuse across trials.
    startup_trials: Random trials before TPE, and trials before pruning.
    verbose: Keras verbosity inside trials.
    on_trial: Called with each finished trial's record.

  Returns:
    The Optuna study.
  """
  if optuna is None:
    raise ImportError("Tuning needs Optuna: pip install 'mic-tf[experiments]'"
                      " (or pip install optuna).")
  os.makedirs(os.path.join(study_dir, "trials"), exist_ok=True)
  prepared = prepared or training.prepare_data(base)
  monitor = f"recall@{max(base.cutoffs)}"
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  study = optuna.create_study(
      study_name="mic", direction="maximize",
      storage=f"sqlite:///{os.path.join(study_dir, 'study.db')}",
      load_if_exists=True,
      sampler=optuna.samplers.TPESampler(seed=seed,
                                         n_startup_trials=startup_trials),
      pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                         n_warmup_steps=1))
  # A trial cut off by an interruption is failed and queued again as is.
  for t in study.get_trials(deepcopy=False,
                            states=(optuna.trial.TrialState.RUNNING,)):
    study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(t.params)
    logging.info("trial %d was interrupted: re-queued", t.number)

  def objective(trial):
    params = {name: dim.suggest(trial, name) for name, dim in space.items()}
    run_dir = os.path.join(study_dir, "trials", f"{trial.number:03d}")
    if os.path.isdir(run_dir):  # a re-queued trial starts afresh
      tf.io.gfile.rmtree(run_dir)
    config = apply_params(base, params)
    config.output_dir = run_dir
    reporter = _Reporter(trial, monitor)
    start = time.perf_counter()
    results = training.run_experiment(config, prepared, verbose=verbose,
                                      callbacks=[reporter],
                                      evaluate_test=False)
    results.pop("model")
    record = {
        "number": trial.number, "params": params,
        "state": "pruned" if reporter.pruned_at else "complete",
        "pruned_at_epoch": reporter.pruned_at,
        "valid_by_epoch": reporter.values,
        "best_epoch": results["best_epoch"],
        "epochs_run": results["epochs_run"],
        "valid": results["valid"],
        "value": results["valid"][monitor],
        "seconds": time.perf_counter() - start,
        "config": config.to_dict(),
    }
    _write_json(os.path.join(study_dir, "trials", f"{trial.number:03d}.json"),
                record)
    logging.info("trial %d %s: valid %s=%.3f (epoch %d of %d) %s",
                 trial.number, record["state"], monitor, record["value"],
                 record["best_epoch"], record["epochs_run"], params)
    if on_trial is not None:
      on_trial(record)
    if reporter.pruned_at:
      raise optuna.TrialPruned()
    return record["value"]

  finished = (optuna.trial.TrialState.COMPLETE,
              optuna.trial.TrialState.PRUNED)
  def done():
    return len(study.get_trials(deepcopy=False, states=finished))

  progress = console.Progress("tuning trials", num_trials - done(), "trials",
                              log_every=0.0)
  while done() < num_trials:
    study.optimize(objective, n_trials=1, catch=())
    progress.update()
  progress.close()
  return study


def best_trial_record(study_dir: str) -> Dict[str, Any]:
  """The JSON record of the completed trial with the best validation value.

  Pruned trials never win (their best value was seen at a shorter budget).
  """
  records = []
  trial_dir = os.path.join(study_dir, "trials")
  for name in sorted(os.listdir(trial_dir)):
    if name.endswith(".json"):
      with open(os.path.join(trial_dir, name)) as f:
        records.append(json.load(f))
  complete = [r for r in records if r["state"] == "complete"]
  if not complete:
    raise ValueError(f"No completed trial in {trial_dir}: run more trials.")
  return max(complete, key=lambda r: (r["value"], -r["number"]))


def evaluate_best(study_dir: str,
                  prepared: Optional[training.Prepared] = None
                  ) -> Dict[str, Any]:
  """Scores the test users once with the selected trial's best epoch."""
  best = best_trial_record(study_dir)
  run_dir = os.path.join(study_dir, "trials", f"{best['number']:03d}")
  config, prepared, model = training.load_run(run_dir, prepared)
  test = training.evaluate_u2i(model, prepared.test, config.cutoffs,
                               config.exclude_history,
                               config.eval_batch_size)
  out = {"selected_trial": best["number"], "params": best["params"],
         "best_epoch": best["best_epoch"], "epochs_run": best["epochs_run"],
         "valid": best["valid"], "test": test}
  _write_json(os.path.join(study_dir, "best.json"), out)
  return out
