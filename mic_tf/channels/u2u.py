"""U2U channel: items of the most similar training users (paper 3.7).

For a user ``u`` with unit user-space vector ``x_u`` (the mean of its unit
interests for a multi-interest tower), the user index returns the ``N``
training users ``v`` with the largest ``sim(u, v) = cos(x_u, x_v)``.
Every item ``i`` of those users' training sequences is a candidate:

  w(u, v)   = sim(u, v) ** gamma   if sim(u, v) > 0, else 0
  S(u, i)   = sum over the N neighbours v whose sequence holds i of w(u, v)
              (a neighbour counts once per item, however often it repeats)
  S^(u, i)  = S(u, i) / max_j S(u, j)        (0 when that maximum is 0)
  c(u, i)   = max_k cos(q_{u,k}, e_i)        (shared space, best interest)
  score     = alpha * S^(u, i) + (1 - alpha) * c(u, i)

Excluded items (the user's history) and padding are dropped and the ``k``
best candidates remain; users with fewer candidates get a shorter list
(padded with id -1). ``U2UConfig.history_len`` optionally limits each
neighbour's contribution to its last items.

The index holds training users only. Evaluated (valid / test) users never
are training users under the ComiRec protocol; a training user served by
its own vector finds itself among its neighbours (``sim = 1``).
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf.channels import ranking
from mic_tf.channels.queries import ChannelQueries
from mic_tf.indexes import Index

NAME = "u2u"


@dataclasses.dataclass(frozen=True)
class U2UConfig:
  """Settings of the U2U channel (formula in the module docstring).

  Attributes:
    num_neighbours: ``N``, similar training users per user.
    alpha: Weight of the normalised neighbour score (``1 - alpha``: the
      user-item cosine), in ``[0, 1]``.
    gamma: Exponent sharpening the neighbour similarities (``>= 0``).
    history_len: Use only each neighbour's last ``history_len`` training
      items; None uses the whole sequence.
  """
  num_neighbours: int = 50
  alpha: float = 0.5
  gamma: float = 1.0
  history_len: Optional[int] = None

  def __post_init__(self):
    if self.num_neighbours < 1:
      raise ValueError(
          f"num_neighbours must be >= 1, got {self.num_neighbours}.")
    if not 0.0 <= self.alpha <= 1.0:
      raise ValueError(f"alpha must be in [0, 1], got {self.alpha}.")
    if self.gamma < 0:
      raise ValueError(f"gamma must be >= 0, got {self.gamma}.")
    if self.history_len is not None and self.history_len < 1:
      raise ValueError(
          f"history_len must be >= 1 or None, got {self.history_len}.")


def neighbour_histories(sequences: Sequence[np.ndarray],
                       history_len: Optional[int] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
  """Each training user's distinct items as a ragged ``(values, splits)``.

  Args:
    sequences: Training sequences, one per row of the user index.
    history_len: Keep only the last this-many items of each (None: all).

  Returns:
    ``(values, row_splits)`` int64: row ``r``'s items (ascending, distinct,
    no padding) are ``values[row_splits[r]:row_splits[r + 1]]``.
  """
  rows = []
  for s in sequences:
    s = np.asarray(s, np.int64)
    if history_len is not None:
      s = s[-history_len:]
    rows.append(np.unique(s[s > 0]))
  lengths = np.array([len(r) for r in rows], np.int64)
  splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  values = np.concatenate(rows) if rows else np.zeros(0, np.int64)
  return values.astype(np.int64), splits


def rank_u2u(neighbour_rows: tf.Tensor, neighbour_sims: tf.Tensor,
             history_values: tf.Tensor, history_splits: tf.Tensor,
             user_queries: tf.Tensor, item_table: tf.Tensor,
             exclude: tf.Tensor, k: int, alpha: float, gamma: float
             ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Scores the neighbours' items (formula in the module docstring).

  Args:
    neighbour_rows: ``(B, N)`` int row of each neighbour in the ragged
      histories; ``< 0`` for padding.
    neighbour_sims: ``(B, N)`` float ``sim(u, v)``.
    history_values: Ragged values from ``neighbour_histories``.
    history_splits: Its row splits.
    user_queries: ``(B, K, d)`` unit shared-space user queries.
    item_table: ``(num_items, d)`` unit shared-space item vectors.
    exclude: ``(B, E)`` item ids never to return, 0-padded.
    k: Items per user.
    alpha: Blend weight.
    gamma: Similarity exponent.

  Returns:
    ``(ids, scores)`` of shape ``(B, k)``.
  """
  batch = tf.shape(neighbour_rows)[0]
  width = tf.shape(neighbour_rows)[1]
  rows_flat = tf.reshape(tf.cast(neighbour_rows, tf.int64), [-1])
  sims_flat = tf.reshape(tf.cast(neighbour_sims, tf.float32), [-1])
  weights = tf.where(sims_flat > 0,
                     tf.pow(tf.maximum(sims_flat, 0.0), gamma), 0.0)
  slot = tf.boolean_mask(tf.range(tf.size(rows_flat, out_type=tf.int64)),
                         rows_flat >= 0)
  histories = tf.RaggedTensor.from_row_splits(
      tf.cast(history_values, tf.int64), tf.cast(history_splits, tf.int64))
  picked = tf.gather(histories, tf.gather(rows_flat, slot))
  pair_slot = tf.gather(slot, picked.value_rowids())
  users = pair_slot // tf.cast(width, tf.int64)
  users, items, values = ranking.keep_pairs(
      users, picked.flat_values, tf.gather(weights, pair_slot), exclude)
  users, items, total = ranking.aggregate(users, items, values, reduce="sum")
  collaborative = ranking.normalize_by_row_max(users, total, batch)
  cosine = ranking.interest_cosine(users, items, user_queries, item_table)
  scores = ranking.blend(collaborative, cosine, alpha)
  return ranking.top_k_per_row(users, items, scores, batch, k)


