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


class ChannelQueries:
  """Hand-made users: queries, history and exclusion lists."""

  def __init__(self, shared, space, history, exclude):
    self.shared, self.space = shared, space
    self.history, self.exclude = np.asarray(history), list(exclude)


class ChannelFactory:
  """Builds a channel for the users and the ``k`` of each call.

  ``channel_class(encoder, *args, k, exclude_history=False)``: ``args`` are
  the channel's own vectors and config (history exclusion is the tests'
  own ``exclude`` lists).
  """

  def __init__(self, channel_class, *args):
    self.channel_class, self.args = channel_class, args

  def build(self, queries, k):
    num_items = len(self.args[-2])  # item_shared comes before the config
    return self.channel_class(
        TableEncoder(queries.shared, queries.space, queries.history,
                     num_items), *self.args, k, exclude_history=False)

  def retrieve(self, queries, k):
    return retrieve(self.build(queries, k), queries.exclude, batch_size=3)


def blend_reference(total, exclude, shared, item_shared, alpha, k):
  """The numpy reference of ranking a U2U / I2I channel's candidates.

  ``total``: candidate item -> collaborative score S. Excluded items are
  dropped; each candidate scores ``alpha * S / max S + (1 - alpha) * c``
  with ``c`` the user's best cosine with the item in the shared space;
  the top ``k`` ``(score, item)`` pairs, ties by item id.
  """
  total = {int(i): s for i, s in total.items()
           if int(i) not in {int(e) for e in exclude}}
  if not total:
    return []
  top = max(total.values())
  scored = []
  for item, s in total.items():
    cf = s / top if top > 0 else 0.0
    cos = max(shared @ item_shared[item])
    scored.append((alpha * cf + (1 - alpha) * cos, item))
  scored.sort(key=lambda t: (-t[0], t[1]))
  return scored[:k]
