"""InfoNCE: the generic contrastive loss every MIC channel is built from.

Two entry points:

* :func:`info_nce` scores queries against an arbitrary set of keys, one
  positive key per query, with accidental-hit and arbitrary masking.
* :func:`nt_xent` is SimCLR's normalised-temperature cross-entropy over the 2B
  views of a batch of B instances seen through two perturbations.

Denominator convention. The paper's equations (4)-(6) write the denominator as
a sum over ``j != i``. We follow SimCLR [Chen et al. 2020], which the paper
says it follows: the index excluded is the anchor *itself* (self-similarity),
while the positive stays in the denominator. This is the standard InfoNCE /
softmax cross-entropy, it is bounded below by 0, and a row with no valid
negative gives loss 0 (not NaN and not ``-inf``).
"""

from typing import Optional

import tensorflow as tf

from mic_tf.losses import _common


def info_nce(queries: tf.Tensor,
             keys: tf.Tensor,
             positive_indices: tf.Tensor,
             temperature: _common.Temperature = 0.1,
             query_ids: Optional[tf.Tensor] = None,
             key_ids: Optional[tf.Tensor] = None,
             extra_key_mask: Optional[tf.Tensor] = None,
             weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Mean InfoNCE loss of queries against keys with cosine similarity.

  For query ``q_i`` the positive is ``keys[positive_indices[i]]``; the
  negatives are all other keys except

  * accidental hits: keys with ``key_ids[j] == query_ids[i]`` (for example an
    in-batch item that is the same item as the query's own positive), and
  * keys with ``extra_key_mask[i, j] == False`` (for example the anchor itself
    or other views of the same example).

  The positive key is never masked. ``loss_i = logsumexp_{j valid}(l_ij) -
  l_i,pos`` with ``l_ij = cos(q_i, k_j) / temperature``.

  Args:
    queries: (Bq, d) float representations (normalised inside; float16 is cast
      to float32).
    keys: (Bk, d) float representations.
    positive_indices: (Bq,) int index into ``keys`` of each query's positive.
    temperature: Softmax temperature tau (> 0); may be a tensor or variable.
    query_ids: Optional (Bq,) int id of each query's own instance.
    key_ids: Optional (Bk,) int id of each key; needed iff ``query_ids`` is.
    extra_key_mask: Optional (Bq, Bk) bool; False removes a key from the
      query's denominator.
    weights: Optional (Bq,) per-query weights; the result is then
      ``sum(w_i * loss_i) / sum(w_i)`` (0 if all weights are 0).

  Returns:
    A float32 scalar: the (weighted) mean loss over queries.

  Raises:
    ValueError: If only one of ``query_ids``/``key_ids`` is given, or the
      representations are not floating (B, d) tensors of equal dimension.
  """
  if (query_ids is None) != (key_ids is None):
    raise ValueError(
        "Pass both `query_ids` and `key_ids` (to mask accidental hits) or "
        "neither; got only one of them.")
  logits = _common.cosine_logits(queries, keys, temperature)
  valid = None
  if query_ids is not None:
    valid = tf.logical_not(_common.same_id_mask(query_ids, key_ids))
  if extra_key_mask is not None:
    extra_key_mask = tf.cast(extra_key_mask, tf.bool)
    valid = extra_key_mask if valid is None else tf.logical_and(
        valid, extra_key_mask)
  per_query = _common.softmax_cross_entropy_rows(logits, positive_indices,
                                                 valid)
  return _common.weighted_mean(per_query, weights)


def nt_xent(view_a: tf.Tensor,
            view_b: tf.Tensor,
            ids: Optional[tf.Tensor] = None,
            temperature: _common.Temperature = 0.1,
            known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
  """SimCLR's NT-Xent loss over the 2B views of B instances.

  The two views are stacked into a set of 2B representations. Each view's
  positive is the other view of the same instance; its negatives are the
  2(B - 1) views of the other instances. Self-similarity is excluded, and if
  ``ids`` are given, views of *other* instances that share the anchor's id
  (e.g. the same user appearing twice in a batch) are masked as accidental
  hits.

  Args:
    view_a: (B, d) representations of the first perturbed view.
    view_b: (B, d) representations of the second perturbed view, row-aligned
      with ``view_a``.
    ids: Optional (B,) int instance ids for accidental-hit masking.
    temperature: Softmax temperature tau (> 0).
    known_positives: Optional (B, B) bool; True where instance j must not
      be a negative of instance i (both of its views are dropped from
      instance i's denominators).

  Returns:
    A float32 scalar: mean loss over all 2B anchors.

  Raises:
    ValueError: If the two views have statically different shapes.
  """
  view_a = _common.as_float32(view_a, "view_a")
  view_b = _common.as_float32(view_b, "view_b")
  if not view_a.shape.is_compatible_with(view_b.shape):
    raise ValueError(
        f"`view_a` and `view_b` must have the same shape, got {view_a.shape} "
        f"and {view_b.shape}. Both views must come from the same batch.")
  batch_size = tf.shape(view_a)[0]
  views = tf.concat([view_a, view_b], axis=0)
  positive_indices = tf.concat(
      [tf.range(batch_size, 2 * batch_size), tf.range(batch_size)], axis=0)
  not_self = tf.logical_not(tf.eye(2 * batch_size, dtype=tf.bool))
  if known_positives is not None:
    known = tf.tile(tf.cast(known_positives, tf.bool), [2, 2])
    not_self = tf.logical_and(not_self, tf.logical_not(known))
  view_ids = None
  if ids is not None:
    ids = tf.reshape(ids, [-1])
    view_ids = tf.concat([ids, ids], axis=0)
  return info_nce(views, views, positive_indices, temperature,
                  query_ids=view_ids, key_ids=view_ids,
                  extra_key_mask=not_self)
