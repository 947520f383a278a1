"""U2I channel: the user's shared-space query retrieves items (paper 3.7).

``score(u, i) = max_k cos(q_{u,k}, e_i)`` over the user's interests ``k``
(one for a single-interest tower), with ``q`` the user query and ``e`` the
item vector in the shared user-item space. A multi-interest user searches the
item index once per interest; the candidates are merged by score, an item
found by several interests keeps its best score (ComiRec's merge, as
``mic_tf.evaluation.merge_interest_candidates``), excluded items and padding
are dropped and the ``k`` best remain.

With an exact index this is exactly ``mic_tf.training.evaluate_u2i``.
"""

from typing import Tuple

import numpy as np
import tensorflow as tf

from mic_tf.channels import ranking
from mic_tf.channels.queries import ChannelQueries
from mic_tf.indexes import Index

NAME = "u2i"


def rank_u2i(ids: tf.Tensor, scores: tf.Tensor, exclude: tf.Tensor,
             k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Merges per-interest search results into each user's top ``k``.

  Args:
    ids: ``(B, K, c)`` (or ``(B, c)``) item ids from the item index, ``<= 0``
      for padding.
    scores: Their scores, same shape.
    exclude: ``(B, E)`` item ids never to return, 0-padded.
    k: Items per user.

  Returns:
    ``(ids, scores)``, ``(B, k)``; see ``mic_tf.channels.ranking``.
  """
  batch = tf.shape(ids)[0]
  ids = tf.reshape(tf.cast(ids, tf.int64), [batch, -1])
  scores = tf.reshape(tf.cast(scores, tf.float32), [batch, -1])
  rows = tf.repeat(tf.range(tf.cast(batch, tf.int64)), tf.shape(ids)[1])
  rows, items, values = ranking.keep_pairs(
      rows, tf.reshape(ids, [-1]), tf.reshape(scores, [-1]), exclude)
  rows, items, values = ranking.aggregate(rows, items, values, reduce="max")
  return ranking.top_k_per_row(rows, items, values, batch, k)


_rank_u2i = tf.function(rank_u2i, reduce_retracing=True,
                         autograph=False)


class U2IChannel:
  """U2I retrieval over an item index (shared space, ids = item ids).

  Args:
    item_index: An ``Index`` over the shared-space item vectors whose ids are
      item ids (``ChannelIndexes.items``).
    batch_size: Users per search-and-rank batch.
  """

  name = NAME

  def __init__(self, item_index: Index, batch_size: int = 256):
    if batch_size < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}.")
    self.index = item_index
    self.batch_size = int(batch_size)

  def index_queries(self, queries: ChannelQueries) -> np.ndarray:
    """The vectors this channel searches the item index with: every interest."""
    return queries.shared.reshape(-1, queries.shared.shape[-1])

  def retrieve(self, queries: ChannelQueries,
               k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items of every user.

    Each interest fetches ``k`` plus the longest exclusion list of its batch
    (at most the whole pool), so excluding history never shortens a list
    that the pool could fill.

    Args:
      queries: The users (``ChannelQueries``).
      k: Items per user.

    Returns:
      ``(ids, scores)``: int64 / float32 ``(n, k)``, best first, padded with
      ``(-1, -inf)``.
    """
    ids_out, scores_out = [], []
    for batch in queries.batches(self.batch_size):
      interests = batch.shared.shape[1]
      fetch = min(self.index.size, k + batch.max_excluded)
      ids, scores = self.index.search(self.index_queries(batch), fetch)
      ids = ids.reshape(batch.size, interests, fetch)
      scores = scores.reshape(batch.size, interests, fetch)
      top_ids, top_scores = _rank_u2i(
          tf.constant(ids), tf.constant(scores), tf.constant(batch.exclude),
          k)
      ids_out.append(top_ids.numpy())
      scores_out.append(top_scores.numpy())
    return ranking.concat_results(ids_out, scores_out, k)
