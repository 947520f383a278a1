"""``teacher_lists``: the U2U channel's lists of the training users.

Each training user is encoded as the channels encode a user (its attributes
and the last ``maxlen`` items of its history, ``ChannelAssets``) and served
by the U2U channel (``mic_tf.channels.u2u``, its own ``search`` and
``rank``), with its history excluded. Only training sequences are read: no
valid or test target.

Which history (``holdout``): a training user's whole sequence is training
data, so a teacher that reads all of it and excludes all of it lists only
items the user never chose, and teaching the U2I query to rank those first
works against the basic loss, which ranks the items it did choose. With
``holdout = h > 0`` the teacher sees the user as the protocol sees an
evaluated user: the history is the first ``1 - h`` of its sequence (at least
one item), only those items are excluded, and the list may hold the user's
later items where its neighbours point to them.

The user index holds the training users themselves (their whole
sequences): the user's own row is dropped from its neighbours (the search
asks for one more), so no user is its own teacher and its held-out items
come only from other users.
"""

import dataclasses
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf.channels import ranking
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.encoder import user_input_signature
from mic_tf.channels.u2u import U2UChannel
from mic_tf.channels.u2u import U2UConfig


def history_cuts(sequences: Sequence[np.ndarray], holdout: float
                 ) -> np.ndarray:
  """Length of each teacher history: ``len - round(holdout * len)``, >= 1.

  Args:
    sequences: Training sequences.
    holdout: Fraction held out at the end, in ``[0, 1)``.

  Returns:
    ``(n,)`` int64 lengths (a sequence of length 0 gets 0).
  """
  lengths = np.array([len(s) for s in sequences], np.int64)
  held = np.rint(holdout * lengths).astype(np.int64)
  return np.where(lengths > 0, np.maximum(lengths - held, 1), 0)


def _serve_without_self(channel: U2UChannel):
  """The channel's encode / search / rank, each user's own row dropped."""

  def run(features, exclude, own_rows):
    users = channel.encoder(features)
    exclude = channel.exclusions(users.history, exclude)
    rows, sims = channel.search(users, exclude, numpy=True)
    own = tf.equal(rows, tf.cast(own_rows, rows.dtype)[:, None])
    rows = tf.where(own, tf.cast(-1, rows.dtype), rows)
    sims = tf.where(own, 0.0, sims)
    return channel.rank(users, (rows, sims), exclude)

  return tf.function(run, autograph=False, input_signature=[
      user_input_signature(channel.encoder.spec),
      tf.TensorSpec([None, None], tf.int64), tf.TensorSpec([None], tf.int64)])


def teacher_lists(model, tables: F.FeatureTables, dataset, k: int,
                  u2u: Optional[U2UConfig] = None, holdout: float = 0.0,
                  batch_size: int = 1024
                  ) -> Tuple[np.ndarray, np.ndarray, Dict[str, float]]:
  """Each training user's top ``k`` U2U items under the model's weights.

  Args:
    model: A ``MICModel``.
    tables: The run's ``FeatureTables``.
    dataset: The run's ``ProcessedDataset`` (training users and sequences).
    k: Items per user.
    u2u: The channel's settings (default ``U2UConfig()``).
    holdout: Fraction of each sequence the teacher does not see (module
      docstring); 0 reads and excludes the whole sequence.
    batch_size: Users per forward pass.

  Returns:
    ``(user_ids, lists, timings)``: ``(T,)`` int64 ascending training user
    ids, ``(T, k)`` int64 item ids best first (-1 padding) and the seconds
    spent (``encode_s``, ``rank_s``).
  """
  if not 0.0 <= holdout < 1.0:
    raise ValueError(f"holdout must be in [0, 1), got {holdout}.")
  u2u = u2u or U2UConfig()
  start = time.perf_counter()
  assets = ChannelAssets(model, tables, dataset, batch_size=batch_size)
  users = np.sort(np.asarray(dataset.train_users, np.int64))
  sequences = assets.train_sequences
  space, items = assets.train_user_space, assets.item_shared
  encoded = time.perf_counter()
  config = dataclasses.replace(
      u2u, num_neighbours=min(u2u.num_neighbours + 1, len(users)))
  channel = U2UChannel(assets.encoder, space, sequences, items,
                       config=config, k=k)
  serve = _serve_without_self(channel)
  cuts = history_cuts(sequences, holdout)
  maxlen = tables.spec.maxlen
  padded = np.stack([F.pad_history(s, c, maxlen)
                     for s, c in zip(sequences, cuts)])
  features = tables.user_features(users, padded)
  names = tables.spec.user_field_names
  out = []
  for s in range(0, len(users), batch_size):
    e = min(s + batch_size, len(users))
    seen = [sequences[r][:cuts[r]] for r in range(s, e)]
    exclude = ranking.pad_lists(seen, max(len(x) for x in seen))
    batch = {n: tf.constant(np.asarray(features[n][s:e]), tf.int32)
             for n in names}
    ids, _ = serve(batch, tf.constant(exclude, tf.int64),
                   tf.constant(np.arange(s, e), tf.int64))
    out.append(ids.numpy())
  lists = (np.concatenate(out) if out else np.zeros((0, k), np.int64))
  done = time.perf_counter()
  return users, lists, {"encode_s": encoded - start, "rank_s": done - encoded}
