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
that search is in ``docs/results/tuning_mic/``.

The study lives in ``study_dir`` (an SQLite file and one JSON per trial); a
search that was interrupted resumes where it stopped, re-running the trial
that was cut off with the same parameters. The JSON records alone are
enough to go on: a ``study_dir`` that holds ``trials/NNN.json`` but no
``study.db`` (say, the records committed from a machine that is gone) is
rebuilt from them, so that the sampler and the pruner see every finished
trial, and the search continues after the last one. ``rescore_top_trials`` trains the
best trials again on more seeds, and ``best_trial_record`` then selects on
the mean over seeds rather than on one seed's noisy value.
"""

import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

from absl import logging
import tensorflow as tf

from mic_tf import config as config_lib
from mic_tf import console
from mic_tf import training
from mic_tf.features import prepare_data
from mic_tf.features import Prepared
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

  _KINDS = ("float", "int", "categorical")

  def __post_init__(self):
    if self.kind not in self._KINDS:
      raise ValueError(f"Unknown dimension kind {self.kind!r}; use float, "
                       "int or categorical.")
    if self.kind == "categorical" and not self.choices:
      raise ValueError("A categorical dimension needs at least one choice.")
    if self.kind != "categorical" and not self.low <= self.high:
      raise ValueError(f"Dimension low {self.low!r} is above high "
                       f"{self.high!r}; swap them.")

  def distribution(self) -> "optuna.distributions.BaseDistribution":
    """The Optuna distribution that ``suggest`` draws from."""
    if self.kind == "float":
      return optuna.distributions.FloatDistribution(self.low, self.high,
                                                    log=self.log)
    if self.kind == "int":
      return optuna.distributions.IntDistribution(int(self.low),
                                                  int(self.high),
                                                  log=self.log)
    return optuna.distributions.CategoricalDistribution(list(self.choices))

  def suggest(self, trial, name: str) -> Any:
    """Draws this dimension's value for ``trial`` from ``distribution()``."""
    dist = self.distribution()
    if self.kind == "categorical":
      return trial.suggest_categorical(name, dist.choices)
    suggest = trial.suggest_float if self.kind == "float" else (
        trial.suggest_int)
    return suggest(name, dist.low, dist.high, log=dist.log)


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

# The base model's own settings, so that MIC is compared with a tuned base:
# optimisation, the basic loss, and the towers' dropout (the regulariser a
# base that peaks early on little data needs most; MIC's perturbations are
# a regulariser too, so an untuned base would flatter MIC).
BASE_SPACE: Dict[str, Dimension] = {
    "learning_rate": log_uniform(3e-4, 3e-3),
    "basic_loss": one_of("softmax", "logistic"),
    "basic_temperature": log_uniform(0.05, 0.5),
    "dropout": uniform(0.0, 0.5),
}

# The base space with decoupled weight decay as a second regulariser
# (``ExperimentConfig.weight_decay``); a space of its own, so that searches
# over ``BASE_SPACE`` recorded before it existed continue unchanged. The
# decay is a choice among values spread on a log scale plus 0, so that the
# undecayed model (the library's default, ``--enqueue_base``'s first trial)
# is one of the candidates.
BASE_WD_SPACE: Dict[str, Dimension] = {
    **BASE_SPACE,
    "weight_decay": one_of(0.0, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3)}

SPACES = {"mic": MIC_SPACE, "base": BASE_SPACE, "base_wd": BASE_WD_SPACE}

_EXPERIMENT_FIELDS = config_lib.SETTING_SECTIONS


def apply_params(base: config_lib.ExperimentConfig,
                 params: Mapping[str, Any]) -> config_lib.ExperimentConfig:
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
  return base.replace_settings(**experiment,
                               mic=type(base.mic).from_dict(mic))


