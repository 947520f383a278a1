"""The teacher term: the U2I query learns the U2U channel's list (beyond the
paper).

Row ``i`` of a batch carries one teacher item ``t_i``: an item drawn from the
list the U2U channel serves row ``i``'s (training) user under the current
weights (``mic_tf.distill``). The term is the in-batch sampled softmax of
``mic_tf.losses.basic.softmax_loss`` with ``t_i`` as row ``i``'s positive and
the other rows' teacher items as negatives::

  L_distill = mean over rows i with a teacher of
              -log( exp(l_ii) / sum_{j valid} exp(l_ij) ),
  l_ij = cos(user_i, item(t_j)) / tau

A column ``j`` is not a negative of row ``i`` when ``t_j`` is a known
positive of row ``i`` (same item id, same user, or in row ``i``'s history:
``known_positives``), or when row ``j`` has no teacher (its slot holds a
placeholder item). Rows without a teacher (users outside the training pool,
or before the first refresh) add nothing; the mean is over the rows that
have one (0 when none has).

Why one sampled item and hard labels, not soft targets over the whole list:
a soft target needs every listed item through the item tower at every step
(``B x distill_items`` items, 50 x the basic loss's item pass), where one
draw per row costs one more item pass of ``B`` items, and over the epochs
the draws cover the list.
"""

from typing import Optional

import tensorflow as tf

from mic_tf.losses.basic import softmax_loss


def teacher_loss(user: tf.Tensor, teacher_item: tf.Tensor,
                 teacher_ids: tf.Tensor, has_teacher: tf.Tensor,
                 temperature: float = 0.1,
                 known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
  """The teacher term of a batch (module docstring).

  Args:
    user: ``(B, d)`` users in the shared space.
    teacher_item: ``(B, d)`` their teacher items in the shared space.
    teacher_ids: ``(B,)`` int ids of the teacher items.
    has_teacher: ``(B,)`` bool, False for rows without a teacher.
    temperature: Temperature of the cosine logits.
    known_positives: Optional ``(B, B)`` bool, True where ``teacher_ids[j]``
      is a known positive of row ``i``.

  Returns:
    A float32 scalar.
  """
  has = tf.cast(tf.reshape(has_teacher, [-1]), tf.bool)
  # A pair marked "known positive" leaves row i's denominator; marking
  # every column of a row without a teacher leaves it its own (placeholder)
  # positive only: loss 0, no gradient.
  not_negative = tf.logical_not(tf.logical_and(has[:, None], has[None, :]))
  if known_positives is not None:
    not_negative = tf.logical_or(not_negative,
                                 tf.cast(known_positives, tf.bool))
  mean_all = softmax_loss(user, teacher_item, teacher_ids,
                          temperature=temperature,
                          known_positives=not_negative)
  rows = tf.cast(tf.size(has), tf.float32)
  with_teacher = tf.reduce_sum(tf.cast(has, tf.float32))
  return tf.math.divide_no_nan(mean_all * rows, with_teacher)
