"""``TeacherTable``: each training user's teacher list, and the draw of one
teacher item per batch row.

The table is indexed by the user key of the training batches
(``features.USER_KEY``). It holds, as non-trainable ``tf.Variable`` s of
dynamic size (so a refresh may write any number of users):

* ``items`` ``(U, k)`` int32: row ``u`` holds user ``u``'s teacher items,
  best first, then 0;
* ``counts`` ``(U,)`` int32: how many of them are real (0: no teacher).

It is derived state: a refresh recomputes it from the weights, so the model
keeps it outside Keras' tracking (a plain object, as the mining bank is):
it is in no checkpoint, ``get_weights`` or export, and a resumed run
refreshes it before its first step (``DistillationCallback``).
"""

from typing import Tuple

import numpy as np
import tensorflow as tf


class TeacherTable:
  """Teacher lists by user id (module docstring).

  Args:
    num_items: ``k``, the length of each list.
  """

  def __init__(self, num_items: int):
    if isinstance(num_items, bool) or num_items < 1:
      raise ValueError(f"num_items must be a positive integer, got "
                       f"{num_items!r}.")
    self.num_items = int(num_items)
    with tf.init_scope():
      self.items = tf.Variable(
          tf.zeros([1, self.num_items], tf.int32), trainable=False,
          shape=tf.TensorShape([None, self.num_items]), name="teacher_items")
      self.counts = tf.Variable(tf.zeros([1], tf.int32), trainable=False,
                                shape=tf.TensorShape([None]),
                                name="teacher_counts")
    self.refreshes = 0

  def assign(self, user_ids: np.ndarray, lists: np.ndarray) -> None:
    """Writes the lists of ``user_ids``; every other user has none.

    Args:
      user_ids: ``(n,)`` int user ids (>= 0, distinct).
      lists: ``(n, m)`` int item ids, best first; entries ``<= 0`` (the
        channels' -1 padding) are dropped and the rest kept in order, at
        most ``k`` of them.

    Raises:
      ValueError: On misaligned inputs or a negative user id.
    """
    user_ids = np.asarray(user_ids, np.int64).reshape(-1)
    lists = np.asarray(lists, np.int64)
    if lists.ndim != 2 or len(lists) != len(user_ids):
      raise ValueError(f"lists must be (n, m) with n = {len(user_ids)} "
                       f"users, got shape {lists.shape}.")
    if user_ids.size and user_ids.min() < 0:
      raise ValueError("user_ids must be >= 0.")
    size = int(user_ids.max()) + 1 if user_ids.size else 1
    items = np.zeros((size, self.num_items), np.int32)
    counts = np.zeros(size, np.int32)
    for u, row in zip(user_ids, lists):
      real = row[row > 0][:self.num_items]
      items[u, :len(real)] = real
      counts[u] = len(real)
    self.items.assign(items)
    self.counts.assign(counts)
    self.refreshes += 1

  def lookup(self, user_ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """``(items (B, k), counts (B,))`` of ``user_ids``; unknown ids: none."""
    ids = tf.cast(tf.reshape(user_ids, [-1]), tf.int32)
    size = tf.shape(self.counts)[0]
    known = tf.logical_and(ids >= 0, ids < size)
    safe = tf.where(known, ids, 0)
    counts = tf.where(known, tf.gather(self.counts, safe), 0)
    return tf.gather(self.items, safe), counts

  def sample(self, user_ids: tf.Tensor,
             uniform: tf.Tensor = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """One teacher item per row, uniform over the user's list.

    Args:
      user_ids: ``(B,)`` int user ids.
      uniform: Optional ``(B,)`` floats in ``[0, 1)`` to draw with (tests);
        default: ``tf.random.uniform``.

    Returns:
      ``(item_ids, has_teacher)``: ``(B,)`` int32 (0 where the user has no
      list) and ``(B,)`` bool.
    """
    items, counts = self.lookup(user_ids)
    if uniform is None:
      uniform = tf.random.uniform(tf.shape(counts), dtype=tf.float32)
    pick = tf.cast(tf.floor(uniform * tf.cast(counts, tf.float32)), tf.int32)
    pick = tf.clip_by_value(pick, 0, tf.maximum(counts - 1, 0))
    chosen = tf.gather(items, pick[:, None], axis=1, batch_dims=1)[:, 0]
    has = counts > 0
    return tf.where(has, chosen, 0), has
