"""``Channel``: one retrieval channel as a ``tf.Module`` that serves and evaluates.

A channel holds its vectors, its searcher(s) (``mic_tf.indexes``) and a
``UserEncoder``; it recommends in three steps, written once in TensorFlow:

1. ``encoder(features)``: the users' queries (``EncodedUsers``);
2. ``search(users, exclude, numpy)``: nearest-neighbour searches;
3. ``rank(users, searched, exclude)``: the channel's formula, top ``k``.

``recommend(features, exclude=None)`` runs them with the indexes' TF path:
that is what a SavedModel serves. ``retrieve(features, exclude)`` runs the
*same* code with the indexes' numpy path, batch by batch: that is what
offline evaluation, validation tuning and training's per-epoch validation
call. The two agree because each index's two paths do (tested in
tests/indexes) and the rest is shared; tests/test_serving.py checks it end
to end on ML-100k, across a SavedModel and a fresh process.

Exclusion: the items of the ``history`` feature (when ``exclude_history``)
and the optional ``exclude`` list, of any length (e.g. a user's whole
history, as the offline protocol excludes it), are never returned. Lists
may be shorter than ``k``: empty slots hold id -1 and score -inf.

Serving signatures (``signatures()``): ``recommend`` (also
``serving_default``) takes raw ids and attribute values and returns raw
item ids when the channel holds a ``RawIds``; ``recommend_ids`` takes and
returns internal ids. Both take ``exclude``, ``(B, E)`` with any ``E >= 0``.
"""

import functools
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf import names
from mic_tf.channels import ranking
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.channels.encoder import track_captured
from mic_tf.channels.encoder import user_input_signature
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.raw_ids import RAW_PADDING
from mic_tf.channels.raw_ids import RawIds
from mic_tf.indexes.base import Untracked
from mic_tf.layers.unknown_ids import known_or_missing

RECOMMEND = "recommend"
RECOMMEND_IDS = "recommend_ids"

Exclude = Optional[Union[tf.Tensor, tf.RaggedTensor]]


def make_channel_index(kind: str, vectors: np.ndarray,
                       ids: Optional[np.ndarray], k: int,
                       scann_config: Optional[indexes.ScannConfig] = None,
                       name: Optional[str] = None) -> indexes.Index:
  """A built index of ``kind`` ("exact", "scann" or "auto") for a channel.

  ScaNN indexes get their TF path ready (``ScannIndex.prepare_tf``), so the
  channel can be traced and saved.

  Raises:
    ValueError: On an unknown kind, or a ScaNN config for an exact index.
  """
  if kind not in names.INDEX_CHOICES:
    raise ValueError(f"index must be one of {names.INDEX_CHOICES}, got "
                     f"{kind!r}.")
  if kind == names.EXACT:
    if scann_config is not None:
      raise ValueError("A ScannConfig was given for an exact index; use "
                       "index='scann' or drop it.")
    index = indexes.BruteForceIndex(name=name)
  else:
    config = scann_config or indexes.ScannConfig.auto(len(vectors), k)
    index = indexes.ScannIndex(config, name=name)
  index.build(vectors, ids=ids)
  if isinstance(index, indexes.ScannIndex):
    index.prepare_tf()
  return index


def exclusion_width(exclude: tf.Tensor) -> tf.Tensor:
  """Largest number of real (> 0) ids in a row of ``exclude`` (0 if none)."""
  counts = tf.reduce_sum(tf.cast(exclude > 0, tf.int32), axis=1)
  return tf.reduce_max(tf.concat([counts, [0]], axis=0))


