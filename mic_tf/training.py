"""Train and evaluate a model end to end: the library behind the binaries.

``run_experiment(ExperimentConfig(...))`` loads a dataset, applies the ComiRec
protocol, builds features, towers and a ``MICModel``, trains it with
``model.fit`` on the tf.data pipeline (graph mode), selects the epoch with the
best validation Recall@50 (exact U2I retrieval), evaluates the test users once
with it and writes everything under ``output_dir``. Both evaluations run
the exact U2I channel module (``mic_tf.channels.evaluate.evaluate_u2i``), the
one the channel evaluation and the exported servers run. Writes:

  output_dir/
    config.json         the ExperimentConfig
    run_record.json     what reproduces the run: config, command, package
                        versions, git commit, data checksums, hardware
                        (``mic_tf.run_record``)
    feature_spec.json   the FeatureSpec
    metrics.json        valid + test metrics, per epoch history, timings
    checkpoints/best    weights of the selected epoch (tf.train.Checkpoint)
    backup/             BackupAndRestore state: a crashed or killed run
                        resumes from it; removed once metrics.json is
                        written
    tensorboard/        TensorBoard logs (every loss term, valid metrics)

A notebook can call the same functions the binaries call.
"""

import json
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from mic_tf import config as config_lib
from mic_tf import console
from mic_tf import distribute
from mic_tf import errors
from mic_tf import features as F
from mic_tf import names
from mic_tf import pipeline
from mic_tf import run_files
from mic_tf import run_record
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.evaluate import evaluate_channels
from mic_tf.channels.evaluate import evaluate_u2i  # the U2I channel, exact
from mic_tf.config import ExperimentConfig
from mic_tf.config import SELECTION
from mic_tf.config import selection_metric
from mic_tf.data.dataset import ProcessedDataset
from mic_tf.distill.callback import DistillationCallback
from mic_tf.features import prepare_data
from mic_tf.features import Prepared
from mic_tf.mining import MiningCallback
from mic_tf.models.build import build_model
from mic_tf.models.build import build_variables
from mic_tf.models.mic_model import MICModel


def selection_description(select_on: Sequence[str],
                          cutoffs: Sequence[int]) -> str:
  """The selection score in words, e.g. ``recall@50 (mean of u2i,u2u)``."""
  recall = f"recall@{max(cutoffs)}"
  if selection_metric(select_on, cutoffs) == recall:
    return recall
  return f"{recall} (mean of {','.join(select_on)})"


