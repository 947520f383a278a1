"""The basic user-item losses (eq. 7 of the MIC paper) on in-batch negatives.

Both losses score the B x B matrix of cosine similarities between the users
and the target items of a batch, divided by a temperature. The diagonal holds
the observed (positive) pairs; off-diagonal pairs are negatives, except
accidental hits: pairs whose item has the same id as the row's own target item.

The temperature of the basic loss can differ from the contrastive tau; it may
also be a trainable scalar (e.g. ``tf.exp(log_temperature)``).
"""

from typing import Optional

import tensorflow as tf

from mic_tf.losses import _common


def _negative_mask(logits: tf.Tensor,
                   item_ids: Optional[tf.Tensor],
                   known_positives: Optional[tf.Tensor] = None
                   ) -> tf.Tensor:
  """(B, B) bool: off-diagonal pairs that are neither accidental hits nor
  known positives (see ``mic_tf.losses.false_negatives``)."""
  batch_size = tf.shape(logits)[0]
  valid = tf.logical_not(tf.eye(batch_size, dtype=tf.bool))
  if item_ids is not None:
    valid = tf.logical_and(
        valid, tf.logical_not(_common.same_id_mask(item_ids, item_ids)))
  if known_positives is not None:
    valid = tf.logical_and(
        valid, tf.logical_not(tf.cast(known_positives, tf.bool)))
  return valid


def _check_paired(logits: tf.Tensor) -> None:
  if (logits.shape[0] is not None and logits.shape[1] is not None and
      logits.shape[0] != logits.shape[1]):
    raise ValueError(
        f"`user` and `item` must hold the same number of rows (one target item "
        f"per user), got {logits.shape[0]} users and {logits.shape[1]} items.")


def logistic_loss(user: tf.Tensor,
                  item: tf.Tensor,
                  item_ids: Optional[tf.Tensor],
                  temperature: _common.Temperature = 0.1,
                  known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Class-balanced logistic (binary cross-entropy) loss, eq. (7).

  With ``l_ij = cos(user_i, item_j) / temperature``::

    loss = mean_i softplus(-l_ii) + mean_{(i, j) valid negative} softplus(l_ij)

  i.e. ``-log sigmoid`` on the B positives plus ``-log(1 - sigmoid)`` on the
  valid negatives, each averaged separately. Why balanced: a batch holds B
  positives but up to B(B - 1) negatives. A plain mean over all B^2 pairs
  would give the positives a weight of about 1/B (0.1% at the paper's batch
  size of 1024), and the cheapest solution would be to push every pair apart.
  Averaging each class separately gives positives and negatives equal total
  weight, keeps the loss scale independent of B, and reduces to eq. (7)'s
  per-example mean. If no valid negative exists the negative term is 0.

  Args:
    user: (B, d) user representations.
    item: (B, d) target-item representations; row i is user i's positive.
    item_ids: (B,) int target-item ids for accidental-hit masking, or None.
    temperature: Temperature (> 0) of the basic loss; may be a tensor.
    known_positives: Optional (B, B) bool; True pairs are not negatives
      (``mic_tf.losses.false_negatives.known_positives``).

  Returns:
    A float32 scalar.
  """
  logits = _common.cosine_logits(user, item, temperature, "user", "item")
  _check_paired(logits)
  positive_term = tf.reduce_mean(tf.nn.softplus(-tf.linalg.diag_part(logits)))
  valid = _negative_mask(logits, item_ids, known_positives)
  negative_sum = tf.reduce_sum(
      tf.where(valid, tf.nn.softplus(logits), tf.zeros_like(logits)))
  negative_term = tf.math.divide_no_nan(
      negative_sum, tf.reduce_sum(tf.cast(valid, tf.float32)))
  return positive_term + negative_term


def softmax_loss(user: tf.Tensor,
                 item: tf.Tensor,
                 item_ids: Optional[tf.Tensor],
                 temperature: _common.Temperature = 0.1,
                 log_q: Optional[tf.Tensor] = None,
                 known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
  """In-batch sampled softmax loss with optional logQ correction.

  Row i is a softmax over the B in-batch items with the diagonal as label.
  With ``log_q`` (Yi et al., RecSys 2019), ``log_q[j]`` -- the log probability
  that item j is sampled into a batch -- is subtracted from column j's logits
  (positive included), which corrects the popularity bias of in-batch
  negatives. Accidental hits are removed from the denominator.

  Args:
    user: (B, d) user representations.
    item: (B, d) target-item representations; row i is user i's positive.
    item_ids: (B,) int target-item ids for accidental-hit masking, or None.
    temperature: Temperature (> 0) of the basic loss; may be a tensor.
    log_q: Optional (B,) log sampling probability of each in-batch item.
    known_positives: Optional (B, B) bool; True pairs are not negatives.

  Returns:
    A float32 scalar: the mean over the B users.
  """
  logits = _common.cosine_logits(user, item, temperature, "user", "item")
  _check_paired(logits)
  if log_q is not None:
    log_q = _common.as_float32(log_q, "log_q")
    logits = logits - tf.reshape(log_q, [1, -1])
  valid = _negative_mask(logits, item_ids, known_positives)
  per_user = _common.softmax_cross_entropy_rows(
      logits, tf.range(tf.shape(logits)[0]), valid)
  return tf.reduce_mean(per_user)
