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
    hist = tf.cast(histories, tf.int64)
    hist = tf.where(tf.equal(hist, padding_id), tf.constant(-1, tf.int64),
                    hist)
    # (B, 1, L) == (1, B, 1) -> (B, B, L); B x B x L booleans (20 MB at
    # B = 1024, L = 20), negligible next to the tower passes.
    in_history = tf.reduce_any(
        tf.equal(hist[:, tf.newaxis, :], items[tf.newaxis, :, tf.newaxis]),
        axis=-1)
    mask = tf.logical_or(mask, in_history)
  return mask
