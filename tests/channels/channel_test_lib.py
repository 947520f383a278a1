"""Hand-made users for channel tests: ``EncodedUsers`` read from tables.

``Users(shared, space, history, exclude)`` plays a model's ``UserEncoder``:
the feature ``row`` selects a user's hand-made queries, so a channel's whole
pipeline (``retrieve`` and ``recommend``) runs on vectors a test chose.
"""

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.layers.unknown_ids import known_or_missing


class TableEncoder(tf.Module):
  """A ``UserEncoder`` stand-in over fixed per-user vectors."""

  def __init__(self, shared, space, history, num_items):
    super().__init__(name="table_encoder")
    shared = np.asarray(shared, np.float32)
    if shared.ndim == 2:
      shared = shared[:, None, :]
    history = np.asarray(history, np.int64)
    n, maxlen = history.shape
    self.multi_interest = shared.shape[1] > 1
    self.spec = F.FeatureSpec(
        user_fields=(F.FieldSpec("row", max(n, 1)),
                     F.FieldSpec(F.HISTORY, num_items, F.SEQUENCE, maxlen,
                                 shares=F.ITEM_ID)),
        item_fields=(F.FieldSpec(F.ITEM_ID, num_items),),
        num_items=num_items, maxlen=maxlen)
    self._shared = tf.constant(shared.reshape(n, shared.shape[1], -1))
    self._space = tf.constant(np.asarray(space, np.float32).reshape(n, -1))
    self.history = history

  def __call__(self, features):
    rows = tf.cast(features["row"], tf.int32)
    return EncodedUsers(
        tf.gather(self._shared, rows), tf.gather(self._space, rows),
        known_or_missing(tf.cast(features[F.HISTORY], tf.int64),
                         self.spec.num_items))

  def features(self):
    n = len(self.history)
    return {"row": np.arange(n, dtype=np.int32),
            F.HISTORY: self.history.astype(np.int32)}


def encoder(shared, num_items, space=None, history=None):
  """A ``TableEncoder`` with zero user-space vectors / empty histories."""
  n = len(shared)
  space = np.zeros((n, 2), np.float32) if space is None else space
  history = np.zeros((n, 3), np.int64) if history is None else history
  return TableEncoder(shared, space, history, num_items)


def retrieve(channel, exclude=None, batch_size=256):
  """The channel's lists for all of its encoder's users."""
  lists = None if exclude is None else [np.asarray(e, np.int64)
                                        for e in exclude]
  return channel.retrieve(channel.encoder.features(), lists, batch_size)