class EvaluationCallback(tf.keras.callbacks.Callback):
  """Evaluates valid users after each epoch; keeps the best weights.

  The selection metric is ``recall@{max cutoff}`` of U2I on valid users, or
  with ``select_on`` the mean of that of the named channels (built from
  ``tables`` and ``dataset``, exact, default settings). With a
  ``patience``, training stops once ``patience`` epochs in a row bring no
  new best (early stopping); the caller then restores the best weights with
  ``restore_best``. Metrics
  are added to the epoch logs as ``val_<metric>`` (so TensorBoard and the
  progress bar show them) and kept in ``history``. With a checkpoint path,
  the best weights and the history are also written to disk after every
  epoch (by ``persist``), so a run resumed by ``BackupAndRestore`` after a
  crash still knows its best epoch.

  Crash safety: with ``defer_writes``, ``on_epoch_end`` only evaluates and
  the caller runs ``persist`` once the epoch's backup is committed
  (``PersistAfterBackup``, placed after ``BackupAndRestore``), so the disk
  never records an epoch the backup does not hold. A run killed between the
  backup and ``persist`` resumes with the history one epoch behind the
  backup: the first epoch of the resumed process (or the end of training,
  if none is left) evaluates the restored weights, which are that epoch's,
  and records it, so no finished epoch is lost or trained again, and a best
  checkpoint cut off mid-write is written again.
  """

  def __init__(self, users: F.EvalUsers, cutoffs: Sequence[int],
               exclude_history: bool, batch_size: int,
               checkpoint_path: Optional[str], resume: bool = False,
               patience: Optional[int] = None,
               select_on: Sequence[str] = (names.U2I,),
               tables: Optional[F.FeatureTables] = None,
               dataset: Optional[ProcessedDataset] = None,
               defer_writes: bool = False):
    super().__init__()
    self.defer_writes = defer_writes
    self._resume = resume
    self._epochs_begun = 0
    self._improved = False
    self.select_on = tuple(select_on)
    self._other_channels = [c for c in self.select_on if c != names.U2I]
    if self._other_channels and (tables is None or dataset is None):
      raise ValueError(f"Selecting on {self._other_channels} needs the "
                       "run's tables and dataset.")
    self.tables, self.dataset = tables, dataset
    self.patience = patience
    self.stopped_epoch = None
    self.users = users
    self.cutoffs = tuple(cutoffs)
    self.exclude_history = exclude_history
    self.batch_size = batch_size
    self.checkpoint_path = checkpoint_path
    self.monitor = selection_metric(self.select_on, self.cutoffs)
    self.best = -np.inf
    self.best_epoch = -1
    self.best_weights = None
    self.history = []
    self._state_path = (checkpoint_path + ".history.json"
                        if checkpoint_path else None)
    if self._state_path and resume and tf.io.gfile.exists(self._state_path):
      with tf.io.gfile.GFile(self._state_path) as f:
        state = json.load(f)
      self.history = state["history"]
      self.best, self.best_epoch = state["best"], state["best_epoch"]
      logging.info("Resuming: best epoch so far %d (%s=%.3f)",
                   self.best_epoch, self.monitor, self.best)

  @property
  def epochs_without_improvement(self) -> int:
    if not self.history:
      return 0
    return max(h["epoch"] for h in self.history) - max(self.best_epoch, 0)

  def on_train_begin(self, logs=None):
    # A resumed run that had already stopped early must not train on
    # (``run_experiment`` does not even call fit for it).
    if self._should_stop():
      self.model.stop_training = True

  def should_stop(self) -> bool:
    """Whether early stopping has ended the run (resumed runs: already)."""
    return self._should_stop()

  def _should_stop(self) -> bool:
    return (self.patience is not None and self.best_epoch > 0 and
            self.epochs_without_improvement >= self.patience)

  def _catch_up(self, finished: int) -> None:
    """Records epoch ``finished`` from the restored weights if it is missing.

    A resumed run's weights are those of its last backed-up epoch; when the
    crash came after that backup but before ``persist``, the history lacks
    the epoch: evaluate it now (the same weights give the same metrics).
    """
    if not self._resume or finished < 1:
      return
    if any(h["epoch"] >= finished for h in self.history):
      return
    logging.info("Resuming: epoch %d was backed up but not recorded; "
                 "evaluating its weights", finished)
    # Its wall seconds were lost with the crashed process: unknown.
    self._record(finished, None)
    self.persist()

  def on_epoch_begin(self, epoch, logs=None):
    if self._epochs_begun == 0:
      self._catch_up(epoch)
    self._epochs_begun += 1
    self._epoch_start = time.perf_counter()

  def on_train_end(self, logs=None):
    if self._epochs_begun == 0 and self.params:
      self._catch_up(int(self.params.get("epochs") or 0))

  def _evaluate(self) -> Dict[str, float]:
    metrics = evaluate_u2i(self.model, self.users, self.cutoffs,
                           self.exclude_history, self.batch_size)
    if not self._other_channels:
      return metrics
    assets = ChannelAssets(self.model, self.tables, self.dataset,
                           self.batch_size)
    others, _ = evaluate_channels(assets, self.users, self._other_channels,
                                  cutoffs=self.cutoffs,
                                  exclude_history=self.exclude_history)
    for channel, values in others.items():
      metrics.update({f"{channel}_{k}": v for k, v in values.items()})
    recall = f"recall@{max(self.cutoffs)}"
    metrics[SELECTION] = float(np.mean([
        metrics[recall if c == names.U2I else f"{c}_{recall}"]
        for c in self.select_on]))
    return metrics

  def _record(self, epoch: int, seconds: Optional[float]
              ) -> Dict[str, float]:
    """Evaluates the current weights as (1-based) ``epoch``; keeps the best."""
    metrics = self._evaluate()
    self.history = [h for h in self.history if h["epoch"] != epoch]
    self.history.append({"epoch": epoch, **metrics,
                         HISTORY_SECONDS: seconds})
    self.history.sort(key=lambda h: h["epoch"])
    logging.info("epoch %d valid %s", epoch, _fmt(metrics))
    if metrics[self.monitor] > self.best:
      self.best, self.best_epoch = metrics[self.monitor], epoch
      self.best_weights = self.model.get_weights()
      self._improved = True
    return metrics

  def persist(self) -> None:
    """Writes the best checkpoint (if the last epoch improved), then history."""
    if self._improved and self.checkpoint_path:
      # Collective under multi-worker: every worker writes, only the
      # chief where it is kept.
      tf.train.Checkpoint(model=self.model).write(distribute.worker_path(
          self.checkpoint_path, self.model.distribute_strategy))
    self._improved = False
    if self._state_path and distribute.is_chief(
        self.model.distribute_strategy):
      _write_json(self._state_path, {"history": self.history,
                                     "best": self.best,
                                     "best_epoch": self.best_epoch})

  def on_epoch_end(self, epoch, logs=None):
    # Wall seconds of the epoch (training and this validation): they
    # survive a resume, so a resumed run still reports its whole time.
    seconds = time.perf_counter() - getattr(self, "_epoch_start",
                                            time.perf_counter())
    metrics = self._record(epoch + 1, seconds)
    if logs is not None:
      logs.update({f"val_{k}": v for k, v in metrics.items()})
    if not self.defer_writes:
      self.persist()
    if self._should_stop():
      self.stopped_epoch = epoch + 1
      self.model.stop_training = True
      logging.info("early stopping after epoch %d: no new best %s for %d "
                   "epochs (best epoch %d)", epoch + 1, self.monitor,
                   self.patience, self.best_epoch)

  def restore_best(self) -> None:
    """Loads the best weights into the model (from memory or disk)."""
    if self.best_weights is not None:
      self.model.set_weights(self.best_weights)
    elif self.checkpoint_path and tf.io.gfile.exists(
        self.checkpoint_path + ".index"):
      tf.train.Checkpoint(model=self.model).read(
          self.checkpoint_path).assert_existing_objects_matched()