def current_params(base: config_lib.ExperimentConfig,
                   space: Mapping[str, Dimension]) -> Dict[str, Any]:
  """The values ``base`` already has for each searched setting.

  The inverse of ``apply_params``: ``apply_params(base, current_params(
  base, space))`` is ``base``. ``run_study`` enqueues them as a new study's
  first trial, so that the starting point (e.g. ``MICConfig.tuned()``) is
  always one of the compared trials.

  Raises:
    ValueError: On a name that is no setting, or a value outside its
      dimension (the search could never propose the starting point).
  """
  out = {}
  for name, dim in space.items():
    prefix, _, term = name.partition("_")
    if prefix == "w" and term in TERMS:
      value = base.mic.weights[term]
    elif prefix == "tau" and term in TERMS:
      value = base.mic.temperature_of(term)
    elif name in base.mic.to_dict():
      value = getattr(base.mic, name)
    elif name in _EXPERIMENT_FIELDS:
      value = base.setting(name)
    else:
      raise ValueError(f"{name!r} is not a searchable setting: use a "
                       "MICConfig or ExperimentConfig field, w_<term> or "
                       "tau_<term>.")
    inside = (value in dim.choices if dim.kind == "categorical"
              else dim.low <= value <= dim.high)
    if not inside:
      raise ValueError(f"The starting value {name}={value!r} is outside the "
                       "searched range: widen the space or start from "
                       "another preset.")
    out[name] = value
  return out


class _Reporter(tf.keras.callbacks.Callback):
  """Reports the valid selection score to Optuna each epoch; prunes on
  request."""

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


def _differing_settings(record: Mapping[str, Any],
                        base: config_lib.ExperimentConfig) -> list:
  """Settings, other than the searched ones, that differ from the record."""
  # Compared as written to JSON (tuples become lists there).
  expected = json.loads(json.dumps(
      apply_params(base, record["params"]).to_dict(), default=str))
  expected = config_lib.flat_settings(expected)
  trained = config_lib.flat_settings(record.get("config") or {})
  return [name.split(".", 1)[1] if name.split(".")[0] in config_lib.SECTIONS
          else name
          for name in sorted(set(expected) & set(trained) - {"output_dir"})
          if expected[name] != trained[name]]


def rebuild_study(study: "optuna.Study", base: config_lib.ExperimentConfig,
                  space: Mapping[str, Dimension], study_dir: str) -> int:
  """Adds the finished trials recorded in ``study_dir/trials`` to ``study``.

  Used when the records outlived the study database (one machine wrote
  them, another continues): each ``NNN.json`` becomes a finished trial with
  the same number, parameters, per-epoch validation values (which the
  median pruner compares against) and state; a number without a record (a
  trial cut off before it finished) becomes a failed trial, so that the
  numbers stay those of the records. The sampler then proposes the next
  trial from the same history; its draws are not those an uninterrupted
  search would have made (its random state is new).

  Args:
    study: A study without trials.
    base: The experiment the search continues from.
    space: The searched settings.
    study_dir: The folder holding ``trials/NNN.json``.

  Returns:
    The number of records added.

  Raises:
    ValueError: If the study already has trials, or a record was searched
      over another space or trained with other settings than ``base``.
  """
  if study.get_trials(deepcopy=False):
    raise ValueError("rebuild_study fills an empty study only.")
  records = {r["number"]: r for r in _trial_records(study_dir)}
  for number in sorted(records):
    record = records[number]
    if set(record["params"]) != set(space):
      raise ValueError(
          f"{study_dir}/trials/{number:03d}.json searched "
          f"{sorted(record['params'])}, this search {sorted(space)}: use the "
          "same --space, or a new --study_dir.")
    differing = _differing_settings(record, base)
    if differing:
      raise ValueError(
          f"{study_dir}/trials/{number:03d}.json was trained with other "
          f"settings than this search ({', '.join(differing)}): pass the "
          "flags of the recorded search, or use a new --study_dir.")
  distributions = {name: dim.distribution() for name, dim in space.items()}
  for number in range(max(records, default=-1) + 1):
    record = records.get(number)
    if record is None:
      study.add_trial(optuna.trial.create_trial(
          state=optuna.trial.TrialState.FAIL))
      continue
    by_epoch = list(record.get("valid_by_epoch") or [])
    pruned = record["state"] == "pruned"
    study.add_trial(optuna.trial.create_trial(
        params=dict(record["params"]), distributions=distributions,
        state=(optuna.trial.TrialState.PRUNED if pruned
               else optuna.trial.TrialState.COMPLETE),
        # Optuna gives a pruned trial its last reported value.
        value=by_epoch[-1] if pruned and by_epoch else record["value"],
        intermediate_values=dict(enumerate(by_epoch))))
  return len(records)


