"""Item-item (I2I) contrastive loss, eq. (6) of the MIC paper."""

from typing import Optional

import tensorflow as tf

from mic_tf.losses import _common
# Imported by name: the package re-exports the function `info_nce`, which
# shadows the submodule of the same name as a package attribute.
from mic_tf.losses.info_nce import info_nce
from mic_tf.losses.info_nce import nt_xent


def item_item_loss(view_a: tf.Tensor,
                   view_b: tf.Tensor,
                   item_ids: Optional[tf.Tensor] = None,
                   temperature: _common.Temperature = 0.1,
                   known_positives: Optional[tf.Tensor] = None,
                   positive_ids: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Contrastive loss between views of the target items and their positives.

  Without ``positive_ids`` (eq. 6): each item view's positive is the other
  view of the same item; the other 2(N - 1) item views of the batch are
  negatives (SimCLR NT-Xent). Rows that carry the same item id (popular items
  recur within a batch) are not used as negatives.

  With ``positive_ids`` (co-occurrence positives): ``view_b[i]`` is a view of
  item ``positive_ids[i]``, the positive of ``view_a[i]`` and the other way
  round; the 2N views are stacked as in NT-Xent. A view of row ``i`` never
  takes as a negative a view whose item is row ``i``'s item or its positive;
  ``known_positives[i, j]`` drops row ``j``'s item view, and row ``j``'s
  positive view where it is the same item. With ``positive_ids ==
  item_ids`` the loss equals the one without.

  Args:
    view_a: (B, d) item representations under the first perturbation.
    view_b: (B, d) representations under the second perturbation: of the
      same items, or of ``positive_ids``.
    item_ids: Optional (B,) int item ids for accidental-hit masking;
      required with ``positive_ids``.
    temperature: Softmax temperature tau (> 0); the paper uses 0.1.
    known_positives: Optional (B, B) bool; True pairs are not negatives
      (``mic_tf.losses.false_negatives``).
    positive_ids: Optional (B,) int item of each row of ``view_b``.

  Returns:
    A float32 scalar: mean loss over the 2B item views.

  Raises:
    ValueError: If ``positive_ids`` is given without ``item_ids``.
  """
  if positive_ids is None:
    return nt_xent(view_a, view_b, ids=item_ids,
                   temperature=temperature, known_positives=known_positives)
  if item_ids is None:
    raise ValueError("positive_ids needs item_ids (the item of each row of "
                     "view_a).")
  view_a = _common.as_float32(view_a, "view_a")
  view_b = _common.as_float32(view_b, "view_b")
  batch_size = tf.shape(view_a)[0]
  views = tf.concat([view_a, view_b], axis=0)
  positive_indices = tf.concat(
      [tf.range(batch_size, 2 * batch_size), tf.range(batch_size)], axis=0)
  items = tf.cast(tf.reshape(item_ids, [-1]), tf.int64)
  positives = tf.cast(tf.reshape(positive_ids, [-1]), tf.int64)
  key_ids = tf.concat([items, positives], axis=0)
  row_items = tf.tile(items, [2])
  row_positives = tf.tile(positives, [2])
  same_pair = tf.logical_or(
      _common.same_id_mask(row_items, key_ids),
      _common.same_id_mask(row_positives, key_ids))
  valid = tf.logical_and(tf.logical_not(tf.eye(2 * batch_size,
                                               dtype=tf.bool)),
                         tf.logical_not(same_pair))
  if known_positives is not None:
    known = tf.cast(known_positives, tf.bool)
    own_item = tf.equal(positives, items)[tf.newaxis, :]
    known = tf.concat([known, tf.logical_and(known, own_item)], axis=1)
    valid = tf.logical_and(valid, tf.logical_not(tf.tile(known, [2, 1])))
  return info_nce(views, views, positive_indices, temperature,
                  extra_key_mask=valid)