class PersistAfterBackup(tf.keras.callbacks.Callback):
  """Runs ``EvaluationCallback.persist`` once the epoch's backup is written.

  Place it right after ``BackupAndRestore`` (see ``EvaluationCallback``).
  """

  def __init__(self, evaluator: EvaluationCallback):
    super().__init__()
    self.evaluator = evaluator

  def on_epoch_end(self, epoch, logs=None):
    self.evaluator.persist()


#: Where a finished run's backup goes while it is deleted (a folder rename
#: is atomic: a run killed then holds either the whole backup or none).
_REMOVED_BACKUP = "backup.removing"


def _remove_backup(out_dir: str) -> None:
  """Deletes a finished run's backup: renamed away first, then removed."""
  backup = os.path.join(out_dir, "backup")
  gone = os.path.join(out_dir, _REMOVED_BACKUP)
  if not tf.io.gfile.exists(backup):
    return
  if tf.io.gfile.exists(gone):
    tf.io.gfile.rmtree(gone)
  tf.io.gfile.rename(backup, gone)
  tf.io.gfile.rmtree(gone)


def _remove_stale_temp(out_dir: str) -> None:
  """Removes what a killed run's interrupted writes left behind.

  TensorFlow writes a checkpoint into ``<prefix>_temp/`` and then moves it
  into place; a run killed meanwhile leaves that folder (never read). A
  run killed while deleting its finished backup leaves that too.
  """
  run_files.remove_temp_checkpoints(out_dir)
  gone = os.path.join(out_dir, _REMOVED_BACKUP)
  if tf.io.gfile.isdir(gone):
    tf.io.gfile.rmtree(gone)