_rank_u2u = tf.function(rank_u2u, reduce_retracing=True,
                         autograph=False)


class U2UChannel:
  """U2U retrieval over a user index of training users.

  Args:
    user_index: ``Index`` over the training users' user-space vectors, ids
      = user ids (``ChannelIndexes.users``).
    train_users: The training user ids, ascending (``ChannelAssets``).
    train_sequences: Their training sequences, aligned with ``train_users``.
    item_shared: ``(num_items, d)`` shared-space item vectors.
    config: ``U2UConfig``.
    batch_size: Users per search-and-rank batch.
  """

  name = NAME

  def __init__(self, user_index: Index, train_users: np.ndarray,
               train_sequences: Sequence[np.ndarray], item_shared: np.ndarray,
               config: Optional[U2UConfig] = None, batch_size: int = 256):
    if batch_size < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}.")
    self.index = user_index
    self.config = config or U2UConfig()
    self.batch_size = int(batch_size)
    self.train_users = np.asarray(train_users, np.int64)
    if len(self.train_users) != len(train_sequences):
      raise ValueError(
          f"train_users has {len(self.train_users)} ids but train_sequences "
          f"{len(train_sequences)} sequences; they must be aligned.")
    self._train_sequences = list(train_sequences)
    values, splits = neighbour_histories(train_sequences,
                                        self.config.history_len)
    self.history_values = tf.constant(values)
    self.history_splits = tf.constant(splits)
    self.item_shared = tf.constant(np.asarray(item_shared, np.float32))

  def with_config(self, config: U2UConfig) -> "U2UChannel":
    """The same channel (same index) with other settings."""
    return U2UChannel(self.index, self.train_users, self._train_sequences,
                      self.item_shared.numpy(), config, self.batch_size)

  def index_queries(self, queries: ChannelQueries) -> np.ndarray:
    return queries.user_space

  def search(self, queries: ChannelQueries,
             num_neighbours: Optional[int] = None
             ) -> Tuple[np.ndarray, np.ndarray]:
    """Similar training users: ``(rows, sims)``, ``(n, N)``, rows -1 = none."""
    n = num_neighbours or self.config.num_neighbours
    n = min(n, self.index.size)
    ids, sims = self.index.search(self.index_queries(queries), n)
    pos = np.searchsorted(self.train_users, ids)
    pos = np.minimum(pos, len(self.train_users) - 1)
    rows = np.where((ids >= 0) & (self.train_users[pos] == ids), pos, -1)
    return rows, np.where(rows >= 0, sims, 0.0).astype(np.float32)

  def rank(self, queries: ChannelQueries, rows: np.ndarray, sims: np.ndarray,
           k: int, config: Optional[U2UConfig] = None
           ) -> Tuple[np.ndarray, np.ndarray]:
    """Scores the candidates of already searched neighbours (batched).

    Args:
      queries: The users.
      rows: ``(n, >= N)`` neighbour rows from ``search``.
      sims: Their similarities.
      k: Items per user.
      config: Other settings than the channel's (same ``history_len``);
        the first ``config.num_neighbours`` neighbours are used.

    Returns:
      ``(ids, scores)``, ``(n, k)``.

    Raises:
      ValueError: If ``config`` changes ``history_len`` (use
        ``with_config``).
    """
    c = config or self.config
    if c.history_len != self.config.history_len:
      raise ValueError(
          f"config.history_len={c.history_len} differs from the channel's "
          f"{self.config.history_len}; build the channel with "
          "with_config(config) instead.")
    rows = rows[:, :c.num_neighbours]
    sims = sims[:, :c.num_neighbours]
    ids_out, scores_out = [], []
    start = 0
    for batch in queries.batches(self.batch_size):
      stop = start + batch.size
      ids, scores = _rank_u2u(
          tf.constant(rows[start:stop]), tf.constant(sims[start:stop]),
          self.history_values, self.history_splits,
          tf.constant(batch.shared), self.item_shared,
          tf.constant(batch.exclude), k, tf.constant(c.alpha, tf.float32),
          tf.constant(c.gamma, tf.float32))
      ids_out.append(ids.numpy())
      scores_out.append(scores.numpy())
      start = stop
    return ranking.concat_results(ids_out, scores_out, k)

  def retrieve(self, queries: ChannelQueries,
               k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top ``k`` items of every user; see the module docstring."""
    rows, sims = self.search(queries)
    return self.rank(queries, rows, sims, k)
