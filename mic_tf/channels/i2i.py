"""I2I channel: items similar to the user's recent items (paper 3.7).

The sources of user ``u`` are the ``M'`` most recent distinct items
``h_0, h_1, ..`` of its ``history`` feature (``h_0`` the latest). Each source
retrieves its ``M`` most similar other items ``j`` from the item-space index,
``s(h, j) = cos(y_h, y_j)`` (item-space vectors). Every retrieved item is a
candidate:

  r_p       = recency_decay ** p                 (p = 0 for the latest source)
  S(u, j)   = sum over sources h_p that retrieved j of
              r_p * s(h_p, j) ** gamma           (0 when s(h_p, j) <= 0)
  S^(u, j)  = S(u, j) / max_l S(u, l)            (0 when that maximum is 0)
  c(u, j)   = max_k cos(q_{u,k}, e_j)            (shared space, best interest)
  score     = alpha * S^(u, j) + (1 - alpha) * c(u, j)

Excluded items (the user's history) and padding are dropped and the ``k``
best remain. A user with an empty history has no source and gets an empty
list (all id -1). Sources come from the padded ``history`` feature, so
``M'`` is at most ``maxlen``.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from mic_tf.channels import ranking
from mic_tf.channels.queries import ChannelQueries
from mic_tf.indexes import Index

NAME = "i2i"


@dataclasses.dataclass(frozen=True)
class I2IConfig:
  """Settings of the I2I channel (formula in the module docstring).

  Attributes:
    num_history_items: ``M'``, most recent distinct history items used.
    num_similar_items: ``M``, similar items retrieved per source item.
    alpha: Weight of the normalised similar-item score, in ``[0, 1]``.
    gamma: Exponent sharpening item similarities (``>= 0``).
    recency_decay: ``r_p = recency_decay ** p``; 1 weighs sources equally.
  """
  num_history_items: int = 20
  num_similar_items: int = 20
  alpha: float = 0.5
  gamma: float = 1.0
  recency_decay: float = 1.0

  def __post_init__(self):
    for name in ("num_history_items", "num_similar_items"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
    if not 0.0 <= self.alpha <= 1.0:
      raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
    if self.gamma < 0:
      raise ValueError(f"gamma must be >= 0, got {self.gamma}.")
    if not 0.0 < self.recency_decay <= 1.0:
      raise ValueError(
          f"recency_decay must be in (0, 1], got {self.recency_decay}.")


def rank_i2i(source_items: tf.Tensor, neighbour_ids: tf.Tensor,
             neighbour_sims: tf.Tensor, user_queries: tf.Tensor,
             item_table: tf.Tensor, exclude: tf.Tensor, k: int,
             num_similar: int, alpha: float, gamma: float,
             recency_decay: float) -> Tuple[tf.Tensor, tf.Tensor]:
  """Scores the items similar to each user's sources (see module docstring).

  Args:
    source_items: ``(B, M')`` source item ids, most recent first, 0-padded.
    neighbour_ids: ``(B, M', C)`` items retrieved for each source, best
      first, ``<= 0`` for padding; ``C`` should be ``M + 1`` so that ``M``
      remain once the source itself is dropped.
    neighbour_sims: ``(B, M', C)`` their item-space cosines.
    user_queries: ``(B, K, d)`` unit shared-space user queries.
    item_table: ``(num_items, d)`` unit shared-space item vectors.
    exclude: ``(B, E)`` item ids never to return, 0-padded.
    k: Items per user.
    num_similar: ``M``: the first ``M`` retrieved items other than the
      source are used.
    alpha: Blend weight.
    gamma: Similarity exponent.
    recency_decay: Source weight base.

  Returns:
    ``(ids, scores)`` of shape ``(B, k)``.
  """
  batch = tf.shape(source_items)[0]
  sources = tf.cast(source_items, tf.int64)
  ids = tf.cast(neighbour_ids, tf.int64)
  sims = tf.cast(neighbour_sims, tf.float32)
  valid = (ids > 0) & (ids != sources[:, :, tf.newaxis]) & (
      sources[:, :, tf.newaxis] > 0)
  rank = tf.cumsum(tf.cast(valid, tf.int32), axis=2, exclusive=True)
  valid &= rank < num_similar
  position = tf.cast(tf.range(tf.shape(sources)[1]), tf.float32)
  recency = tf.pow(tf.cast(recency_decay, tf.float32), position)
  weights = recency[tf.newaxis, :, tf.newaxis] * tf.where(
      sims > 0, tf.pow(tf.maximum(sims, 0.0), gamma), 0.0)
  users = tf.broadcast_to(
      tf.range(tf.cast(batch, tf.int64))[:, tf.newaxis, tf.newaxis],
      tf.shape(ids, out_type=tf.int64))
  users, items, values = ranking.keep_pairs(
      tf.boolean_mask(users, valid), tf.boolean_mask(ids, valid),
      tf.boolean_mask(weights, valid), exclude)
  users, items, total = ranking.aggregate(users, items, values, reduce="sum")
  collaborative = ranking.normalize_by_row_max(users, total, batch)
  cosine = ranking.interest_cosine(users, items, user_queries, item_table)
  scores = ranking.blend(collaborative, cosine, alpha)
  return ranking.top_k_per_row(users, items, scores, batch, k)


_rank_i2i = tf.function(rank_i2i, reduce_retracing=True, autograph=False)
_last_distinct = tf.function(ranking.last_distinct_items,
                             reduce_retracing=True, autograph=False)


class I2IChannel:
  """I2I retrieval over an item-space index.

  Args:
    item_index: ``Index`` over item-space item vectors, ids = item ids
      (``ChannelIndexes.item_space``).
    item_space: ``(num_items, d_i)`` item-space vectors (the queries).
    item_shared: ``(num_items, d_s)`` shared-space item vectors.
    config: ``I2IConfig``.
    batch_size: Users per rank batch.
  """

  name = NAME

  def __init__(self, item_index: Index, item_space: np.ndarray,
               item_shared: np.ndarray, config: Optional[I2IConfig] = None,
               batch_size: int = 256):
    if batch_size < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}.")
    self.index = item_index
    self.item_space = np.asarray(item_space, np.float32)
    self.config = config or I2IConfig()
    self.batch_size = int(batch_size)
    self.item_shared = tf.constant(np.asarray(item_shared, np.float32))

  def with_config(self, config: I2IConfig) -> "I2IChannel":
    """The same channel (same index) with other settings."""
    return I2IChannel(self.index, self.item_space, self.item_shared.numpy(),
                      config, self.batch_size)

  def sources(self, queries: ChannelQueries,
              num_history_items: Optional[int] = None) -> np.ndarray:
    """``(n, M')`` most recent distinct history items, 0-padded."""
    m = num_history_items or self.config.num_history_items
    parts = [_last_distinct(tf.constant(queries.history[s:s + 4096]),
                            m).numpy()
             for s in range(0, queries.size, 4096)]
    return np.concatenate(parts) if parts else np.zeros((0, m), np.int64)

  def index_queries(self, queries: ChannelQueries) -> np.ndarray:
    """Item-space vectors of the distinct source items of all users."""
    items = np.unique(self.sources(queries))
    return self.item_space[items[items > 0]]

  def search(self, queries: ChannelQueries,
             num_history_items: Optional[int] = None,
             num_similar_items: Optional[int] = None
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sources and their similar items.

    Each distinct source item is searched once, for ``M + 1`` items (the
    source itself usually comes first and is dropped by ``rank``).

    Returns:
      ``(sources (n, M'), ids (n, M', M+1), sims (n, M', M+1))``; ids -1 for
      padding.
    """
    m = num_similar_items or self.config.num_similar_items
    sources = self.sources(queries, num_history_items)
    fetch = min(m + 1, self.index.size)
    distinct = np.unique(sources)
    distinct = distinct[distinct > 0]
    ids = np.full(sources.shape + (fetch,), ranking.PAD_ID, np.int64)
    sims = np.zeros(sources.shape + (fetch,), np.float32)
    if distinct.size:
      found_ids, found_sims = self.index.search(self.item_space[distinct],
                                                fetch)
      where = np.searchsorted(distinct, sources)
      where = np.minimum(where, distinct.size - 1)
      has = sources > 0
      ids[has] = found_ids[where[has]]
      sims[has] = np.where(found_ids[where[has]] >= 0,
                           found_sims[where[has]], 0.0)
    return sources, ids, sims

  def rank(self, queries: ChannelQueries, sources: np.ndarray,
           ids: np.ndarray, sims: np.ndarray, k: int,
           config: Optional[I2IConfig] = None
           ) -> Tuple[np.ndarray, np.ndarray]:
    """Scores already searched candidates (batched).

    Args:
      queries: The users.
      sources: ``(n, >= M')`` from ``search``.
      ids: ``(n, >= M', >= M + 1)`` from ``search``.
      sims: Their similarities.
      k: Items per user.
      config: Other settings than the channel's; uses the first ``M'``
        sources and the first ``M`` non-source items of each.

    Returns:
      ``(ids, scores)``, ``(n, k)``.
    """
    c = config or self.config
    sources = sources[:, :c.num_history_items]
    ids, sims = ids[:, :c.num_history_items], sims[:, :c.num_history_items]
    ids_out, scores_out = [], []
    start = 0
    for batch in queries.batches(self.batch_size):
      stop = start + batch.size
      top_ids, top_scores = _rank_i2i(
          tf.constant(sources[start:stop]), tf.constant(ids[start:stop]),
          tf.constant(sims[start:stop]), tf.constant(batch.shared),
          self.item_shared, tf.constant(batch.exclude), k,
          c.num_similar_items, tf.constant(c.alpha, tf.float32),
          tf.constant(c.gamma, tf.float32),
          tf.constant(c.recency_decay, tf.float32))
      ids_out.append(top_ids.numpy())
      scores_out.append(top_scores.numpy())
      start = stop
    return ranking.concat_results(ids_out, scores_out, k)

  def retrieve(self, queries: ChannelQueries,
               k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items of every user; see the module docstring."""
    sources, ids, sims = self.search(queries)
    return self.rank(queries, sources, ids, sims, k)
