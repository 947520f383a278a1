"""Classical channels: ItemKNN, UserKNN and EASE beside U2I, U2U and I2I.

The reference recommenders of ``mic_tf.baselines`` as ``Channel`` modules:
they serve, are evaluated, tuned on valid users and fused like the learned
channels, and their SavedModels serve raw ids. Each channel is fitted with
its ``mic_tf.baselines`` class (one implementation of each model) on the
training users' sequences; the channel holds the fitted tables and scores in
TensorFlow:

* ItemKNN: the sparse item-item similarity ``S`` (each candidate item keeps
  its ``neighbourhood`` most similar items), ``score(u, j) = sum over known
  items h of S[h, j]``.
* UserKNN: the sparse binary training matrix ``X`` (users x items);
  ``sim(u, v) = |H(u) & I(v)| / sqrt(|H(u)| |I(v)|)``, the ``neighbours``
  most similar training users ``N(u)`` (positive similarity only, ties
  towards the lower training user), ``score(u, j) = sum over v in N(u)
  holding j of sim(u, v)``.
* EASE: the dense item-item weights ``B``, ``score(u, j) = x_u B``. The
  matrix is ``num_items ** 2`` floats, so EASE is left out above
  ``EASEConfig.max_items`` items (``unavailable``).

Known items: a classical channel scores from every item it knows the user
has: the ``history`` feature and the ids of ``exclude`` (a service passes
the user's whole history there; the offline protocol passes the evaluated
user's whole input history, as the reference rows read it). With these the
scores equal the ``mic_tf.baselines`` models' (tests/channels/
test_classical.py). The towers are not run.

Every item except padding and the excluded ones is ranked: the channel
scores a dense ``(batch, num_items)`` row per user and keeps the ``k`` best
(ties towards the lower id, the more popular item, as the reference models;
the kNN channels thus fill a user with fewer than ``k`` scored items with
the most popular items, score 0). The tables themselves are sparse for the
kNN channels (``nonzero similarities`` and ``interactions`` entries).
"""

import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from mic_tf import baselines
from mic_tf import features as F
from mic_tf import names
from mic_tf.channels.base import Channel
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.raw_ids import RawIds
from mic_tf.indexes import pad_to_k
from mic_tf.layers.unknown_ids import known_or_missing


@dataclasses.dataclass(frozen=True)
class ItemKNNConfig:
  """Settings of the ItemKNN channel (``mic_tf.baselines.ItemKNN``).

  Attributes:
    neighbourhood: Most similar items kept per candidate item (the table's
      width); None keeps them all.
    shrink: Constant added to the cosine denominator (``>= 0``).
  """
  neighbourhood: Optional[int] = 100
  shrink: float = 0.0

  def __post_init__(self):
    if self.neighbourhood is not None and self.neighbourhood < 1:
      raise ValueError(f"neighbourhood must be >= 1 or None, got "
                       f"{self.neighbourhood}.")
    if not self.shrink >= 0:
      raise ValueError(f"shrink must be >= 0, got {self.shrink}.")


@dataclasses.dataclass(frozen=True)
class UserKNNConfig:
  """Settings of the UserKNN channel (``mic_tf.baselines.UserKNN``).

  Attributes:
    neighbours: Most similar training users kept per user.
  """
  neighbours: int = 50

  def __post_init__(self):
    if self.neighbours < 1:
      raise ValueError(f"neighbours must be >= 1, got {self.neighbours}.")


@dataclasses.dataclass(frozen=True)
class EASEConfig:
  """Settings of the EASE channel (``mic_tf.baselines.EASE``).

  Attributes:
    l2: The L2 weight ``lambda`` (``> 0``).
    max_items: Largest item vocabulary EASE is built for (its weights are a
      dense ``num_items x num_items`` matrix); above it EASE is left out.
  """
  l2: float = 500.0
  max_items: int = baselines.EASE_ITEM_LIMIT

  def __post_init__(self):
    if not self.l2 > 0:
      raise ValueError(f"l2 must be > 0, got {self.l2}.")
    if self.max_items < 2:
      raise ValueError(f"max_items must be >= 2, got {self.max_items}.")


def unavailable(num_items: int, ease: EASEConfig) -> Dict[str, str]:
  """Classical channels that cannot be built for a catalogue, with why.

  Returns:
    Channel name -> a one-line reason (empty when every channel scales).
  """
  out = {}
  if num_items > ease.max_items:
    out[names.EASE] = (
        f"EASE left out: its dense {num_items} x {num_items} item matrix is "
        f"above EASEConfig.max_items={ease.max_items} items (ItemKNN and "
        "UserKNN, sparse, stay).")
  return out


