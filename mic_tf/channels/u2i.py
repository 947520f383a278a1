"""U2I channel: the user's shared-space query retrieves items (paper 3.7).

``score(u, i) = max_k cos(q_{u,k}, e_i)`` over the user's interests ``k``
(one for a single-interest tower), with ``q`` the user query and ``e`` the
item vector in the shared user-item space. A multi-interest user searches the
item index once per interest; the candidates are merged by score, an item
found by several interests keeps its best score (ComiRec's merge), excluded
items and padding are dropped and the ``k`` best remain. With an exact index
this equals the top ``k`` of each item's best interest score over the whole
pool: an item of that top ``k`` is in its best interest's own top ``k +
excluded``, which that interest fetched.

This channel with an exact index is the per-epoch validation of training
(``mic_tf.channels.evaluate.evaluate_u2i``).
"""

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
  """

  NAME = names.U2I

  def __init__(self, encoder: UserEncoder, item_shared: np.ndarray, k: int,
               index: str = names.EXACT,
               scann_config: Optional[indexes.ScannConfig] = None,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    item_shared = np.asarray(item_shared, np.float32)
    self.items = make_channel_index(
        index, item_shared[1:], np.arange(1, len(item_shared)), self.k,
        scann_config, name="items")

  @property
  def searchers(self):
    return [self.items]

  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """Each interest fetches ``k`` plus the batch's widest exclusion list
    (at most the pool), so excluding never shortens a list the pool fills.
    """
    shape = tf.shape(users.shared)
    fetch = tf.minimum(self.items.size, self.k + exclusion_width(exclude))
    flat = tf.reshape(users.shared, [-1, users.shared.shape[-1]])
    ids, scores = self.items.search_op(flat, fetch, numpy)
    out_shape = tf.stack([shape[0], shape[1], fetch])
    return tf.reshape(ids, out_shape), tf.reshape(scores, out_shape)

  def rank(self, users: EncodedUsers, searched: Tuple[tf.Tensor, tf.Tensor],
           exclude: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    del users
    return rank_u2i(searched[0], searched[1], exclude, self.k)
