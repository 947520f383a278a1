"""Exact brute-force top-k retrieval in TensorFlow, and the ComiRec evaluation.

``exact_top_k`` scores every user query against every item embedding with a
dot product (normalise both sides first for cosine) and keeps the ``k`` best
items, batch by batch inside a ``tf.function``; it runs on CPU or GPU.

Multi-interest queries ``(U, K, d)`` follow ComiRec's evaluation: each
interest retrieves its own top-k, the ``K * k`` candidates are merged by score,
duplicates keep their best score, and the ``k`` best distinct items are
returned. ``exact_top_k`` computes this as the top-k of each item's best score
over the interests, which returns exactly the same list (an item in the merged
top-k is always in the top-k of its best interest, and an item whose best
interest did not retrieve it is beaten by ``k`` items that did). When the
per-interest candidates come from elsewhere (an approximate index),
``merge_interest_candidates`` performs the literal merge.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import metrics

_NEG_INF = float("-inf")


def _check_k(k: int) -> int:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}.")
  return int(k)


def _as_queries(queries, dim: int) -> np.ndarray:
  """Returns queries as float32 ``(U, K, d)`` (``K = 1`` for single vectors)."""
  queries = np.asarray(queries, dtype=np.float32)
  if queries.ndim == 2:
    queries = queries[:, None, :]
  if queries.ndim != 3:
    raise ValueError(
        f"queries must have shape (num_users, d) or (num_users, K, d), got "
        f"{queries.shape}.")
  if queries.shape[-1] != dim:
    raise ValueError(
        f"queries have dimension {queries.shape[-1]} but item embeddings have "
        f"{dim}; both towers must output the same embedding size.")
  if queries.shape[1] == 0:
    raise ValueError("queries have 0 interests per user; need at least one.")
  return queries


def _retrievable_mask(num_items: int,
                      valid_item_mask: Optional[np.ndarray]) -> np.ndarray:
  """Boolean ``(num_items,)``: which items may be returned (never item 0)."""
  if valid_item_mask is None:
    mask = np.ones(num_items, dtype=bool)
  else:
    mask = np.asarray(valid_item_mask)
    if mask.shape != (num_items,) or mask.dtype != bool:
      raise ValueError(
          f"valid_item_mask must be a bool array of shape ({num_items},), got "
          f"dtype {mask.dtype} and shape {mask.shape}.")
    mask = mask.copy()
  mask[0] = False
  return mask


def _flatten_exclude(exclude: Optional[Sequence[np.ndarray]], num_users: int,
                     num_items: int) -> Tuple[np.ndarray, np.ndarray]:
  """Returns ``(values, row_splits)``: a ragged (user -> excluded ids) table."""
  if exclude is None:
    return np.zeros(0, np.int64), np.zeros(num_users + 1, np.int64)
  if len(exclude) != num_users:
    raise ValueError(
        f"exclude has {len(exclude)} entries but there are {num_users} "
        "queries; pass one (possibly empty) id array per user.")
  arrays = [np.asarray(e, dtype=np.int64).reshape(-1) for e in exclude]
  lengths = np.array([a.size for a in arrays], dtype=np.int64)
  values = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
  if values.size and (values.min() < 0 or values.max() >= num_items):
    raise ValueError(
        f"exclude holds ids outside [0, {num_items}); exclusion lists must "
        "use the same item ids as the item embedding rows.")
  return values, np.concatenate([[0], np.cumsum(lengths)])


@tf.function(reduce_retracing=True)
def _batch_top_k(queries: tf.Tensor, items: tf.Tensor, retrievable: tf.Tensor,
                 exclude_index: tf.Tensor,
                 k: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Top-k of one batch.

  Args:
    queries: float32 ``(B, K, d)``.
    items: float32 ``(num_items, d)``.
    retrievable: bool ``(num_items,)``.
    exclude_index: int64 ``(n, 2)`` of ``(row in batch, item id)`` to exclude.
    k: int32 scalar.

  Returns:
    ``(ids, scores)`` of shape ``(B, k)``; excluded or masked slots have score
    ``-inf`` and id ``-1``.
  """
  batch = tf.shape(queries)[0]
  neg_inf = tf.constant(_NEG_INF, tf.float32)

  def best_of(best, interest):  # interest: (B, d)
    return tf.maximum(best, tf.matmul(interest, items, transpose_b=True))

  # Best score of each item over the interests, one (B, num_items) at a time.
  scores = tf.foldl(
      best_of, tf.transpose(queries, [1, 0, 2]),
      initializer=tf.fill([batch, tf.shape(items)[0]], neg_inf))
  scores = tf.where(retrievable[tf.newaxis, :], scores, neg_inf)
  scores = tf.tensor_scatter_nd_update(
      scores, exclude_index,
      tf.fill([tf.shape(exclude_index)[0]], neg_inf))
  top_scores, top_ids = tf.math.top_k(scores, k=k, sorted=True)
  top_ids = tf.where(top_scores > neg_inf, tf.cast(top_ids, tf.int64),
                     tf.constant(-1, tf.int64))
  return top_ids, top_scores


