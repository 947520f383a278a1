"""Contrastive terms with mined positives and hard negatives (paper 3.3.2).

Notation, for one direction of one channel. Queries ``q_r`` (r = 1..Q) are the
perturbed views of the batch's anchors; query ``r`` belongs to example
``e(r)`` and carries the *exclusion id* ``y_r`` (the id a key must not have
to be a negative: the user for U2U and item->user, the item for I2I, the
target item for user->item). In-batch keys ``k_j`` have ids ``kappa_j``, a
positive ``k_{p(r)}`` and a structural mask ``S_rj`` (not the query itself /
not another view of the same example), exactly as in ``mic_tf.losses``.
``s(a, b) = cos(a, b) / tau``.

Mined samples, read from the memory bank (stop-gradient):

* ``m_e`` (id ``mu_e``, valid ``omega_e``): example e's mined positive, drawn
  uniformly from the k nearest neighbours of its anchor in the bank (the
  anchor itself excluded); ``omega_e`` is False before the first refresh or
  for an anchor outside the pool.
* ``h_l`` (id ``eta_l``, cluster ``gamma_l``, valid ``v_l``): hard negatives,
  ``n_hard`` per example, drawn from clusters other than the anchor's. All
  ``B * n_hard`` of them are keys of every query, usable by query ``r`` iff
  ``H_rl = v_l and gamma_l != c_r and eta_l != y_r`` (``c_r``: the cluster of
  query r's anchor), i.e. a hard negative is never in the query's own cluster
  and never the query's own instance.

Augmentation term with hard negatives (with ``n_hard = 0`` this is exactly
the MIC term of ``mic_tf.losses``)::

  L_aug = mean_r [ LSE( {s(q_r, k_p(r))}
                        U {s(q_r, k_j) : S_rj and kappa_j != y_r}
                        U {s(q_r, h_l) : H_rl} ) - s(q_r, k_p(r)) ]

Nearest-neighbour term (NNCLR-style: the mined neighbour is the positive;
every key sharing the anchor's id or the neighbour's id is removed from the
denominator, so neither the anchor nor its neighbour is ever a negative)::

  L_nn = sum_r omega_e(r) l_r / sum_r omega_e(r)
  l_r  = LSE( {s(q_r, m_e(r))}
              U {s(q_r, m_e') : e' != e(r), omega_e', mu_e' not in X_r}
              U {s(q_r, k_j) : S_rj and kappa_j not in X_r}
              U {s(q_r, h_l) : H_rl and eta_l != mu_e(r)} ) - s(q_r, m_e(r))
  X_r  = {y_r, mu_e(r)}

LSE is log-sum-exp. Each is a mean (weighted for ``L_nn``) of
``info_nce`` rows, so both have the scale of the MIC terms.
"""

from typing import Mapping, Optional, Tuple

import tensorflow as tf

from mic_tf.losses.info_nce import info_nce


def _ids(x: tf.Tensor) -> tf.Tensor:
  return tf.cast(tf.reshape(x, [-1]), tf.int64)


def hard_negative_mask(query_ids: tf.Tensor, query_clusters: tf.Tensor,
                       query_ok: tf.Tensor, hard: Mapping[str, tf.Tensor]
                       ) -> tf.Tensor:
  """``H_rl``: which hard negatives each query may use.

  Args:
    query_ids: ``(Q,)`` exclusion id of each query.
    query_clusters: ``(Q,)`` cluster of each query's anchor.
    query_ok: ``(Q,)`` bool, False for queries whose anchor is not in the
      bank (they get no hard negative).
    hard: ``sample_hard_negatives`` output (``ids``, ``clusters``,
      ``valid``; ``(H,)`` each).

  Returns:
    ``(Q, H)`` bool.
  """
  other_cluster = tf.not_equal(
      tf.cast(query_clusters, tf.int32)[:, None],
      tf.cast(hard["clusters"], tf.int32)[None, :])
  other_id = tf.not_equal(_ids(query_ids)[:, None], _ids(hard["ids"])[None, :])
  mask = tf.logical_and(other_cluster, other_id)
  mask = tf.logical_and(mask, hard["valid"][None, :])
  return tf.logical_and(mask, query_ok[:, None])


def augmented_loss(queries: tf.Tensor, keys: tf.Tensor,
                   positive_indices: tf.Tensor, query_ids: tf.Tensor,
                   key_ids: tf.Tensor, key_mask: tf.Tensor,
                   temperature: float,
                   hard: Optional[Mapping[str, tf.Tensor]] = None,
                   hard_mask: Optional[tf.Tensor] = None) -> tf.Tensor:
  """``L_aug``: the MIC term with hard negatives appended as keys.

  Args:
    queries: ``(Q, d)`` query views.
    keys: ``(K, d)`` in-batch keys.
    positive_indices: ``(Q,)`` column of each query's positive in ``keys``.
    query_ids: ``(Q,)`` exclusion ids.
    key_ids: ``(K,)`` key ids.
    key_mask: ``(Q, K)`` structural mask ``S``.
    temperature: tau.
    hard: Optional hard negatives (``vectors`` ``(H, d)``).
    hard_mask: ``(Q, H)`` ``H_rl``; needed with ``hard``.

  Returns:
    Scalar mean over queries.
  """
  mask = tf.logical_and(
      key_mask, tf.not_equal(_ids(query_ids)[:, None], _ids(key_ids)[None, :]))
  if hard is not None:
    keys = tf.concat([keys, tf.cast(hard["vectors"], keys.dtype)], axis=0)
    mask = tf.concat([mask, hard_mask], axis=1)
  return info_nce(queries, keys, positive_indices, temperature,
                  extra_key_mask=mask)


