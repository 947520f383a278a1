"""U2I channel: the user's shared-space query retrieves items (paper 3.7).

``score(u, i) = max_k cos(q_{u,k}, e_i)`` over the user's interests ``k``
(one for a single-interest tower), with ``q`` the user query and ``e`` the
item vector in the shared user-item space.

History-aware query (beyond the paper, ``U2IConfig.history_weight`` ``w >
0``)::

  score(u, i) = max_k cos(q_{u,k}, e_i) + w * cos(h_u, v_i)

with ``v_i`` the item's item-space vector (the space of I2I and of MIC's II
term) and ``h_u`` the sum of the item-space vectors of the user's known
history items (the ``maxlen`` items of the user features). It is still one
nearest-neighbour search over one index: the index holds ``[e_i ; v_i]``
and the query is ``[q_{u,k} ; w * h_u / |h_u|]``, whose inner product is the
score above. A user with no known history item gets ``h_u = 0``: the plain
query. ``w = 0`` is the paper's channel (and the default); the evaluation
binary tunes ``w`` on valid users. A multi-interest user searches the
item index once per interest; the candidates are merged by score, an item
found by several interests keeps its best score (ComiRec's merge), excluded
items and padding are dropped and the ``k`` best remain. With an exact index
this equals the top ``k`` of each item's best interest score over the whole
pool: an item of that top ``k`` is in its best interest's own top ``k +
excluded``, which that interest fetched.

This channel with an exact index is the per-epoch validation of training
(``mic_tf.channels.evaluate.evaluate_u2i``).
"""

import dataclasses
import math
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf import names
from mic_tf.channels import ranking
from mic_tf.channels.base import Channel
from mic_tf.channels.base import exclusion_width
from mic_tf.channels.base import make_channel_index
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.raw_ids import RawIds


@dataclasses.dataclass(frozen=True)
class U2IConfig:
  """Settings of the U2I channel (formula in the module docstring).

  Attributes:
    history_weight: ``w >= 0``, weight of the history term of the query;
      0 (default) is the paper's query, the user tower alone.
  """
  history_weight: float = 0.0

  def __post_init__(self):
    w = self.history_weight
    if (isinstance(w, bool) or not isinstance(w, (int, float, np.floating))
        or not math.isfinite(w) or w < 0):
      raise ValueError(f"history_weight must be a finite number >= 0, got "
                       f"{w!r}; 0 serves the user tower's query alone.")


def history_query(item_space: tf.Tensor, history: tf.Tensor) -> tf.Tensor:
  """``(B, d_i)``: each user's unit sum of history item-space vectors.

  Args:
    item_space: ``(num_items, d_i)`` unit item-space vectors, row 0 zero.
    history: ``(B, L)`` known history item ids, 0 for padding or unknown.

  Returns:
    Rows of norm 1, or 0 for a user without a known history item.
  """
  summed = tf.reduce_sum(tf.gather(item_space, history), axis=1)
  norm = tf.norm(summed, axis=-1, keepdims=True)
  return tf.math.divide_no_nan(summed, norm)


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


class U2IChannel(Channel):
  """U2I retrieval: each interest searches the shared-space item index.

  Args:
    encoder: The model's ``UserEncoder``.
    item_shared: ``(num_items, d_s)`` unit shared-space item vectors (row 0,
      padding, is never indexed).
    k: Items per user.
    index: ``"exact"``, ``"scann"`` or ``"auto"`` (``mic_tf.indexes``).
    scann_config: Optional ``ScannConfig`` of the item index.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).
    config: ``U2IConfig`` (defaults: the paper's query).
    item_space: ``(num_items, d_i)`` unit item-space vectors; needed when
      ``config.history_weight > 0``.
  """

  NAME = names.U2I

  def __init__(self, encoder: UserEncoder, item_shared: np.ndarray, k: int,
               index: str = names.EXACT,
               scann_config: Optional[indexes.ScannConfig] = None,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None,
               config: Optional[U2IConfig] = None,
               item_space: Optional[np.ndarray] = None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or U2IConfig()
    vectors = np.asarray(item_shared, np.float32)
    if self.config.history_weight > 0:
      if item_space is None:
        raise ValueError("U2IConfig.history_weight > 0 needs the item-space "
                         "vectors: pass item_space= (ChannelAssets."
                         "item_space), or set history_weight=0.")
      item_space = np.asarray(item_space, np.float32)
      if item_space.ndim != 2 or len(item_space) != len(vectors):
        raise ValueError(f"item_space must be (num_items, d) with "
                         f"{len(vectors)} rows like item_shared, got shape "
                         f"{item_space.shape}.")
      self.item_space = tf.Variable(item_space, trainable=False,
                                    name="item_space")
      vectors = np.concatenate([vectors, item_space], axis=1)
    self.items = make_channel_index(
        index, vectors[1:], np.arange(1, len(vectors)), self.k,
        scann_config, name="items")

  @property
  def searchers(self):
    return [self.items]

  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """Each interest fetches ``k`` plus the batch's widest exclusion list
    (at most the pool), so excluding never shortens a list the pool fills.
    """
    queries = users.shared
    shape = tf.shape(queries)
    w = float(self.config.history_weight)
    if w > 0:
      history = w * history_query(self.item_space, users.history)
      history = tf.broadcast_to(
          history[:, tf.newaxis, :],
          tf.stack([shape[0], shape[1], tf.shape(history)[-1]]))
      queries = tf.concat([queries, history], axis=-1)
    fetch = tf.minimum(self.items.size, self.k + exclusion_width(exclude))
    flat = tf.reshape(queries, [-1, queries.shape[-1]])
    ids, scores = self.items.search_op(flat, fetch, numpy)
    out_shape = tf.stack([shape[0], shape[1], fetch])
    return tf.reshape(ids, out_shape), tf.reshape(scores, out_shape)

  def rank(self, users: EncodedUsers, searched: Tuple[tf.Tensor, tf.Tensor],
           exclude: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    del users
    return rank_u2i(searched[0], searched[1], exclude, self.k)