#: Key of an epoch's wall seconds in ``history`` entries.
HISTORY_SECONDS = "seconds"


def whole_train_seconds(results: Mapping[str, Any]) -> Optional[float]:
  """Training wall seconds of a whole run, resumed or not.

  The sum of every epoch's seconds when recorded; else this process's fit
  time, unless the run was resumed (its earlier epochs' time is unknown:
  None).
  """
  total = results.get("train_seconds_all_epochs")
  if total is not None:
    return float(total)
  if results.get("resumed"):
    return None
  return results.get("train_seconds")


def _fmt(metrics: Dict[str, float]) -> str:
  return " ".join(f"{k}={v:.3f}" for k, v in sorted(metrics.items()))


def run_experiment(config: ExperimentConfig,
                   prepared: Optional[Prepared] = None,
                   verbose: int = 1,
                   callbacks: Sequence[tf.keras.callbacks.Callback] = (),
                   evaluate_test: bool = True) -> Dict[str, Any]:
  """Trains, selects on valid users, evaluates test users once.

  If ``output_dir`` holds the backup of a run that crashed, training resumes
  from its last finished epoch (``BackupAndRestore``) and keeps the best
  epoch found before the crash; a backup of other settings is refused
  (``UserError``).

  Args:
    config: The experiment config.
    prepared: Reuse already prepared data (e.g. across seeds).
    verbose: Keras ``fit`` verbosity (1: progress bars).
    callbacks: Extra Keras callbacks (they run after the validation
      evaluation, so their ``logs`` hold ``val_recall@50`` and the rest).
    evaluate_test: Evaluate the test users (False for tuning trials: the
      test split is evaluated once, after selection).

  Returns:
    A results dict: ``valid`` and ``test`` metrics of the selected epoch,
    ``best_epoch``, per-epoch ``history``, ``train_seconds``, ``config``,
    and the trained ``model`` under key ``model``.
  """
  # First: a multi-worker strategy must exist before any TensorFlow op runs.
  strategy = distribute.make_strategy(config.training.strategy)
  if config.output_dir and distribute.is_chief(strategy):
    run_files.check_output_dir(config.output_dir)
  tf.keras.utils.set_random_seed(config.training.seed)
  prepared = prepared or prepare_data(config)
  _check_prepared(config, prepared)
  tables = prepared.tables
  out_dir = config.output_dir
  backup = os.path.join(out_dir, "backup") if out_dir else None
  resume = bool(backup and tf.io.gfile.exists(backup)
                and tf.io.gfile.listdir(backup))
  if resume:
    _check_resumable(config, out_dir)
  chief = distribute.is_chief(strategy)
  if out_dir and chief:
    tf.io.gfile.makedirs(out_dir)
    _remove_stale_temp(out_dir)
    _write_json(os.path.join(out_dir, "config.json"), config.to_dict())
    _write_json(os.path.join(out_dir, run_record.FILENAME),
                run_record.collect(config))
    with tf.io.gfile.GFile(os.path.join(out_dir, "feature_spec.json"),
                           "w") as f:
      f.write(tables.spec.to_json())

  train_ds = pipeline.training_dataset(
      tables, prepared.dataset, batch_size=config.training.batch_size,
      seed=config.training.seed, min_history=config.data.min_history,
      max_examples=config.training.examples_per_epoch)
  if config.training.steps_per_epoch:
    train_ds = train_ds.repeat()
  with strategy.scope():
    model = build_model(config, tables, prepared.dataset)
    build_variables(model, tables,
                    towers_first=config.model.towers_first)
  if out_dir and chief:
    run_files.check_free_space(out_dir, 2 * run_files.weight_bytes(model))

  ckpt = os.path.join(out_dir, "checkpoints", "best") if out_dir else None
  evaluation = config.evaluation
  evaluator = EvaluationCallback(prepared.valid, evaluation.cutoffs,
                                 evaluation.exclude_history,
                                 evaluation.eval_batch_size, ckpt,
                                 resume=resume,
                                 patience=config.training.patience,
                                 select_on=evaluation.select_on,
                                 tables=tables, dataset=prepared.dataset,
                                 defer_writes=bool(out_dir))
  all_callbacks = [evaluator]
  if config.mining.enabled:
    all_callbacks.insert(0, MiningCallback(verbose=verbose > 0))
  if config.mic.distill:
    # Training users' sequences only: the teacher never reads valid/test.
    all_callbacks.insert(0, DistillationCallback(
        tables, prepared.dataset, verbose=verbose > 0))
  if out_dir:
    all_callbacks += [
        tf.keras.callbacks.TensorBoard(os.path.join(out_dir, "tensorboard"),
                                       update_freq=100),
        # Kept until metrics.json is written (below): a run killed after
        # its last epoch resumes with nothing left to train.
        tf.keras.callbacks.BackupAndRestore(backup, delete_checkpoint=False),
        PersistAfterBackup(evaluator),
    ]
  all_callbacks += list(callbacks)
  start = time.perf_counter()
  if not (resume and evaluator.should_stop()):
    with run_files.stop_when_disk_full(out_dir):
      model.fit(train_ds, epochs=config.training.epochs,
                callbacks=all_callbacks, verbose=verbose,
                steps_per_epoch=config.training.steps_per_epoch)
  train_seconds = time.perf_counter() - start
  evaluator.restore_best()
  distribute.remove_worker_files(strategy)
  test = (evaluate_u2i(model, prepared.test, evaluation.cutoffs,
                       evaluation.exclude_history, evaluation.eval_batch_size)
          if evaluate_test else None)
  valid = next(h for h in evaluator.history
               if h["epoch"] == evaluator.best_epoch)
  epoch_seconds = [h.get(HISTORY_SECONDS) for h in evaluator.history]
  epochs_run = max(h["epoch"] for h in evaluator.history)
  results = {
      "dataset": config.data.dataset, "tower": config.model.tower,
      "mic_terms": list(config.mic.terms), "seed": config.training.seed,
      "best_epoch": evaluator.best_epoch,
      "epochs_run": epochs_run,
      "max_epochs": config.training.epochs,
      "stopped_early": evaluator.stopped_epoch is not None,
      # The best epoch is interior (the metric fell afterwards): the run is
      # converged in the early-stopping sense. A best epoch equal to the
      # last allowed one means training was cut while still improving.
      "converged": is_converged(evaluator.best_epoch,
                                config.training.epochs),
      "valid": {k: v for k, v in valid.items()
                if k not in ("epoch", HISTORY_SECONDS)},
      "test": test, "history": evaluator.history,
      # This process's fit; with ``resumed``, earlier epochs ran before.
      "train_seconds": train_seconds,
      "resumed": resume,
      # Every epoch's seconds, resumed or not (None if an epoch predates
      # their recording).
      "train_seconds_all_epochs": (
          None if None in epoch_seconds else float(sum(epoch_seconds))),
      "num_test_users": int(len(prepared.test.users)),
      "num_valid_users": int(len(prepared.valid.users)),
      "config": config.to_dict(),
  }
  console.status(kept_epoch_message(
      evaluator.best_epoch, epochs_run, config.training.epochs,
      config.training.patience,
      results["stopped_early"], evaluator.monitor, evaluator.best))
  if test is not None:
    logging.info("test %s", _fmt(test))
  if out_dir and chief:
    _write_json(os.path.join(out_dir, "metrics.json"), results)
    _remove_backup(out_dir)  # last: the run is complete on disk
  results["model"] = model
  return results