def run_study(base: config_lib.ExperimentConfig,
              space: Mapping[str, Dimension],
              study_dir: str,
              num_trials: int,
              seed: int = 0,
              prepared: Optional[Prepared] = None,
              startup_trials: int = 4,
              verbose: int = 0,
              on_trial: Optional[Callable[[Dict[str, Any]], None]] = None,
              enqueue_base: bool = False) -> "optuna.Study":
  """Runs (or resumes) a seeded search until ``num_trials`` trials finished.

  Args:
    base: The experiment every trial starts from (its ``epochs`` and
      ``patience`` bound each trial).
    space: The searched settings.
    study_dir: Study folder: ``study.db``, ``trials/NNN.json`` and each
      trial's run directory ``trials/NNN/``.
    num_trials: Trials to have finished (complete or pruned) in the end,
      counting those recorded before (also when the study is rebuilt from
      its JSON records, see ``rebuild_study``).
    seed: Seed of the sampler (TPE; its first ``startup_trials`` trials
      are random). A resumed study seeds it with ``seed`` plus the number
      of trials it has started, so that it does not draw its first
      settings again.
    prepared: Prepared data to reuse across trials.
    startup_trials: Random trials before TPE, and trials before pruning.
    verbose: Keras verbosity inside trials.
    on_trial: Called with each finished trial's record.
    enqueue_base: In a new study, make ``base``'s own values of the searched
      settings (``current_params``) the first trial.

  Returns:
    The Optuna study.
  """
  if optuna is None:
    raise ImportError("Tuning needs Optuna: pip install 'mic-tf[experiments]'"
                      " (or pip install optuna).")
  os.makedirs(os.path.join(study_dir, "trials"), exist_ok=True)
  prepared = prepared or prepare_data(base)
  monitor = base.selection_metric
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  study = optuna.create_study(
      study_name="mic", direction="maximize",
      storage=f"sqlite:///{os.path.join(study_dir, 'study.db')}",
      load_if_exists=True,
      sampler=optuna.samplers.TPESampler(seed=seed,
                                         n_startup_trials=startup_trials),
      pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials,
                                         n_warmup_steps=1))
  recorded = [r["number"] for r in _trial_records(study_dir)]
  known = study.get_trials(deepcopy=False)
  if recorded and not known:
    added = rebuild_study(study, base, space, study_dir)
    logging.info("study rebuilt from %d trial records in %s", added,
                 study_dir)
  elif recorded and max(recorded) >= len(known):
    # New trials would overwrite the records the database does not know.
    raise ValueError(
        f"{study_dir}/study.db knows {len(known)} trials but trials/ holds a "
        f"record of trial {max(recorded)}: move study.db away to rebuild the "
        "study from its records.")
  if enqueue_base and not study.get_trials(deepcopy=False):
    study.enqueue_trial(current_params(base, space))
  # A trial cut off by an interruption is failed and queued again as is.
  for t in study.get_trials(deepcopy=False,
                            states=(optuna.trial.TrialState.RUNNING,)):
    study.tell(t.number, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(t.params)
    logging.info("trial %d was interrupted: re-queued", t.number)
  # A resumed study would otherwise draw its random trials again from the
  # start of the seeded sequence, repeating its first trials' settings. A
  # new study (at most its enqueued first trial waiting) keeps ``seed``.
  held = len([t for t in study.get_trials(deepcopy=False)
              if t.state != optuna.trial.TrialState.WAITING])
  if held:
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + held, n_startup_trials=startup_trials)

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