def exact_top_k(
    queries: np.ndarray,
    item_embeddings: np.ndarray,
    k: int,
    exclude: Optional[Sequence[np.ndarray]] = None,
    batch_size: int = 1024,
    valid_item_mask: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, np.ndarray]:
  """Exact maximum-inner-product top-k over all items.

  Args:
    queries: ``(U, d)`` user vectors, or ``(U, K, d)`` multi-interest vectors
      (merged as in ComiRec: an item's score is its best interest's score).
    item_embeddings: ``(num_items, d)``; row 0 is the padding item and is never
      returned.
    k: Number of items per user; at most the number of retrievable items.
    exclude: Optional ``U`` int arrays of item ids never to return for that
      user (e.g. the history); ids must lie in ``[0, num_items)``.
    batch_size: Users per batch (memory is about ``2 * batch_size *
      num_items`` floats).
    valid_item_mask: Optional bool ``(num_items,)``; ``False`` items are never
      returned (row 0 is always excluded).

  Returns:
    ``(ids, scores)``: int64 and float32 arrays of shape ``(U, k)``, best
    first. If exclusion leaves a user fewer than ``k`` items, the remaining
    slots hold id ``-1`` and score ``-inf``.

  Raises:
    ValueError: On shape mismatches, ``k`` larger than the number of
      retrievable items, or exclusion ids out of range.
  """
  k = _check_k(k)
  if isinstance(batch_size, bool) or int(batch_size) < 1:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
  items = np.asarray(item_embeddings, dtype=np.float32)
  if items.ndim != 2:
    raise ValueError(
        f"item_embeddings must be 2-D (num_items, d), got {items.shape}.")
  num_items, dim = items.shape
  queries = _as_queries(queries, dim)
  num_users = queries.shape[0]
  retrievable = _retrievable_mask(num_items, valid_item_mask)
  available = int(retrievable.sum())
  if k > available:
    raise ValueError(
        f"k={k} exceeds the {available} retrievable items (num_items="
        f"{num_items} minus padding row 0 and masked items); lower k or the "
        "metric cutoffs.")
  values, splits = _flatten_exclude(exclude, num_users, num_items)

  items_t = tf.convert_to_tensor(items)
  retrievable_t = tf.convert_to_tensor(retrievable)
  k_t = tf.constant(k, tf.int32)
  all_ids = np.empty((num_users, k), np.int64)
  all_scores = np.empty((num_users, k), np.float32)
  for start in range(0, num_users, int(batch_size)):
    stop = min(start + int(batch_size), num_users)
    lo, hi = splits[start], splits[stop]
    rows = np.repeat(np.arange(stop - start, dtype=np.int64),
                     np.diff(splits[start:stop + 1]))
    exclude_index = np.stack([rows, values[lo:hi]], axis=1)
    ids, scores = _batch_top_k(
        tf.convert_to_tensor(queries[start:stop]), items_t, retrievable_t,
        tf.convert_to_tensor(exclude_index, tf.int64), k_t)
    all_ids[start:stop] = ids.numpy()
    all_scores[start:stop] = scores.numpy()
  return all_ids, all_scores