def is_converged(best_epoch: Optional[int],
                 max_epochs: Optional[int]) -> Optional[bool]:
  """``False`` when the selected epoch is the last allowed one.

  A run whose selected (best validation) epoch is the last epoch it was
  allowed to train was still improving: it is not converged.

  Args:
    best_epoch: The epoch selected on validation users (1-based).
    max_epochs: The most epochs the run was allowed
      (``TrainingConfig.epochs``).

  Returns:
    ``True``/``False``, or ``None`` when either is unknown.
  """
  if best_epoch is None or max_epochs is None:
    return None
  if best_epoch < 1 or best_epoch > max_epochs:
    raise ValueError(
        f"Selected epoch {best_epoch} is outside 1 .. {max_epochs} (the "
        "allowed epochs); the run's metrics.json is inconsistent.")
  return best_epoch < max_epochs


def kept_epoch_message(best_epoch: int, epochs_run: int, max_epochs: int,
                       patience: Optional[int], stopped_early: bool,
                       monitor: str, best: float) -> str:
  """The console line on the epoch a run kept, and how sure its peak is.

  Three cases: the last allowed epoch (still improving: not converged);
  early stopping ended the run (the peak is confirmed); or the ``--epochs``
  cap ended it after its best but before ``patience`` epochs without a new
  best had run, so a later epoch might still have beaten it.
  """
  line = (f"Kept epoch {best_epoch} of {epochs_run} run (max {max_epochs}; "
          f"valid {monitor} = {best:.3f})")
  if not is_converged(best_epoch, max_epochs):
    return line + ": the last allowed epoch, NOT converged (raise --epochs)."
  if patience is not None and not stopped_early:
    after = epochs_run - best_epoch
    return line + (
        f": the --epochs cap ended the run {after} epoch"
        f"{'' if after == 1 else 's'} after it, before --patience={patience}"
        f" confirmed the peak (raise --epochs to confirm it).")
  return line + "."


