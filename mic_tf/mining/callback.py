"""``MiningCallback``: refreshes a model's memory bank during ``fit``.

The model must provide ``refresh_mining_bank() -> Dict[str, float]`` (as
``mic_tf.models.mined.MinedMICModel`` does) and a ``mining`` config.
"""

import time
from typing import Callable, Dict, List, Mapping, Optional

from absl import logging
import tensorflow as tf


def timed_refresh(callback: tf.keras.callbacks.Callback, what: str,
                  refresh: Callable[[], Mapping[str, float]]
                  ) -> Dict[str, float]:
  """Runs ``refresh`` and records its timings on a refreshing callback.

  Shared by the callbacks that rebuild derived state from the current
  weights during ``fit`` (the mining bank, the distillation teacher).

  Args:
    callback: A callback with ``timings`` (list), ``verbose``, ``_epoch``
      and ``_step``.
    what: What is refreshed, for the log line.
    refresh: Does the work; returns its timings in seconds (``*_s``).

  Returns:
    The timings with ``total_s``, ``epoch`` and ``step`` added (also
    appended to ``callback.timings``).
  """
  start = time.perf_counter()
  timings = dict(refresh())
  timings["total_s"] = time.perf_counter() - start
  timings.update(epoch=callback._epoch, step=callback._step)  # pylint: disable=protected-access
  callback.timings.append(timings)
  if callback.verbose:
    logging.info("%s refreshed (epoch %d, step %d): %s", what,
                 timings["epoch"], timings["step"],
                 " ".join(f"{k}={v:.3f}" for k, v in sorted(timings.items())
                          if k.endswith("_s")))
  return timings


class MiningCallback(tf.keras.callbacks.Callback):
  """Refreshes the mining bank at the start of training and on a schedule.

  The bank is refreshed at the start of the first epoch of every ``fit``
  call (or, with ``mining.warmup_steps``, once that many optimizer steps
  have run: the mined terms stay off until then), then at the start of each later epoch (``every_epoch``) and/or after
  every ``every_steps`` training steps. Each refresh re-encodes the pools with
  the current weights, recomputes the kNN lists and the k-means++ clusters.

  Args:
    every_steps: Refresh every this many steps; None takes
      ``model.mining.refresh_every_steps``.
    every_epoch: Refresh at each epoch start; None takes
      ``model.mining.refresh_every_epoch``.
    verbose: Log each refresh's timings.

  Attributes:
    timings: One dict per refresh: ``epoch``, ``step`` and seconds spent
      (``encode_s``, ``knn_s``, ``kmeans_s``, ``total_s``).
  """

  def __init__(self, every_steps: Optional[int] = None,
               every_epoch: Optional[bool] = None, verbose: bool = True):
    super().__init__()
    if every_steps is not None and every_steps <= 0:
      raise ValueError(f"every_steps must be positive or None, got "
                       f"{every_steps}.")
    self._every_steps = every_steps
    self._every_epoch = every_epoch
    self.verbose = verbose
    self.timings: List[Dict[str, float]] = []
    self._step = 0
    self._epoch = 0
    self._refreshed_this_fit = False

  def set_model(self, model):
    if not hasattr(model, "refresh_mining_bank"):
      raise ValueError(
          f"MiningCallback needs a model with refresh_mining_bank(), such as "
          f"mic_tf.models.mined.MinedMICModel; got {type(model).__name__}.")
    super().set_model(model)

  @property
  def every_steps(self) -> Optional[int]:
    if self._every_steps is not None:
      return self._every_steps
    return self.model.mining.refresh_every_steps

  @property
  def every_epoch(self) -> bool:
    if self._every_epoch is not None:
      return self._every_epoch
    return self.model.mining.refresh_every_epoch

  def refresh(self) -> Dict[str, float]:
    """Refreshes the bank now and records the timings."""
    return timed_refresh(self, "mining bank", self.model.refresh_mining_bank)

  def on_train_begin(self, logs=None):
    self._refreshed_this_fit = False

  @property
  def warming_up(self) -> bool:
    """True until ``mining.warmup_steps`` optimizer steps have run."""
    warmup = getattr(self.model.mining, "warmup_steps", 0)
    if not warmup:
      return False
    return int(self.model.optimizer.iterations.numpy()) < warmup

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch = epoch
    if self.warming_up:
      return
    if self.every_epoch or not self._refreshed_this_fit:
      self.refresh()
      self._refreshed_this_fit = True

  def on_train_batch_end(self, batch, logs=None):
    self._step += 1
    if self.warming_up:
      return
    every = self.every_steps
    if not self._refreshed_this_fit or (every and self._step % every == 0):
      # The first refresh after the warm-up turns the mined terms on.
      self.refresh()
      self._refreshed_this_fit = True
