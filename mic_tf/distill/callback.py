"""``DistillationCallback``: refreshes a model's teacher lists during ``fit``.

The model must have ``distill_teacher`` (a ``TeacherTable``, as ``MICModel``
has with ``MICConfig.distill_weight > 0``).
"""

from typing import Dict, List, Optional

import tensorflow as tf

from mic_tf import features as F
from mic_tf.channels.u2u import U2UConfig
from mic_tf.distill.lists import teacher_lists
from mic_tf.mining.callback import timed_refresh


class DistillationCallback(tf.keras.callbacks.Callback):
  """Recomputes the teacher lists from the current weights.

  The lists are refreshed at the start of the first epoch of every ``fit``
  call (a resumed run has its weights restored by then), then at the start
  of each later epoch (``every_epoch``) and/or after every ``every_steps``
  training steps; none before epoch ``start_epoch`` (until then the table
  is empty and the term 0).

  Args:
    tables: The run's ``FeatureTables``.
    dataset: The run's ``ProcessedDataset`` (its training users and
      sequences; nothing else is read).
    u2u: Settings of the teacher's U2U channel (default ``U2UConfig()``).
    every_epoch: Refresh at each epoch start.
    every_steps: Also refresh every this many steps (None: never).
    start_epoch: First epoch to refresh at; None takes
      ``model.config.distill_start_epoch``.
    verbose: Log each refresh's timings.

  Attributes:
    timings: One dict per refresh: ``epoch``, ``step`` and seconds
      (``encode_s``, ``rank_s``, ``total_s``).
  """

  def __init__(self, tables: F.FeatureTables, dataset,
               u2u: Optional[U2UConfig] = None, every_epoch: bool = True,
               every_steps: Optional[int] = None,
               start_epoch: Optional[int] = None, verbose: bool = True):
    super().__init__()
    if every_steps is not None and every_steps <= 0:
      raise ValueError(f"every_steps must be positive or None, got "
                       f"{every_steps}.")
    self.tables = tables
    self.dataset = dataset
    self.u2u = u2u or U2UConfig()
    self.every_epoch = bool(every_epoch)
    self.every_steps = every_steps
    self._start_epoch = start_epoch
    self.verbose = verbose
    self.timings: List[Dict[str, float]] = []
    self._epoch = 0
    self._step = 0
    self._refreshed_this_fit = False

  def set_model(self, model):
    if getattr(model, "distill_teacher", None) is None:
      raise ValueError(
          "DistillationCallback needs a model with a teacher table: a "
          "MICModel with MICConfig.distill_weight > 0; got "
          f"{type(model).__name__} without one.")
    super().set_model(model)

  @property
  def start_epoch(self) -> int:
    if self._start_epoch is not None:
      return self._start_epoch
    return int(getattr(self.model.config, "distill_start_epoch", 0))

  def refresh(self) -> Dict[str, float]:
    """Recomputes and writes the teacher lists now; returns the timings."""
    def work():
      table = self.model.distill_teacher
      users, lists, timings = teacher_lists(
          self.model, self.tables, self.dataset, table.num_items, self.u2u,
          holdout=float(getattr(self.model.config, "distill_holdout", 0.0)))
      table.assign(users, lists)
      return timings

    return timed_refresh(self, "teacher lists", work)

  def on_train_begin(self, logs=None):
    self._refreshed_this_fit = False

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch
    if epoch < self.start_epoch:
      return
    if self.every_epoch or not self._refreshed_this_fit:
      self.refresh()
      self._refreshed_this_fit = True

  def on_train_batch_end(self, batch, logs=None):
    self._step += 1
    if self._epoch < self.start_epoch:
      return
    if self.every_steps and self._step % self.every_steps == 0:
      self.refresh()