def _trial_records(study_dir: str) -> list:
  trial_dir = os.path.join(study_dir, "trials")
  if not os.path.isdir(trial_dir):
    raise ValueError(f"{study_dir} holds no study (no trials/ folder): run "
                     "experiments/tune.py with --study_dir first.")
  records = []
  for name in sorted(os.listdir(trial_dir)):
    if name.endswith(".json"):
      with open(os.path.join(trial_dir, name)) as f:
        records.append(json.load(f))
  return records


def _rescore_path(study_dir: str, number: int) -> str:
  return os.path.join(study_dir, "rescore", f"{number:03d}.json")


def _read_rescores(study_dir: str) -> Dict[int, Dict[str, Any]]:
  folder = os.path.join(study_dir, "rescore")
  out = {}
  if os.path.isdir(folder):
    for name in sorted(os.listdir(folder)):
      if name.endswith(".json"):
        with open(os.path.join(folder, name)) as f:
          record = json.load(f)
        out[record["number"]] = record
  return out


def rescore_top_trials(study_dir: str,
                       top_k: int,
                       seeds: Sequence[int],
                       prepared: Optional[Prepared] = None,
                       verbose: int = 0) -> list:
  """Trains the ``top_k`` best completed trials again on more seeds.

  Validation Recall@50 moves by about half a point from one seed to the
  next, so the single-seed ranking of a search partly ranks noise. Each of
  the ``top_k`` completed trials with the highest validation value is
  trained again, with the same settings, once per seed in ``seeds`` (its
  own search seed is kept as the first score), and its record
  ``rescore/NNN.json`` lists every seed's validation value and their mean.
  ``best_trial_record`` then selects on that mean. Seeds already scored
  are skipped, so an interrupted re-scoring resumes.

  Args:
    study_dir: The study folder written by ``run_study``.
    top_k: How many of the best completed trials to re-score (>= 1).
    seeds: Extra training seeds (each different from the trial's own).
    prepared: Prepared data to reuse.
    verbose: Keras verbosity.

  Returns:
    The re-score records of the ``top_k`` trials, best single-seed first.

  Raises:
    ValueError: On ``top_k`` < 1, no seeds, a seed equal to the search
      seed, or a study without completed trials.
  """
  if top_k < 1:
    raise ValueError(f"top_k={top_k}: re-score at least one trial.")
  seeds = [int(s) for s in seeds]
  if not seeds or len(set(seeds)) != len(seeds):
    raise ValueError(f"seeds={seeds}: give one or more distinct extra "
                     "seeds (e.g. 1,2).")
  complete = [r for r in _trial_records(study_dir)
              if r["state"] == "complete"]
  if not complete:
    raise ValueError(f"No completed trial in {study_dir}: run more trials.")
  complete.sort(key=lambda r: (-r["value"], r["number"]))
  os.makedirs(os.path.join(study_dir, "rescore"), exist_ok=True)
  existing = _read_rescores(study_dir)
  out = []
  for record in complete[:top_k]:
    config = config_lib.ExperimentConfig.from_dict(record["config"])
    if config.training.seed in seeds:
      raise ValueError(f"seed {config.training.seed} is the search's own seed: "
                       "re-score on other seeds.")
    monitor = config.selection_metric
    previous = existing.get(record["number"], {})
    by_seed = {int(k): v for k, v in previous.get("valid_by_seed",
                                                    {}).items()}
    by_seed[config.training.seed] = record["value"]
    if prepared is None:
      prepared = prepare_data(config)
    for seed in seeds:
      if seed in by_seed:
        continue
      run = config.replace_settings(seed=seed, output_dir=os.path.join(
          study_dir, "rescore", f"{record['number']:03d}_s{seed}"))
      start = time.perf_counter()
      results = training.run_experiment(run, prepared, verbose=verbose,
                                        evaluate_test=False)
      by_seed[seed] = results["valid"][monitor]
      logging.info("trial %d seed %d: valid %s=%.3f (epoch %d of %d, %.0f "
                   "s)", record["number"], seed, monitor, by_seed[seed],
                   results["best_epoch"], results["epochs_run"],
                   time.perf_counter() - start)
      rescored = {
          "number": record["number"], "params": record["params"],
          "valid_by_seed": {str(k): v for k, v in sorted(by_seed.items())},
          "mean": sum(by_seed.values()) / len(by_seed),
          "seeds": sorted(by_seed),
      }
      _write_json(_rescore_path(study_dir, record["number"]), rescored)
    out.append(_read_rescores(study_dir)[record["number"]])
  return out


