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

The index holds training users only (ids = their rows). Evaluated (valid /
test) users never are training users under the ComiRec protocol; a training
user served by its own vector finds itself among its neighbours
(``sim = 1``).
"""

import dataclasses
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

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
  return rank_u2u_blends(neighbour_rows, neighbour_sims, history_values,
                         history_splits, user_queries, item_table, exclude,
                         k, (alpha,), gamma)[0]


def rank_u2u_blends(neighbour_rows: tf.Tensor, neighbour_sims: tf.Tensor,
                    history_values: tf.Tensor, history_splits: tf.Tensor,
                    user_queries: tf.Tensor, item_table: tf.Tensor,
                    exclude: tf.Tensor, k: int, alphas: Sequence[float],
                    gamma: float) -> List[Tuple[tf.Tensor, tf.Tensor]]:
  """``rank_u2u`` for several ``alpha``s, the candidates scored once
  (``ranking.rank_weighted_pairs_blends``).

  Arguments as ``rank_u2u``, with ``alphas`` (blend weights) for
  ``alpha``.

  Returns:
    One ``(ids, scores)`` of shape ``(B, k)`` per alpha.
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
  return ranking.rank_weighted_pairs_blends(
      users, picked.flat_values, tf.gather(weights, pair_slot), exclude,
      user_queries, item_table, alphas, batch, k)


class U2UChannel(Channel):
  """U2U retrieval over an index of the training users' user-space vectors.

  Args:
    encoder: The model's ``UserEncoder``.
    train_user_space: ``(T, d_u)`` unit vectors of the training users.
    train_sequences: Their ``T`` training sequences (the candidates).
    item_shared: ``(num_items, d_s)`` unit shared-space item vectors.
    config: ``U2UConfig``.
    k: Items per user.
    index: ``"exact"``, ``"scann"`` or ``"auto"``.
    scann_config: Optional ``ScannConfig`` of the user index.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).
  """

  NAME = names.U2U

  def __init__(self, encoder: UserEncoder, train_user_space: np.ndarray,
               train_sequences: Sequence[np.ndarray],
               item_shared: np.ndarray,
               config: Optional[U2UConfig] = None, k: int = 50,
               index: str = names.EXACT,
               scann_config: Optional[indexes.ScannConfig] = None,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or U2UConfig()
    if len(train_user_space) != len(train_sequences):
      raise ValueError(
          f"train_user_space has {len(train_user_space)} rows but "
          f"train_sequences {len(train_sequences)} sequences; they must be "
          "aligned (one per training user).")
    self.users = make_channel_index(
        index, np.asarray(train_user_space, np.float32), None,
        self.config.num_neighbours, scann_config, name="users")
    values, splits = neighbour_histories(train_sequences,
                                         self.config.history_len)
    self.history_values = tf.Variable(values, trainable=False,
                                      name="history_values")
    self.history_splits = tf.Variable(splits, trainable=False,
                                      name="history_splits")
    self.item_shared = tf.Variable(np.asarray(item_shared, np.float32),
                                   trainable=False, name="item_shared")

  @property
  def searchers(self):
    return [self.users]

  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False, num_neighbours: Optional[int] = None
             ) -> Tuple[tf.Tensor, tf.Tensor]:
    """The ``N`` nearest training users: ``(rows, sims)``, ``(B, N)``.

    Args:
      users: The encoded users.
      exclude: Unused (U2U searches users).
      numpy: Search with the index's numpy path.
      num_neighbours: Another ``N`` than the config's (tuning).
    """
    del exclude
    n = min(num_neighbours or self.config.num_neighbours, self.users.size)
    rows, sims = self.users.search_op(users.space, n, numpy)
    return rows, tf.where(rows >= 0, sims, 0.0)

  def settings(self, config: Optional[U2UConfig] = None
               ) -> Dict[str, tf.Tensor]:
    """The ranking settings of ``config`` (default: the channel's)."""
    c = config or self.config
    return {"alpha": tf.constant(c.alpha, tf.float32),
            "gamma": tf.constant(c.gamma, tf.float32)}

  def rank(self, users: EncodedUsers, searched: Tuple[tf.Tensor, tf.Tensor],
           exclude: tf.Tensor,
           settings: Optional[Mapping[str, tf.Tensor]] = None
           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """``rank_u2u`` with the channel's (or the given) settings."""
    s = settings or self.settings()
    return self.rank_blends(users, searched, exclude, s, (s["alpha"],))[0]

  def rank_blends(self, users: EncodedUsers,
                  searched: Tuple[tf.Tensor, tf.Tensor], exclude: tf.Tensor,
                  settings: Mapping[str, tf.Tensor],
                  alphas: Sequence[tf.Tensor]
                  ) -> List[Tuple[tf.Tensor, tf.Tensor]]:
    """``rank`` for each of ``alphas`` (``settings``' own is ignored), the
    candidates scored once: the grid search's path."""
    rows, sims = searched
    return rank_u2u_blends(rows, sims, self.history_values,
                           self.history_splits, users.shared,
                           self.item_shared, exclude, self.k, alphas,
                           settings["gamma"])