def fit_model(name: str, num_items: int, train_sequences: Sequence[Any],
              config) -> Any:
  """The fitted ``mic_tf.baselines`` model of a classical channel.

  Raises:
    ValueError: On an unknown channel, or EASE above its item limit.
  """
  if name == names.ITEMKNN:
    model = baselines.ItemKNN(num_items, config.neighbourhood, config.shrink)
  elif name == names.USERKNN:
    model = baselines.UserKNN(
        num_items, min(config.neighbours, len(train_sequences)))
  elif name == names.EASE:
    model = baselines.EASE(num_items, config.l2, config.max_items)
  else:
    raise ValueError(f"Unknown classical channel {name!r}; choose from "
                     f"{names.CLASSICAL_CHANNELS}.")
  return model.fit(train_sequences)


def _sparse_variables(matrix: sp.spmatrix, prefix: str
                      ) -> Tuple[tf.Variable, tf.Variable, Tuple[int, int]]:
  coo = sp.coo_matrix(matrix)
  order = np.lexsort((coo.col, coo.row))
  indices = np.stack([coo.row[order], coo.col[order]], axis=1).astype(
      np.int64)
  values = coo.data[order].astype(np.float32)
  return (tf.Variable(indices.reshape(-1, 2), trainable=False,
                      name=f"{prefix}_indices"),
          tf.Variable(values, trainable=False, name=f"{prefix}_values"),
          tuple(int(s) for s in coo.shape))


def multi_hot(ids: tf.Tensor, width: int) -> tf.Tensor:
  """``(B, width)`` float32 with 1 at each row's ids ``> 0`` (repeats once)."""
  ids = tf.cast(ids, tf.int64)
  batch = tf.shape(ids, out_type=tf.int64)[0]
  rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(ids,
                                                                  tf.int64))
  keep = (ids > 0) & (ids < width)
  index = tf.stack([tf.boolean_mask(rows, keep), tf.boolean_mask(ids, keep)],
                   axis=1)
  counts = tf.scatter_nd(index, tf.ones([tf.shape(index)[0]], tf.float32),
                         tf.stack([batch, tf.constant(width, tf.int64)]))
  return tf.minimum(counts, 1.0)