def best_trial_record(study_dir: str) -> Dict[str, Any]:
  """The JSON record of the completed trial selected on validation users.

  Without re-scoring: the completed trial with the best validation value.
  After ``rescore_top_trials``: among the re-scored trials, the one with
  the best mean validation value over its seeds (the record then carries
  ``rescore``). Pruned trials never win (their best value was seen at a
  shorter budget).

  Raises:
    ValueError: If there is no completed trial, or a trial that finished
      after the re-scoring ranks among the re-scored ones on the search
      seed without having been re-scored.
  """
  complete = [r for r in _trial_records(study_dir)
              if r["state"] == "complete"]
  if not complete:
    raise ValueError(f"No completed trial in {study_dir}: run more trials.")
  rescored = _read_rescores(study_dir)
  candidates = [r for r in complete if r["number"] in rescored]
  if candidates:
    best_k = sorted(complete, key=lambda r: (-r["value"], r["number"]))[
        :len(candidates)]
    missing = [r["number"] for r in best_k if r["number"] not in rescored]
    if missing:
      raise ValueError(
          f"Trial(s) {missing} finished after the re-scoring and rank among "
          f"the {len(candidates)} best on the search seed, but were not "
          "re-scored: run experiments/tune.py again with --rescore_top="
          f"{len(candidates)} (already scored seeds are kept).")
    best = max(candidates, key=lambda r: (rescored[r["number"]]["mean"],
                                          -r["number"]))
    return {**best, "rescore": rescored[best["number"]]}
  return max(complete, key=lambda r: (r["value"], -r["number"]))


def evaluate_best(study_dir: str,
                  prepared: Optional[Prepared] = None
                  ) -> Dict[str, Any]:
  """Scores the test users once with the selected trial's best epoch.

  If the selected trial's run directory is gone (a study rebuilt from its
  records on another machine), the trial is trained again from its recorded
  settings first; ``best.json`` then says so (``retrained``) and gives the
  new run's validation score beside the recorded one, since another CPU
  need not reproduce the same weights.
  """
  best = best_trial_record(study_dir)
  run_dir = os.path.join(study_dir, "trials", f"{best['number']:03d}")
  retrained = None
  if not tf.io.gfile.exists(os.path.join(run_dir, "checkpoints",
                                         "best.index")):
    config = config_lib.ExperimentConfig.from_dict(best["config"])
    config.output_dir = run_dir
    logging.warning("trial %d has no trained run in %s: training it again "
                    "from its record", best["number"], run_dir)
    results = training.run_experiment(config, prepared, evaluate_test=False)
    retrained = {"valid": results["valid"],
                 "best_epoch": results["best_epoch"],
                 "epochs_run": results["epochs_run"]}
  config, prepared, model = training.load_run(run_dir, prepared)
  test = training.evaluate_u2i(model, prepared.test, config.evaluation.cutoffs,
                               config.evaluation.exclude_history,
                               config.evaluation.eval_batch_size)
  out = {"selected_trial": best["number"], "params": best["params"],
         "best_epoch": best["best_epoch"], "epochs_run": best["epochs_run"],
         "valid": best["valid"], "test": test}
  if "rescore" in best:
    out["rescore"] = best["rescore"]
  if retrained is not None:
    out["retrained"] = retrained
  _write_json(os.path.join(study_dir, "best.json"), out)
  return out