def neighbour_mask(query_examples: tf.Tensor, query_ids: tf.Tensor,
                   mined_ids: tf.Tensor, mined_ok: tf.Tensor,
                   key_ids: tf.Tensor, key_mask: tf.Tensor,
                   hard: Optional[Mapping[str, tf.Tensor]] = None,
                   hard_mask: Optional[tf.Tensor] = None) -> tf.Tensor:
  """The key mask of ``L_nn`` over ``[mined | in-batch | hard]`` columns.

  Args:
    query_examples: ``(Q,)`` example of each query, in ``[0, B)``.
    query_ids: ``(Q,)`` exclusion ids ``y_r``.
    mined_ids: ``(B,)`` ids ``mu_e`` of the mined positives.
    mined_ok: ``(B,)`` bool ``omega_e``.
    key_ids: ``(K,)`` ids of the in-batch keys.
    key_mask: ``(Q, K)`` structural mask.
    hard: Optional hard negatives.
    hard_mask: ``(Q, H)`` ``H_rl``.

  Returns:
    ``(Q, B + K [+ H])`` bool; False removes a key from the denominator (the
    positive column ``e(r)`` is kept by ``info_nce`` regardless).
  """
  qid = _ids(query_ids)[:, None]
  own_mined = tf.gather(_ids(mined_ids), query_examples)[:, None]
  mined = _ids(mined_ids)[None, :]
  mined_block = tf.logical_and(tf.not_equal(mined, qid),
                               tf.not_equal(mined, own_mined))
  mined_block = tf.logical_and(mined_block, mined_ok[None, :])
  kid = _ids(key_ids)[None, :]
  key_block = tf.logical_and(key_mask, tf.logical_and(
      tf.not_equal(kid, qid), tf.not_equal(kid, own_mined)))
  blocks = [mined_block, key_block]
  if hard is not None:
    blocks.append(tf.logical_and(
        hard_mask, tf.not_equal(_ids(hard["ids"])[None, :], own_mined)))
  return tf.concat(blocks, axis=1)


def neighbour_loss(queries: tf.Tensor, query_examples: tf.Tensor,
                   query_ids: tf.Tensor, mined: tf.Tensor,
                   mined_ids: tf.Tensor, mined_ok: tf.Tensor,
                   keys: tf.Tensor, key_ids: tf.Tensor, key_mask: tf.Tensor,
                   temperature: float,
                   hard: Optional[Mapping[str, tf.Tensor]] = None,
                   hard_mask: Optional[tf.Tensor] = None) -> tf.Tensor:
  """``L_nn``: InfoNCE with each anchor's mined neighbour as the positive.

  Args:
    queries: ``(Q, d)`` query views.
    query_examples: ``(Q,)`` example of each query.
    query_ids: ``(Q,)`` exclusion ids.
    mined: ``(B, d)`` mined positives (stop-gradient bank vectors).
    mined_ids: ``(B,)`` their ids.
    mined_ok: ``(B,)`` bool, whether each example has a mined positive.
    keys: ``(K, d)`` in-batch keys.
    key_ids: ``(K,)`` their ids.
    key_mask: ``(Q, K)`` structural mask.
    temperature: tau.
    hard: Optional hard negatives.
    hard_mask: ``(Q, H)``.

  Returns:
    Scalar, weighted by ``omega``; 0 when no example has a mined positive.
  """
  mask = neighbour_mask(query_examples, query_ids, mined_ids, mined_ok,
                        key_ids, key_mask, hard, hard_mask)
  all_keys = [tf.cast(mined, queries.dtype), keys]
  if hard is not None:
    all_keys.append(tf.cast(hard["vectors"], queries.dtype))
  weights = tf.cast(tf.gather(mined_ok, query_examples), tf.float32)
  return info_nce(queries, tf.concat(all_keys, axis=0), query_examples,
                  temperature, extra_key_mask=mask, weights=weights)


def self_channel_layout(views: Tuple[tf.Tensor, tf.Tensor], ids: tf.Tensor
                        ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor,
                                   tf.Tensor]:
  """Queries/keys of a U2U or I2I term (SimCLR NT-Xent layout).

  Args:
    views: Two ``(B, d)`` views.
    ids: ``(B,)`` instance ids.

  Returns:
    ``(stacked, examples, stacked_ids, positives, not_self)``: the ``2B``
    views (queries = keys), their example, their id, each one's positive
    (the other view) and the ``(2B, 2B)`` not-self mask.
  """
  b = tf.shape(views[0])[0]
  stacked = tf.concat(list(views), axis=0)
  examples = tf.tile(tf.range(b), [2])
  positives = tf.concat([tf.range(b, 2 * b), tf.range(b)], axis=0)
  not_self = tf.logical_not(tf.eye(2 * b, dtype=tf.bool))
  return stacked, examples, tf.tile(tf.reshape(ids, [-1]), [2]), positives, (
      not_self)
