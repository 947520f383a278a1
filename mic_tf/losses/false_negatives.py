"""Known positives inside a batch: pairs that must never serve as negatives.

In-batch negatives are the other rows' target items. Some of them are not
negatives at all: row ``j`` may belong to the same user as row ``i`` (then
``item_j`` is another item this user chose), or ``item_j`` may sit in row
``i``'s history. Pushing such a pair apart teaches the model the opposite of
the evaluation, which counts every later item of the user as a hit.

``known_positives(user_ids, item_ids, histories)`` marks those pairs; the
basic losses, the user-item term and the item-item term take the mask and
drop the marked pairs from their denominators (the own positive always
stays). For the item-item term the same mask reads "both items were chosen
by row ``i``'s user", so co-consumed items are not pushed apart either.
"""

from typing import Optional

import tensorflow as tf


def known_positives(user_ids: Optional[tf.Tensor],
                    item_ids: tf.Tensor,
                    histories: Optional[tf.Tensor] = None,
                    padding_id: int = 0) -> tf.Tensor:
  """(B, B) bool: ``[i, j]`` True when ``item_ids[j]`` is a positive of row i.

  A pair is a known positive when rows ``i`` and ``j`` belong to the same
  user, when the two rows have the same target item, or when ``item_ids[j]``
  appears in row ``i``'s history. The diagonal is True.

  Args:
    user_ids: (B,) int user of each row, or None (no same-user rule).
    item_ids: (B,) int target item of each row.
    histories: Optional (B, L) int history item ids of each row (padding
      ``padding_id`` never matches).
    padding_id: Id of history padding.

  Returns:
    A (B, B) bool tensor.
  """
  items = tf.cast(tf.reshape(item_ids, [-1]), tf.int64)
  mask = tf.equal(items[:, tf.newaxis], items[tf.newaxis, :])
  if user_ids is not None:
    users = tf.cast(tf.reshape(user_ids, [-1]), tf.int64)
    mask = tf.logical_or(mask, tf.equal(users[:, tf.newaxis],
                                        users[tf.newaxis, :]))
  if histories is not None:
    mask = tf.logical_or(mask, _in_history(items, histories, padding_id))
  return mask


def _in_history(items: tf.Tensor, histories: tf.Tensor,
                padding_id: int) -> tf.Tensor:
  """(B, B) bool: ``[i, j]`` True when ``items[j]`` is in row i's history.

  Comparing every history entry with every target is B x B x L work (21M
  comparisons at B = 1024, L = 20: a sixth of a DSSM training step on a
  2-core CPU). Instead each history entry is looked up among the batch's
  distinct targets (a binary search), the hits are scattered into a
  (B, distinct targets) table, and its columns are read per target.
  """
  batch = tf.shape(items)[0]
  hist = tf.cast(histories, tf.int64)
  targets, target_slot = tf.unique(items)  # (U,), (B,)
  order = tf.argsort(targets)
  sorted_targets = tf.gather(targets, order)
  num_targets = tf.shape(targets)[0]
  flat = tf.reshape(hist, [1, -1])
  at = tf.searchsorted(sorted_targets[tf.newaxis], flat, side="left")[0]
  at = tf.minimum(at, num_targets - 1)
  flat = flat[0]
  hit = tf.logical_and(tf.equal(tf.gather(sorted_targets, at), flat),
                       tf.not_equal(flat, padding_id))
  length = tf.shape(hist)[1]
  rows = tf.repeat(tf.range(batch), length)
  where = tf.stack([tf.boolean_mask(rows, hit),
                    tf.boolean_mask(tf.gather(order, at), hit)], axis=1)
  holds = tf.scatter_nd(where, tf.ones(tf.shape(where)[:1], tf.int32),
                        tf.stack([batch, num_targets])) > 0
  return tf.gather(holds, target_slot, axis=1)
