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

import dataclasses
import json
import os
import time
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from mic_tf import console
from mic_tf import distribute
from mic_tf import errors
from mic_tf import features as F
from mic_tf import names
from mic_tf import optimizers
from mic_tf import pipeline
from mic_tf import run_files
from mic_tf import run_record
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.evaluate import evaluate_channels
from mic_tf.channels.evaluate import evaluate_u2i  # the U2I channel, exact
from mic_tf.data import protocol
from mic_tf.data import registry as data_registry
from mic_tf.data import subsample
from mic_tf.data.dataset import ProcessedDataset
from mic_tf.mining import MiningCallback, MiningConfig
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel
from mic_tf.models.mined import build_mined_model
from mic_tf.towers import registry as tower_registry


# ExperimentConfig.init_order values.
INIT_ORDERS = ("lazy", "towers_first")


@dataclasses.dataclass
class ExperimentConfig:
  """Everything one training run needs.

  Attributes:
    dataset: Registered dataset name (see ``mic_tf.data.registry``).
    data_dir: Data cache directory (default: ``$MIC_TF_DATA_DIR`` or
      ``~/.cache/mic_tf/data``).
    dataset_kwargs: Extra loader arguments (paths, column names).
    tower: Registered tower name.
    epochs: Maximum training epochs (training stops earlier when the
      validation metric has not improved for ``patience`` epochs).
    patience: Early stopping: stop after this many epochs without a new best
      validation score (``select_on``); the best epoch's weights are
      restored. ``None`` trains all ``epochs``.
    select_on: The channels whose valid Recall@{max cutoff} selects the
      epoch (and early-stops): their mean. ``("u2i",)`` (default): the U2I
      channel alone. Any other channel (``"u2u"``, ``"i2i"``, ``"fused"``)
      is also evaluated after every epoch, exactly, with its default
      ``ChannelConfig``; its metrics join the history as ``<channel>_<metric>``
      and the score as ``selection`` (``selection_metric``).
    batch_size: Training batch size (paper: 1024).
    learning_rate: Adam learning rate (paper: 1e-3).
    optimizer: ``"auto"`` (Adam; embedding tables of 100k rows or more get
      sparse, lazy updates), ``"adam"`` (Keras' Adam) or ``"lazy_adam"``
      (see ``mic_tf.optimizers``).
    weight_decay: Decoupled (AdamW) weight decay of every trainable
      variable; 0 (default) turns it off. ``lazy`` optimizers decay only
      the embedding rows a step updates (``mic_tf.optimizers``).
    strategy: ``"default"``, ``"mirrored"`` or ``"multi_worker"`` (the
      cluster from ``TF_CONFIG``); see ``mic_tf.distribute``. ``batch_size``
      and ``MICConfig.contrastive_batch_size`` are global (all replicas).
    embedding_dim: Field embedding width (paper: 128).
    output_dim: Tower output width (paper: 128).
    hidden_units: Hidden layer widths of MLP towers.
    dropout: Dropout inside the towers (paper: 0.2).
    maxlen: History length (ML default 50; ComiRec: Books 20, Taobao 50).
    min_history: Shortest history of a training example.
    steps_per_epoch: If set, training reads an endless reshuffled stream and
      an "epoch" (one validation, one early-stopping step) is this many
      batches; ``None``: one pass over the training examples.
    examples_per_epoch: If set, each epoch uses this many (user, position)
      pairs drawn once with the seed (bounds the epoch cost).
    use_user_id: Give the user tower a user-id field.
    max_item_users: Size of each item's bag of training users (0: off).
    seed: Seed of initialisation, shuffling and perturbation.
    init_order: When the model's variables are created. ``"lazy"``: by the
      first training-mode loss, after whatever the objective draws first
      (MIC's perturbations), so the base model and MIC start from different
      tower weights at one seed. ``"towers_first"``: the towers and
      projection heads are created first, by an inference pass that draws
      nothing else, so every objective at one seed starts from the same
      tower and head weights (tighter seed-paired comparisons).
    data_seed: Seed of data-side sampling (which training users fill an
      item's user bag). Kept apart from ``seed`` so that every seed of a
      grid trains on the same features, and ``load_run`` rebuilds them.
    train_user_fraction: Train on this seeded fraction of the training users
      only (``mic_tf.data.subsample``; drawn with ``data_seed``); valid and
      test users are unchanged. 1.0: all of them.
    output_dir: Where to write the run; None keeps nothing on disk.
    cutoffs: Metric cutoffs N.
    exclude_history: Exclude each user's history items from retrieval.
    eval_batch_size: Users per evaluation batch.
    mic: The MIC objective's settings.
    mining: Nearest-neighbour mining settings (off by default; every mined
      channel must also be a MIC term).
    tower_kwargs: Extra arguments of the user tower builder.
  """
  dataset: str = "ml-1m"
  data_dir: Optional[str] = None
  dataset_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
  tower: str = "dssm"
  epochs: int = 3
  patience: Optional[int] = None
  batch_size: int = 1024
  learning_rate: float = 1e-3
  optimizer: str = "auto"
  weight_decay: float = 0.0
  strategy: str = "default"
  embedding_dim: int = 128
  output_dim: int = 128
  hidden_units: Tuple[int, ...] = (256,)
  dropout: float = 0.2
  maxlen: int = 50
  min_history: int = 1
  steps_per_epoch: Optional[int] = None
  examples_per_epoch: Optional[int] = None
  use_user_id: bool = False
  max_item_users: int = 50
  seed: int = 0
  init_order: str = "lazy"
  data_seed: int = 0
  train_user_fraction: float = 1.0
  output_dir: Optional[str] = None
  cutoffs: Tuple[int, ...] = (20, 50)
  select_on: Tuple[str, ...] = (names.U2I,)
  exclude_history: bool = True
  eval_batch_size: int = 1024
  mic: MICConfig = dataclasses.field(default_factory=MICConfig.base)
  mining: MiningConfig = dataclasses.field(default_factory=MiningConfig.off)
  tower_kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    for name in ("epochs", "batch_size", "embedding_dim", "output_dim",
                 "maxlen", "eval_batch_size"):
      if getattr(self, name) <= 0:
        raise ValueError(f"{name} must be positive, got "
                         f"{getattr(self, name)}.")
    if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
      raise ValueError(f"steps_per_epoch must be positive (or None for full "
                       f"passes), got {self.steps_per_epoch}.")
    if self.init_order not in INIT_ORDERS:
      raise ValueError(f"init_order must be one of {INIT_ORDERS}, got "
                       f"{self.init_order!r}.")
    if self.patience is not None and self.patience <= 0:
      raise ValueError(f"patience must be positive (or None to train every "
                       f"epoch), got {self.patience}.")
    if self.learning_rate <= 0:
      raise ValueError(f"learning_rate must be positive, got "
                       f"{self.learning_rate}.")
    if not self.weight_decay >= 0:
      raise ValueError(f"weight_decay must be >= 0 (0 turns it off), got "
                       f"{self.weight_decay}.")
    if self.optimizer not in optimizers.OPTIMIZERS:
      raise ValueError(f"optimizer must be one of {optimizers.OPTIMIZERS}, "
                       f"got {self.optimizer!r}.")
    if self.strategy not in distribute.STRATEGIES:
      raise ValueError(f"strategy must be one of {distribute.STRATEGIES}, "
                       f"got {self.strategy!r}.")
    self.train_user_fraction = subsample.check_fraction(
        self.train_user_fraction)
    if not 0 <= self.dropout < 1:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
    if isinstance(self.mic, dict):
      self.mic = MICConfig.from_dict(self.mic)
    if isinstance(self.mining, dict):
      self.mining = MiningConfig.from_dict(self.mining)
    self.hidden_units = tuple(self.hidden_units)
    self.cutoffs = tuple(self.cutoffs)
    self.select_on = tuple(self.select_on)
    unknown = [c for c in self.select_on if c not in names.CHANNELS]
    if not self.select_on or unknown or (
        len(set(self.select_on)) < len(self.select_on)):
      raise ValueError(f"select_on must name distinct channels of "
                       f"{names.CHANNELS}, got {list(self.select_on)}.")

  @property
  def selection_metric(self) -> str:
    """The key of the valid score that selects the epoch (``select_on``)."""
    return selection_metric(self.select_on, self.cutoffs)

  @property
  def towers_first(self) -> bool:
    """Whether towers and heads are created before the first loss."""
    return self.init_order == "towers_first"

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "ExperimentConfig":
    """Inverse of ``to_dict``.

    Raises:
      UserError: If ``d`` has settings this version does not know (a config
        written by another mic-tf version).
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
      raise errors.UserError(
          f"Unknown experiment settings {unknown}: the config was written by "
          "another mic-tf version. Use that version, or retrain with this "
          "one.")
    return cls(**d)


@dataclasses.dataclass
class Prepared:
  """Data after the protocol and feature building (reusable across runs)."""
  dataset: ProcessedDataset
  tables: F.FeatureTables
  valid: F.EvalUsers
  test: F.EvalUsers


def prepare_data(config: ExperimentConfig,
                 dataset: Optional[ProcessedDataset] = None) -> Prepared:
  """Loads the dataset (unless given), applies the protocol, builds features.

  Args:
    config: The experiment config.
    dataset: An already processed dataset to reuse.

  Returns:
    The ``Prepared`` data.
  """
  if dataset is None:
    raw = data_registry.load_dataset(config.dataset, data_dir=config.data_dir,
                                     **config.dataset_kwargs)
    dataset = protocol.apply_comirec_protocol(raw)
    console.status(protocol.describe(dataset))
  if config.train_user_fraction != dataset.train_user_fraction:
    total = len(dataset.train_users)
    dataset = subsample.keep_train_users(dataset, config.train_user_fraction,
                                         seed=config.data_seed)
    console.status(f"Training on {len(dataset.train_users):,} of {total:,} "
                   f"training users (train_user_fraction="
                   f"{config.train_user_fraction}, data_seed="
                   f"{config.data_seed}); valid and test users unchanged.")
  F.check_history_memory(dataset, config.maxlen, config.batch_size,
                         config.embedding_dim)
  tables = F.build_feature_tables(dataset, maxlen=config.maxlen,
                                  use_user_id=config.use_user_id,
                                  max_item_users=config.max_item_users,
                                  seed=config.data_seed)
  valid = F.eval_users(tables, dataset, dataset.valid_users)
  test = F.eval_users(tables, dataset, dataset.test_users)
  return Prepared(dataset, tables, valid, test)


def build_model(config: ExperimentConfig, tables: F.FeatureTables,
                dataset: Optional[ProcessedDataset] = None) -> MICModel:
  """Builds the towers and the (mined) ``MICModel`` and compiles it.

  Args:
    config: The experiment config.
    tables: Feature tables.
    dataset: The processed dataset; needed when mining is on (the user pool
      is every training user's history).

  Returns:
    A compiled ``MICModel`` (a ``MinedMICModel`` when mining is on).
  """
  user_tower, item_tower = tower_registry.build_towers(
      config.tower, tables.spec, embedding_dim=config.embedding_dim,
      output_dim=config.output_dim, dropout=config.dropout,
      hidden_units=config.hidden_units, **config.tower_kwargs)
  if config.mining.enabled:
    if dataset is None:
      raise ValueError("Mining needs the dataset (training users' "
                       "histories): pass dataset=prepared.dataset.")
    model = build_mined_model(user_tower, item_tower, tables, dataset,
                              config.mic, config.mining)
  else:
    model = MICModel(user_tower, item_tower, tables.spec, tables.item_table,
                     config=config.mic, item_counts=tables.item_counts)
  model.compile(optimizer=optimizers.make_optimizer(
      config.optimizer, config.learning_rate, config.weight_decay))
  return model


SELECTION = "selection"


def selection_metric(select_on: Sequence[str],
                     cutoffs: Sequence[int]) -> str:
  """``recall@K`` when U2I alone selects, else ``"selection"``."""
  if tuple(select_on) == (names.U2I,):
    return f"recall@{max(cutoffs)}"
  return SELECTION


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
  strategy = distribute.make_strategy(config.strategy)
  if config.output_dir and distribute.is_chief(strategy):
    run_files.check_output_dir(config.output_dir)
  tf.keras.utils.set_random_seed(config.seed)
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
      tables, prepared.dataset, batch_size=config.batch_size,
      seed=config.seed, min_history=config.min_history,
      max_examples=config.examples_per_epoch)
  if config.steps_per_epoch:
    train_ds = train_ds.repeat()
  with strategy.scope():
    model = build_model(config, tables, prepared.dataset)
    build_variables(model, tables,
                    towers_first=config.towers_first)
  if out_dir and chief:
    run_files.check_free_space(out_dir, 2 * run_files.weight_bytes(model))

  ckpt = os.path.join(out_dir, "checkpoints", "best") if out_dir else None
  evaluator = EvaluationCallback(prepared.valid, config.cutoffs,
                                 config.exclude_history,
                                 config.eval_batch_size, ckpt, resume=resume,
                                 patience=config.patience,
                                 select_on=config.select_on, tables=tables,
                                 dataset=prepared.dataset,
                                 defer_writes=bool(out_dir))
  all_callbacks = [evaluator]
  if config.mining.enabled:
    all_callbacks.insert(0, MiningCallback(verbose=verbose > 0))
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
      model.fit(train_ds, epochs=config.epochs, callbacks=all_callbacks,
                verbose=verbose, steps_per_epoch=config.steps_per_epoch)
  train_seconds = time.perf_counter() - start
  evaluator.restore_best()
  distribute.remove_worker_files(strategy)
  test = (evaluate_u2i(model, prepared.test, config.cutoffs,
                       config.exclude_history, config.eval_batch_size)
          if evaluate_test else None)
  valid = next(h for h in evaluator.history
               if h["epoch"] == evaluator.best_epoch)
  epoch_seconds = [h.get(HISTORY_SECONDS) for h in evaluator.history]
  epochs_run = max(h["epoch"] for h in evaluator.history)
  results = {
      "dataset": config.dataset, "tower": config.tower,
      "mic_terms": list(config.mic.terms), "seed": config.seed,
      "best_epoch": evaluator.best_epoch,
      "epochs_run": epochs_run,
      "max_epochs": config.epochs,
      "stopped_early": evaluator.stopped_epoch is not None,
      # The best epoch is interior (the metric fell afterwards): the run is
      # converged in the early-stopping sense. A best epoch equal to the
      # last allowed one means training was cut while still improving.
      "converged": is_converged(evaluator.best_epoch, config.epochs),
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
      evaluator.best_epoch, epochs_run, config.epochs, config.patience,
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
    max_epochs: The most epochs the run was allowed (``config.epochs``).

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
  stored = json.loads(json.dumps(stored, default=_json_default))
  now = json.loads(json.dumps(config.to_dict(), default=_json_default))
  keys = sorted((set(stored) | set(now))
                - {"output_dir", "epochs", "patience"})
  differ = [k for k in keys if stored.get(k) != now.get(k)]
  if differ:
    shown = ", ".join(f"{k}: {stored.get(k, '(unset)')!r} there, "
                      f"{now.get(k, '(unset)')!r} now" for k in differ[:3])
    more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
    raise errors.UserError(
        f"{out_dir} holds an unfinished run with other settings ({shown}"
        f"{more}). Resume it with its own settings, pass another "
        f"--output_dir, or delete {os.path.join(out_dir, 'backup')} to "
        "start over there.")


def _check_prepared(config: ExperimentConfig, prepared: Prepared) -> None:
  """Raises if reused data were built with other feature settings."""
  spec = prepared.tables.spec
  bag = (spec.item_field(F.ITEM_USERS).length
         if F.ITEM_USERS in spec.item_field_names else 0)
  has_id = F.USER_ID in spec.user_field_names
  if (spec.maxlen, bag, has_id) != (config.maxlen, config.max_item_users,
                                    config.use_user_id):
    raise ValueError(
        "The prepared data do not match the config: built with maxlen="
        f"{spec.maxlen}, max_item_users={bag}, use_user_id={has_id}; the "
        f"config asks for {config.maxlen}, {config.max_item_users}, "
        f"{config.use_user_id}. Call prepare_data(config) with this config.")
  kept = prepared.dataset.train_user_fraction
  if kept != config.train_user_fraction:
    raise ValueError(
        f"The prepared data keep {kept} of the training users; the config "
        f"asks for train_user_fraction={config.train_user_fraction}. Call "
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


def build_variables(model: MICModel, tables: F.FeatureTables,
                    towers_first: bool = False) -> None:
  """Creates every variable of a model by running one tiny batch.

  Call it inside ``strategy.scope()`` when the model was built there.

  Args:
    model: The model.
    tables: Its feature tables.
    towers_first: Create the towers and projection heads first, with an
      inference pass (no perturbation, no dropout), so that their initial
      weights depend on the seed only and not on the objective
      (``ExperimentConfig.init_order="towers_first"``).
  """
  users = np.nonzero(tables.train_user_mask)[0][:2]
  feats = tables.user_features(
      users, np.zeros((len(users), tables.spec.maxlen), np.int32))
  batch = {k: tf.constant(v) for k, v in feats.items()}
  batch[F.ITEM_ID] = tf.constant([1, 1], tf.int32)
  batch[F.USER_KEY] = tf.constant(users.astype(np.int32))
  if towers_first:
    model.user_query(batch)
    model.item_candidate(batch[F.ITEM_ID])
  strategy = tf.distribute.get_strategy()
  if tf.distribute.has_strategy():  # inside strategy.scope(): per replica
    strategy.run(lambda b: model.compute_loss(b, training=True),
                 args=(batch,))
  else:
    model.compute_loss(batch, training=True)
  model(batch)  # marks the Keras model as built


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