@tf.function(reduce_retracing=True)
def _merge(ids: tf.Tensor, scores: tf.Tensor,
           k: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Dedupes ``(B, C)`` candidates keeping each id's best score; top-k."""
  neg_inf = tf.constant(_NEG_INF, tf.float32)
  # Candidates in descending score order (stable, so ties keep input order).
  by_score = tf.argsort(scores, axis=1, direction="DESCENDING", stable=True)
  ids = tf.gather(ids, by_score, batch_dims=1)
  scores = tf.gather(scores, by_score, batch_dims=1)
  # Sorting the ranked list by id (stable) puts each id's best copy first.
  by_id = tf.argsort(ids, axis=1, stable=True)
  sorted_ids = tf.gather(ids, by_id, batch_dims=1)
  first = tf.concat([tf.ones_like(sorted_ids[:, :1], tf.bool),
                     sorted_ids[:, 1:] != sorted_ids[:, :-1]], axis=1)
  # Back to score order: inverse permutation of by_id.
  first = tf.gather(first, tf.argsort(by_id, axis=1), batch_dims=1)
  keep = first & (ids > 0)
  scores = tf.where(keep, scores, neg_inf)
  top_scores, position = tf.math.top_k(scores, k=k, sorted=True)
  top_ids = tf.gather(ids, position, batch_dims=1)
  top_ids = tf.where(top_scores > neg_inf, top_ids, tf.constant(-1, tf.int64))
  return top_ids, top_scores


def merge_interest_candidates(
    ids: np.ndarray, scores: np.ndarray,
    k: int) -> Tuple[np.ndarray, np.ndarray]:
  """ComiRec's multi-interest merge of per-interest retrieval results.

  All ``K * k'`` candidates of a user are ranked by score, an item retrieved by
  several interests keeps only its best score, padding ids (``<= 0``) are
  dropped, and the ``k`` best distinct items are returned.

  Args:
    ids: ``(U, K, k')`` (or already flattened ``(U, C)``) integer candidate ids.
    scores: Float scores of the same shape.
    k: Number of items to return per user.

  Returns:
    ``(ids, scores)``: int64 / float32 ``(U, k)``; slots without a candidate
    hold id ``-1`` and score ``-inf``.

  Raises:
    ValueError: If the shapes differ or ``k`` exceeds the candidate count.
  """
  k = _check_k(k)
  ids = np.asarray(ids)
  scores = np.asarray(scores, dtype=np.float32)
  if ids.shape != scores.shape or ids.ndim not in (2, 3):
    raise ValueError(
        f"ids {ids.shape} and scores {scores.shape} must have the same shape "
        "(U, K, k') or (U, C).")
  ids = ids.reshape(ids.shape[0], -1).astype(np.int64)
  scores = scores.reshape(scores.shape[0], -1)
  if k > ids.shape[1]:
    raise ValueError(
        f"k={k} exceeds the {ids.shape[1]} candidates per user; retrieve more "
        "candidates per interest.")
  top_ids, top_scores = _merge(tf.convert_to_tensor(ids),
                               tf.convert_to_tensor(scores),
                               tf.constant(k, tf.int32))
  return top_ids.numpy(), top_scores.numpy()


def evaluate_retrieval(
    retrieved_ids: np.ndarray,
    targets: Sequence[np.ndarray],
    cutoffs: Sequence[int] = (20, 50),
    **metric_options) -> Dict[str, float]:
  """Metrics (percent) of already retrieved lists.

  Args:
    retrieved_ids: ``(U, K)`` item ids, best first; ``<= 0`` is padding.
    targets: ``U`` non-empty arrays of ground-truth item ids.
    cutoffs: The ``N`` values.
    **metric_options: ``target_mode`` / ``idcg`` of
      ``mic_tf.metrics.per_user_metrics``.

  Returns:
    See ``mic_tf.metrics.retrieval_metrics``.
  """
  return metrics.retrieval_metrics(retrieved_ids, targets, cutoffs,
                                   **metric_options)


def evaluate_embeddings(
    user_queries: np.ndarray,
    item_embeddings: np.ndarray,
    histories: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    cutoffs: Sequence[int] = (20, 50),
    exclude_history: bool = True,
    batch_size: int = 1024,
    valid_item_mask: Optional[np.ndarray] = None,
    **metric_options) -> Dict[str, float]:
  """Retrieves the top ``max(cutoffs)`` items exactly and scores them.

  Args:
    user_queries: ``(U, d)`` or ``(U, K, d)`` user vectors.
    item_embeddings: ``(num_items, d)``; row 0 is padding.
    histories: ``U`` arrays of each user's history item ids.
    targets: ``U`` non-empty arrays of ground-truth item ids.
    cutoffs: The ``N`` values.
    exclude_history: Never retrieve a user's history items. Note that
      ComiRec's own evaluation does not exclude them.
    batch_size: Users per retrieval batch.
    valid_item_mask: See ``exact_top_k``.
    **metric_options: ``target_mode`` / ``idcg`` of
      ``mic_tf.metrics.per_user_metrics``.

  Returns:
    See ``mic_tf.metrics.retrieval_metrics``.

  Raises:
    ValueError: See ``exact_top_k`` and ``mic_tf.metrics.per_user_metrics``.
  """
  if len(histories) != len(targets):
    raise ValueError(
        f"histories ({len(histories)}) and targets ({len(targets)}) must have "
        "one entry per user.")
  k = max(metrics.check_cutoffs(cutoffs))
  ids, _ = exact_top_k(user_queries, item_embeddings, k,
                       exclude=histories if exclude_history else None,
                       batch_size=batch_size, valid_item_mask=valid_item_mask)
  return metrics.retrieval_metrics(ids, targets, cutoffs, **metric_options)
