"""I2I channel: items similar to the user's recent items (paper 3.7).

The sources of user ``u`` are the ``M'`` most recent distinct items
``h_0, h_1, ..`` of its ``history`` feature (``h_0`` the latest). Each source
retrieves its ``M`` most similar other items ``j`` from the item-space index,
``s(h, j) = cos(y_h, y_j)`` (item-space vectors, as in the paper; with
``I2IConfig.space = "shared"``, the shared user-item space's vectors
instead). Every retrieved item is a candidate:

  r_p       = recency_decay ** p                 (p = 0 for the latest source)
  S(u, j)   = sum over sources h_p that retrieved j of
              r_p * s(h_p, j) ** gamma           (0 when s(h_p, j) <= 0)
  S^(u, j)  = S(u, j) / max_l S(u, l)            (0 when that maximum is 0)
  c(u, j)   = max_k cos(q_{u,k}, e_j)            (shared space, best interest)
  score     = alpha * S^(u, j) + (1 - alpha) * c(u, j)

Excluded items (the user's history) and padding are dropped and the ``k``
best remain. Sources come from the padded ``history`` feature, so ``M'`` is
at most ``maxlen``.

A user whose history holds no known item (empty, or only ids the model never
saw) has no source: it gets the most popular items it may be served
(``ranking.popular_items``: the lowest ids, scores in ``(-2, -1)``, below
any I2I score), as U2U gives such a user its neighbours' popular items.
"""

import dataclasses
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf import names
from mic_tf.channels import ranking
from mic_tf.channels.base import Channel
from mic_tf.channels.base import make_channel_index
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.raw_ids import RawIds


@dataclasses.dataclass(frozen=True)
class I2IConfig:
  """Settings of the I2I channel (formula in the module docstring).

  Attributes:
    num_history_items: ``M'``, most recent distinct history items used.
    num_similar_items: ``M``, similar items retrieved per source item.
    alpha: Weight of the normalised similar-item score, in ``[0, 1]``.
    gamma: Exponent sharpening item similarities (``>= 0``).
    recency_decay: ``r_p = recency_decay ** p``; 1 weighs sources equally.
    space: Where item similarity ``s`` is measured: ``"item"`` (the item
      tower's own space, the paper's) or ``"shared"`` (the user-item space;
      MIC's II term does not act on it).
  """
  num_history_items: int = 20
  num_similar_items: int = 20
  alpha: float = 0.5
  gamma: float = 1.0
  recency_decay: float = 1.0
  space: str = names.ITEM_SPACE

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
    if self.space not in names.I2I_SPACES:
      raise ValueError(f"space must be one of {names.I2I_SPACES}, got "
                       f"{self.space!r}.")


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
  return ranking.rank_weighted_pairs(
      tf.boolean_mask(users, valid), tf.boolean_mask(ids, valid),
      tf.boolean_mask(weights, valid), exclude, user_queries, item_table,
      alpha, batch, k)


class I2IChannel(Channel):
  """I2I retrieval over an index of the item-space item vectors.

  Args:
    encoder: The model's ``UserEncoder``.
    item_space: ``(num_items, d)`` unit vectors whose cosine is the item
      similarity (the item-space vectors, or the shared-space ones when
      ``config.space`` is ``"shared"``); the sources' queries; row 0,
      padding, is never indexed.
    item_shared: ``(num_items, d_s)`` unit shared-space item vectors.
    config: ``I2IConfig``.
    k: Items per user.
    index: ``"exact"``, ``"scann"`` or ``"auto"``.
    scann_config: Optional ``ScannConfig`` of the item-space index.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).
  """

  NAME = names.I2I

  def __init__(self, encoder: UserEncoder, item_space: np.ndarray,
               item_shared: np.ndarray, config: Optional[I2IConfig] = None,
               k: int = 50, index: str = names.EXACT,
               scann_config: Optional[indexes.ScannConfig] = None,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or I2IConfig()
    item_space = np.asarray(item_space, np.float32)
    self.similar_items = make_channel_index(
        index, item_space[1:], np.arange(1, len(item_space)),
        self.config.num_similar_items + 1, scann_config,
        name="similar_items")
    self.item_space = tf.Variable(item_space, trainable=False,
                                  name="item_space")
    self.item_shared = tf.Variable(np.asarray(item_shared, np.float32),
                                   trainable=False, name="item_shared")

  @property
  def searchers(self):
    return [self.similar_items]

  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False, num_history_items: Optional[int] = None,
             num_similar_items: Optional[int] = None
             ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Sources and their similar items.

    Each distinct source of the batch searches ``M + 1`` items once (the
    source itself usually comes first; ``rank`` drops it).

    Args:
      users: The encoded users.
      exclude: Unused (exclusion happens in ``rank``).
      numpy: Search with the index's numpy path.
      num_history_items: Another ``M'`` than the config's (tuning).
      num_similar_items: Another ``M`` than the config's (tuning).

    Returns:
      ``(sources (B, M'), ids (B, M', M+1), sims (B, M', M+1))``; ids -1
      and sims 0 where there is no source.
    """
    del exclude
    m_prime = num_history_items or self.config.num_history_items
    m = num_similar_items or self.config.num_similar_items
    sources = ranking.last_distinct_items(users.history, m_prime)
    fetch = min(m + 1, self.similar_items.size)
    # Users share popular sources: each distinct item is searched once.
    distinct, position = tf.unique(tf.reshape(sources, [-1]))
    ids, sims = self.similar_items.search_op(
        tf.gather(self.item_space, distinct), fetch, numpy)
    ids, sims = tf.gather(ids, position), tf.gather(sims, position)
    has = tf.reshape(sources > 0, [-1, 1])
    shape = tf.concat([tf.shape(sources), [fetch]], axis=0)
    ids = tf.reshape(tf.where(has, ids, ranking.PAD_ID), shape)
    sims = tf.reshape(tf.where(has, sims, 0.0), shape)
    return sources, ids, sims

  def settings(self, config: Optional[I2IConfig] = None
               ) -> Dict[str, tf.Tensor]:
    """The ranking settings of ``config`` (default: the channel's)."""
    c = config or self.config
    return {"num_similar_items": tf.constant(c.num_similar_items, tf.int32),
            "alpha": tf.constant(c.alpha, tf.float32),
            "gamma": tf.constant(c.gamma, tf.float32),
            "recency_decay": tf.constant(c.recency_decay, tf.float32)}

  def rank(self, users: EncodedUsers,
           searched: Tuple[tf.Tensor, tf.Tensor, tf.Tensor],
           exclude: tf.Tensor,
           settings: Optional[Mapping[str, tf.Tensor]] = None
           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """``rank_i2i`` with the channel's (or the given) settings."""
    s = settings or self.settings()
    sources, ids, sims = searched
    ids, scores = rank_i2i(sources, ids, sims, users.shared,
                           self.item_shared, exclude, self.k,
                           s["num_similar_items"], s["alpha"], s["gamma"],
                           s["recency_decay"])
    # No source (no known history item): the popular fallback.
    no_source = tf.reduce_all(sources <= 0, axis=1, keepdims=True)
    popular_ids, popular_scores = ranking.popular_items(
        exclude, self.num_items, self.k)
    return (tf.where(no_source, popular_ids, ids),
            tf.where(no_source, popular_scores, scores))