def top_k_scored(scores: tf.Tensor, exclude: tf.Tensor,
                 k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """The ``k`` best of dense ``(B, num_items)`` scores, padding (id 0) and
  ``exclude`` never returned; ties towards the lower id; ``(-1, -inf)``
  where fewer items remain."""
  width = scores.shape[1]
  forbidden = multi_hot(exclude, width) > 0
  forbidden |= tf.equal(tf.range(width), 0)[tf.newaxis]
  masked = tf.where(forbidden, names.NEG_INF, scores)
  top = tf.math.top_k(masked, k=min(k, width), sorted=True)
  ids = tf.where(top.values > names.NEG_INF, tf.cast(top.indices, tf.int64),
                 names.PAD_ID)
  return pad_to_k(ids, top.values, k)


class ClassicalChannel(Channel):
  """A channel scored from the user's known items (module docstring).

  Subclasses define ``scores(known)``: ``(B, num_items)`` float32 from the
  ``(B, num_items)`` multi-hot of the known items.
  """

  def scores(self, known: tf.Tensor) -> tf.Tensor:
    raise NotImplementedError

  @property
  def searchers(self):
    return []

  def run(self, features, exclude=None, numpy=False):
    """``Channel.run`` without the towers: only the history is read."""
    history = known_or_missing(tf.cast(features[F.HISTORY], tf.int64),
                               self.num_items)
    users = EncodedUsers(shared=None, space=None, history=history)
    excl = self.exclusions(history, exclude)
    return self.rank(users, self.search(users, excl, numpy), excl)

  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False) -> tf.Tensor:
    """The known items: ``(B, L + E)`` ids (history and ``exclude``)."""
    del numpy
    return tf.concat([tf.cast(users.history, tf.int64),
                      tf.cast(exclude, tf.int64)], axis=1)

  def rank(self, users: EncodedUsers, searched: tf.Tensor,
           exclude: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    del users
    known = multi_hot(searched, self.num_items)
    return top_k_scored(self.scores(known), exclude, self.k)


class ItemKNNChannel(ClassicalChannel):
  """ItemKNN (module docstring) over a sparse similarity table.

  Args:
    encoder: The model's ``UserEncoder`` (its spec; the towers are not run).
    train_sequences: The training users' sequences.
    config: ``ItemKNNConfig``.
    k: Items per user.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).
    fitted: An already fitted ``mic_tf.baselines.ItemKNN`` of ``config``.
  """

  NAME = names.ITEMKNN

  def __init__(self, encoder: UserEncoder, train_sequences,
               config: Optional[ItemKNNConfig] = None, k: int = 50,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None, fitted=None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or ItemKNNConfig()
    fitted = fitted or fit_model(self.NAME, self.num_items, train_sequences,
                                 self.config)
    # Stored transposed: row j holds the items h with S[h, j] > 0.
    self.table_indices, self.table_values, self._shape = _sparse_variables(
        fitted.similarity_.T, "similarity")

  def scores(self, known):
    table = tf.SparseTensor(self.table_indices, self.table_values,
                            self._shape)
    return tf.transpose(tf.sparse.sparse_dense_matmul(
        table, known, adjoint_b=True))


class UserKNNChannel(ClassicalChannel):
  """UserKNN (module docstring) over the sparse training matrix.

  Args:
    encoder: The model's ``UserEncoder`` (its spec; the towers are not run).
    train_sequences: The training users' sequences (their rows: the
      training users' order, which breaks similarity ties).
    config: ``UserKNNConfig``; ``neighbours`` is capped at the number of
      training users.
    k: Items per user.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).
    fitted: An already fitted ``mic_tf.baselines.UserKNN`` of ``config``.
  """

  NAME = names.USERKNN

  def __init__(self, encoder: UserEncoder, train_sequences,
               config: Optional[UserKNNConfig] = None, k: int = 50,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None, fitted=None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or UserKNNConfig()
    fitted = fitted or fit_model(self.NAME, self.num_items, train_sequences,
                                 self.config)
    self.neighbours = int(fitted.neighbours)
    train = sp.csr_matrix(fitted.train_)
    self.train_indices, self.train_values, self._shape = _sparse_variables(
        train, "train")
    lengths = np.asarray(train.sum(axis=1), np.float32).ravel()
    self.inverse_norms = tf.Variable(
        np.divide(1.0, np.sqrt(lengths), out=np.zeros_like(lengths),
                  where=lengths > 0), trainable=False, name="inverse_norms")

  def scores(self, known):
    train = tf.SparseTensor(self.train_indices, self.train_values,
                            self._shape)
    overlap = tf.transpose(tf.sparse.sparse_dense_matmul(
        train, known, adjoint_b=True))                      # (B, T)
    length = tf.reduce_sum(known, axis=1, keepdims=True)
    inverse = tf.where(length > 0, tf.math.rsqrt(tf.maximum(length, 1.0)),
                       0.0)
    sims = overlap * inverse * self.inverse_norms[tf.newaxis]
    sims = tf.where(sims > 0, sims, names.NEG_INF)
    top = tf.math.top_k(sims, k=min(self.neighbours, self._shape[0]))
    weights = tf.where(top.values > 0, top.values, 0.0)
    batch = tf.shape(known)[0]
    rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis],
                           tf.shape(top.indices))
    kept = tf.scatter_nd(
        tf.stack([tf.reshape(rows, [-1]), tf.reshape(top.indices, [-1])], 1),
        tf.reshape(weights, [-1]), tf.stack([batch, self._shape[0]]))
    return tf.transpose(tf.sparse.sparse_dense_matmul(
        train, kept, adjoint_a=True, adjoint_b=True))


class EASEChannel(ClassicalChannel):
  """EASE (module docstring) over its dense item-item weight matrix.

  Args:
    encoder: The model's ``UserEncoder`` (its spec; the towers are not run).
    train_sequences: The training users' sequences.
    config: ``EASEConfig``.
    k: Items per user.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).
    fitted: An already fitted ``mic_tf.baselines.EASE`` of ``config``.

  Raises:
    ValueError: Above ``config.max_items`` items.
  """

  NAME = names.EASE

  def __init__(self, encoder: UserEncoder, train_sequences,
               config: Optional[EASEConfig] = None, k: int = 50,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None, fitted=None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or EASEConfig()
    fitted = fitted or fit_model(self.NAME, self.num_items, train_sequences,
                                 self.config)
    self.weights = tf.Variable(fitted.weights_, trainable=False,
                               name="ease_weights")

  def scores(self, known):
    return tf.matmul(known, self.weights)


CLASSES = {names.ITEMKNN: ItemKNNChannel, names.USERKNN: UserKNNChannel,
           names.EASE: EASEChannel}