class Channel(tf.Module):
  """Base class of the U2I, U2U, I2I and fused channels (module docstring).

  Args:
    encoder: The ``UserEncoder`` (shared by channels of one model).
    k: Items per user.
    exclude_history: Never return the items of the ``history`` feature.
    raw_ids: Optional ``RawIds``: adds ``recommend_raw`` and makes the
      ``recommend`` signature speak raw ids.
    name: Module name.
  """

  NAME = ""

  def __init__(self, encoder: UserEncoder, k: int,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None,
               name: Optional[str] = None):
    super().__init__(name=name or self.NAME)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
      raise ValueError(f"k must be a positive integer, got {k!r}.")
    self.encoder = encoder
    self.k = int(k)
    self.exclude_history = bool(exclude_history)
    self.raw_ids = raw_ids
    self._offline = Untracked()
    self._offline.retrieve = None

  # ------------------------------------------------ what subclasses define
  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False) -> Any:
    """The channel's searches (TF path, or numpy path with ``numpy=True``)."""
    raise NotImplementedError

  def rank(self, users: EncodedUsers, searched: Any,
           exclude: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """The channel's formula on searched candidates: ``(B, k)`` ids, scores."""
    raise NotImplementedError

  @property
  def searchers(self) -> List[indexes.Index]:
    """Every index the channel searches."""
    raise NotImplementedError

  # ------------------------------------------------------------- pipeline
  @property
  def num_items(self) -> int:
    return int(self.encoder.spec.num_items)

  @property
  def needs_scann(self) -> bool:
    """Whether a SavedModel of the channel holds ScaNN ops."""
    return any(isinstance(i, indexes.ScannIndex) for i in self.searchers)

  def exclusions(self, history: tf.Tensor, exclude: Exclude = None
                 ) -> tf.Tensor:
    """``(B, E)`` int64 ids never to return, 0-padded (module docstring)."""
    parts = []
    if self.exclude_history:
      parts.append(tf.cast(history, tf.int64))
    if exclude is not None:
      if isinstance(exclude, tf.RaggedTensor):
        exclude = exclude.to_tensor(default_value=0)
      exclude = tf.convert_to_tensor(exclude)
      parts.append(known_or_missing(tf.cast(exclude, tf.int64),
                                    self.num_items))
    if not parts:
      return tf.zeros([tf.shape(history)[0], 0], tf.int64)
    return tf.concat(parts, axis=1)

  def run(self, features: Mapping[str, tf.Tensor], exclude: Exclude = None,
          numpy: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """Encode, search, rank: ``(ids, scores)``, ``(B, k)``."""
    users = self.encoder(features)
    exclude = self.exclusions(users.history, exclude)
    return self.rank(users, self.search(users, exclude, numpy), exclude)

  def recommend(self, features: Mapping[str, tf.Tensor],
                exclude: Exclude = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """Top ``k`` item ids of each user, TF path (what a SavedModel serves).

    Args:
      features: The user features (``user_input_signature``), int.
      exclude: Optional item ids never to return: ``(B, E)`` 0-padded or a
        ``tf.RaggedTensor``, any length.

    Returns:
      ``(ids, scores)``: int64 / float32 ``(B, k)``, best first.
    """
    return self.run(features, exclude, numpy=False)

  def recommend_raw(self, raw_features: Mapping[str, tf.Tensor],
                    exclude: Exclude = None) -> Tuple[tf.Tensor, tf.Tensor]:
    """``recommend`` on raw ids / values; returns raw item ids.

    Raises:
      ValueError: If the channel holds no ``RawIds``.
    """
    if self.raw_ids is None:
      raise ValueError(f"The {self.name} channel was built without raw ids "
                       "(RawIds); pass raw_ids= to build_channels.")
    if exclude is not None:
      if isinstance(exclude, tf.RaggedTensor):
        exclude = exclude.to_tensor(
            default_value=RAW_PADDING[self.raw_ids.item_kind])
      exclude = self.raw_ids.items_to_internal(exclude)
    ids, scores = self.recommend(self.raw_ids.to_internal(raw_features),
                                 exclude)
    return self.raw_ids.items_to_raw(ids), scores

  def retrieve(self, features: Mapping[str, np.ndarray],
               exclude: Optional[Sequence[np.ndarray]] = None,
               batch_size: int = 256) -> Tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of every user, numpy path, in batches (offline work).

    Args:
      features: User feature arrays (e.g. ``EvalUsers.features``).
      exclude: Optional per-user arrays of item ids never to return (e.g.
        ``EvalUsers.histories``), any lengths.
      batch_size: Users per batch.

    Returns:
      ``(ids, scores)``: int64 / float32 ``(n, k)``.
    """
    if batch_size < 1:
      raise ValueError(f"batch_size must be positive, got {batch_size}.")
    names_ = self.encoder.spec.user_field_names
    n = len(features[names_[0]])
    if exclude is not None and len(exclude) != n:
      raise ValueError(f"exclude has {len(exclude)} lists for {n} users.")
    if self._offline.retrieve is None:
      # A partial, not a lambda: TF's retracing warning counts traces per
      # code object, and every channel traces this once.
      self._offline.retrieve = tf.function(
          functools.partial(self.run, numpy=True), autograph=False,
          input_signature=[user_input_signature(self.encoder.spec),
                           tf.TensorSpec([None, None], tf.int64)])
    ids, scores = [], []
    for start in range(0, n, batch_size):
      stop = min(start + batch_size, n)
      batch = {k: tf.constant(np.asarray(features[k][start:stop]), tf.int32)
               for k in names_}
      lists = [] if exclude is None else exclude[start:stop]
      width = max([np.size(e) for e in lists], default=0)
      excl = (ranking.pad_lists(lists, width) if lists else
              np.zeros((stop - start, 0), np.int64))
      out = self._offline.retrieve(batch, tf.constant(excl, tf.int64))
      ids.append(out[0].numpy())
      scores.append(out[1].numpy())
    if not ids:
      return np.zeros((0, self.k), np.int64), np.zeros((0, self.k),
                                                        np.float32)
    return np.concatenate(ids), np.concatenate(scores)

  # ------------------------------------------------------------- serving
  def signatures(self) -> Dict[str, Any]:
    """The serving signatures (module docstring), traced on the TF path."""
    spec = self.encoder.spec
    exclude_ids = tf.TensorSpec([None, None], tf.int64, name="exclude")

    def by_ids(features, exclude):
      ids, scores = self.recommend(features, exclude)
      return {"item_ids": ids, "scores": scores}

    fns = {RECOMMEND_IDS: tf.function(
        by_ids, autograph=False,
        input_signature=[user_input_signature(spec), exclude_ids]
    ).get_concrete_function()}
    if self.raw_ids is not None:

      def by_raw(features, exclude):
        ids, scores = self.recommend_raw(features, exclude)
        return {"item_ids": ids, "scores": scores}

      fns[RECOMMEND] = tf.function(
          by_raw, autograph=False,
          input_signature=[self.raw_ids.input_signature(),
                           self.raw_ids.exclude_spec()]
      ).get_concrete_function()
    else:
      fns[RECOMMEND] = fns[RECOMMEND_IDS]
    fns["serving_default"] = fns[RECOMMEND]
    track_captured(self, fns.values())
    return fns