def _check_resumable(config: ExperimentConfig, out_dir: str) -> None:
  """Refuses to resume an unfinished run of other settings or version.

  Where the run lives and how long it may train (``epochs``, ``patience``)
  may change: resuming with more epochs continues the same run.
  """
  path = os.path.join(out_dir, "config.json")
  if not tf.io.gfile.exists(path):
    return
  with tf.io.gfile.GFile(path) as f:
    stored = json.load(f)
  # Settings added since the run started take their defaults (the run used
  # what they name); JSON turns tuples into lists: compare both through it.
  try:
    stored = ExperimentConfig.from_dict(stored).to_dict()
  except (errors.UserError, TypeError, ValueError):
    pass  # Unknown settings: reported below as differences.
  stored = config_lib.flat_settings(
      json.loads(json.dumps(stored, default=_json_default)))
  now = config_lib.flat_settings(
      json.loads(json.dumps(config.to_dict(), default=_json_default)))
  keys = sorted((set(stored) | set(now))
                - {"output_dir", "training.epochs", "training.patience"})
  differ = [k for k in keys if stored.get(k) != now.get(k)]
  if differ:
    shown = ", ".join(f"{_setting_name(k)}: {stored.get(k, '(unset)')!r} "
                      f"there, "
                      f"{now.get(k, '(unset)')!r} now" for k in differ[:3])
    more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
    raise errors.UserError(
        f"{out_dir} holds an unfinished run with other settings ({shown}"
        f"{more}). Resume it with its own settings, pass another "
        f"--output_dir, or delete {os.path.join(out_dir, 'backup')} to "
        "start over there.")


def _setting_name(key: str) -> str:
  """``data.maxlen`` -> ``maxlen`` (names are unique); ``mic.*`` kept."""
  section, _, name = key.partition(".")
  return name if section in config_lib.SECTIONS else key


def _check_prepared(config: ExperimentConfig, prepared: Prepared) -> None:
  """Raises if reused data were built with other feature settings."""
  spec = prepared.tables.spec
  bag = (spec.item_field(F.ITEM_USERS).length
         if F.ITEM_USERS in spec.item_field_names else 0)
  has_id = F.USER_ID in spec.user_field_names
  data = config.data
  if (spec.maxlen, bag, has_id) != (data.maxlen, data.max_item_users,
                                    data.use_user_id):
    raise ValueError(
        "The prepared data do not match the config: built with maxlen="
        f"{spec.maxlen}, max_item_users={bag}, use_user_id={has_id}; the "
        f"config asks for {data.maxlen}, {data.max_item_users}, "
        f"{data.use_user_id}. Call prepare_data(config) with this config.")
  kept = prepared.dataset.train_user_fraction
  if kept != data.train_user_fraction:
    raise ValueError(
        f"The prepared data keep {kept} of the training users; the config "
        f"asks for train_user_fraction={data.train_user_fraction}. Call "
        "prepare_data(config) with this config.")


def _write_json(path: str, obj: Any) -> None:
  tmp = path + ".tmp"
  with tf.io.gfile.GFile(tmp, "w") as f:
    json.dump(obj, f, indent=1, sort_keys=True, default=_json_default)
  tf.io.gfile.rename(tmp, path, overwrite=True)


def _json_default(o):
  if isinstance(o, (np.integer,)):
    return int(o)
  if isinstance(o, (np.floating,)):
    return float(o)
  if isinstance(o, np.ndarray):
    return o.tolist()
  if isinstance(o, tuple):
    return list(o)
  raise TypeError(f"Not JSON serialisable: {type(o)}")


def load_run(output_dir: str, prepared: Optional[Prepared] = None
             ) -> Tuple[ExperimentConfig, Prepared, MICModel]:
  """Reloads a finished run: its config, its data and its best model.

  Args:
    output_dir: A directory written by ``run_experiment``.
    prepared: Reuse already prepared data.

  Returns:
    ``(config, prepared, model)`` with the selected checkpoint restored.

  Raises:
    FileNotFoundError: If the directory holds no finished run.
    UserError: If its config or checkpoint comes from another mic-tf
      version.
  """
  config_path = os.path.join(output_dir, "config.json")
  ckpt = os.path.join(output_dir, "checkpoints", "best")
  if not tf.io.gfile.exists(config_path):
    raise FileNotFoundError(
        f"{config_path} not found: {output_dir!r} is not a run directory "
        "written by experiments/train.py (pass its --output_dir).")
  if not tf.io.gfile.exists(ckpt + ".index"):
    raise FileNotFoundError(
        f"No checkpoint at {ckpt}: the run in {output_dir!r} did not finish "
        "an epoch. Train it again (a crashed run resumes from backup/).")
  with tf.io.gfile.GFile(config_path) as f:
    config = ExperimentConfig.from_dict(json.load(f))
  prepared = prepared or prepare_data(config)
  model = build_model(config, prepared.tables, prepared.dataset)
  build_variables(model, prepared.tables)
  try:
    status = tf.train.Checkpoint(model=model).read(ckpt)
    status.assert_existing_objects_matched()
  except (AssertionError, IndexError, ValueError, tf.errors.OpError) as error:
    run_files.check_checkpoint(ckpt, output_dir)  # corrupt, not mismatched
    raise errors.UserError(
        f"The checkpoint in {output_dir!r} does not fit the model its "
        "config.json describes (written by another mic-tf version?): "
        f"{str(error).splitlines()[0][:200]} Evaluate it with the version "
        "that trained it, or retrain.") from error
  status.expect_partial()  # optimizer slots are not needed to evaluate
  return config, prepared, model
