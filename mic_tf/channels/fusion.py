"""Fusion: one list of ``k`` items from the channels' lists.

Any of the learned (U2I, U2U, I2I) and classical (ItemKNN, UserKNN, EASE)
channels may be fused.

Three rules (``FusionConfig.mode``); ``weights`` lists the channels in
priority order (default ``u2i: 0.5, u2u: 0.25, i2i: 0.25``). A config with
one channel is that channel's own list, so the fusion tuned on validation
users (``mic_tf.channels.tuning``, which always offers the single channels)
is never worse there than the best single channel.

``"quota"``: channel ``c`` gets ``q_c`` of the ``k`` slots, ``q_c`` being
``k * w_c / sum(w)`` rounded by the largest-remainder method (``quotas``;
remainder ties go to the higher-priority channel), e.g. ``k = 50`` gives
``25 / 13 / 12`` and ``k = 20`` gives ``10 / 5 / 5``.

1. Quota: in priority order, channel ``c`` takes its best ``q_c`` items
   not taken by a higher-priority channel (duplicates are skipped, so the
   channel reaches further down its own list).
2. Fill: while fewer than ``k`` items are taken (a channel ran out of
   items), channels in priority order add their next untaken items.
3. Order: the ``j``-th item (0-based) taken from channel ``c``, which
   contributed ``n_c`` items in total, gets the key ``(j + 0.5) / n_c``;
   the list is sorted by key, ties by channel priority. The channels are
   thus interleaved in proportion to their shares, so every prefix (e.g.
   the top 20 of a 50-item list) holds about the same mix.
   The returned score of position ``p`` is ``(k - p) / k``.

``"score"``: each channel's scores are normalised per user, then
``fused(i) = sum_c w_c * norm_c(i) / sum(w)`` (0 for channels that did not
return ``i``), and the ``k`` best items remain (ties: smaller id).

* ``normalization="minmax"``: ``(s - min) / (max - min)`` over the user's
  returned items of that channel (1 when all are equal).
* ``normalization="rank"``: ``(L - p) / L`` for the item at 0-based
  position ``p`` of a list of width ``L``.

``"rrf"`` (reciprocal rank fusion, Cormack et al. 2009):
``fused(i) = sum_c w_c / (rrf_k + p_c(i) + 1) / sum(w)`` over the channels
that returned ``i`` at 0-based position ``p_c(i)``; the ``k`` best remain
(ties: smaller id). ``rrf_k`` (default 60) damps the weight of the top
positions.

``FusedChannel`` is the fused channel as a ``Channel``: it holds the
channels it fuses and fuses their ranked lists.
"""

import dataclasses
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import names
from mic_tf.channels import ranking
from mic_tf.channels.base import Channel
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.raw_ids import RawIds

MODES = ("quota", "score", "rrf")
NORMALIZATIONS = ("minmax", "rank")
FUSABLE = names.FUSABLE


def _default_weights() -> Dict[str, float]:
  return {"u2i": 0.5, "u2u": 0.25, "i2i": 0.25}


@dataclasses.dataclass(frozen=True)
class FusionConfig:
  """How the channels are fused (see the module docstring).

  Attributes:
    mode: ``"quota"``, ``"score"`` or ``"rrf"``.
    weights: Channel name -> share / weight (``> 0``), in priority order
      (a mapping, or ``[channel, weight]`` pairs, the form ``to_dict``
      writes so that JSON key sorting cannot change the priority). Weights
      of 0 drop the channel.
    normalization: ``"minmax"`` or ``"rank"`` (``mode="score"`` only).
    rrf_k: The constant of reciprocal rank fusion (``mode="rrf"`` only).
  """
  mode: str = "quota"
  weights: Mapping[str, float] = dataclasses.field(
      default_factory=_default_weights)
  normalization: str = "minmax"
  rrf_k: float = 60.0

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}.")
    if self.normalization not in NORMALIZATIONS:
      raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                       f"{self.normalization!r}.")
    weights = self.weights
    if isinstance(weights, (list, tuple)):  # [[channel, weight], ...]
      try:
        weights = {str(c): float(w) for c, w in weights}
      except (TypeError, ValueError):
        raise ValueError(
            f"weights must be a mapping or [channel, weight] pairs, got "
            f"{self.weights!r}.") from None
    object.__setattr__(self, "weights",
                       {c: float(w) for c, w in dict(weights).items()
                        if float(w) != 0.0})
    if not self.rrf_k >= 0:
      raise ValueError(f"rrf_k must be >= 0, got {self.rrf_k}.")
    if not self.weights:
      raise ValueError("weights is empty: give at least one channel, e.g. "
                       "{'u2i': 0.5, 'u2u': 0.25, 'i2i': 0.25}.")
    unknown = [c for c in self.weights if c not in FUSABLE]
    if unknown:
      raise ValueError(f"Cannot fuse unknown channel(s) {unknown}; weights "
                       f"may name {FUSABLE}.")
    bad = {c: w for c, w in self.weights.items() if not w > 0}
    if bad:
      raise ValueError(f"Fusion weights must be > 0, got {bad}; drop a "
                       "channel from weights to leave it out.")

  @property
  def channels(self) -> Tuple[str, ...]:
    return tuple(self.weights)

  @property
  def is_single(self) -> bool:
    """Whether this "fusion" is one channel's own list."""
    return len(self.weights) == 1

  def describe(self) -> str:
    """E.g. ``"rrf u2i:1 u2u:2"`` or ``"u2u alone"``."""
    if self.is_single:
      return f"{self.channels[0]} alone"
    mode = (f"score/{self.normalization}" if self.mode == "score" else
            self.mode)
    return mode + " " + " ".join(f"{c}:{w:g}" for c, w in
                                 self.weights.items())

  def to_dict(self) -> Dict[str, object]:
    return {"mode": self.mode,
            "weights": [[c, w] for c, w in self.weights.items()],
            "normalization": self.normalization, "rrf_k": self.rrf_k}


def quotas(k: int, weights: Sequence[float]) -> List[int]:
  """Largest-remainder split of ``k`` slots in proportion to ``weights``.

  Args:
    k: Slots.
    weights: Positive weights, in priority order.

  Returns:
    Non-negative integers summing to ``k``; remainder ties go to the earlier
    channel.

  Raises:
    ValueError: On a negative ``k`` or non-positive weights.
  """
  if k < 0:
    raise ValueError(f"k must be >= 0, got {k}.")
  w = np.asarray(weights, np.float64)
  if w.size == 0 or np.any(w <= 0):
    raise ValueError(f"weights must be positive, got {list(weights)}.")
  exact = k * w / w.sum()
  base = np.floor(exact + 1e-9).astype(int)
  remainder = exact - base
  # Largest remainder first, earlier channel first among equal remainders.
  order = sorted(range(len(w)), key=lambda c: (-round(remainder[c], 9), c))
  for c in order[:k - int(base.sum())]:
    base[c] += 1
  return [int(b) for b in base]


def _taken(candidates: tf.Tensor, taken: tf.Tensor) -> tf.Tensor:
  """``(B, L)``: whether each candidate id already is in ``taken (B, T)``."""
  return tf.reduce_any(
      candidates[:, :, tf.newaxis] == taken[:, tf.newaxis, :], axis=2)


def fuse_quota(ids: Sequence[tf.Tensor], weights: Sequence[float],
               k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Quota fusion (module docstring), in TensorFlow.

  Args:
    ids: One ``(B, L_c)`` tensor of ranked ids per channel, in priority
      order; ids ``<= 0`` are padding; ids are distinct within a list.
    weights: The channels' shares.
    k: Length of the fused list.

  Returns:
    ``(ids, scores)``, ``(B, k)``.
  """
  shares = quotas(k, weights)
  ids = [tf.cast(x, tf.int64) for x in ids]
  batch = tf.shape(ids[0])[0]
  taken = tf.zeros([batch, 0], tf.int64)
  entries, channel_of, position = [], [], []
  counts = [tf.zeros([batch], tf.int32) for _ in ids]

  def take(c, limit):
    nonlocal taken
    free = (ids[c] > 0) & ~_taken(ids[c], taken)
    order = tf.cumsum(tf.cast(free, tf.int32), axis=1)  # 1-based
    chosen = free & (order <= limit[:, tf.newaxis])
    picked = tf.where(chosen, ids[c], ranking.PAD_ID)
    entries.append(picked)
    channel_of.append(tf.fill(tf.shape(picked), c))
    position.append(order - 1 + counts[c][:, tf.newaxis])
    number = tf.reduce_sum(tf.cast(chosen, tf.int32), axis=1)
    counts[c] += number
    taken = tf.concat([taken, picked], axis=1)
    return number

  for c, share in enumerate(shares):
    take(c, tf.fill([batch], share))
  remaining = k - tf.add_n(counts)
  for c in range(len(ids)):
    remaining -= take(c, remaining)

  picked = tf.concat(entries, axis=1)
  channel = tf.concat(channel_of, axis=1)
  j = tf.cast(tf.concat(position, axis=1), tf.float32)
  n = tf.cast(tf.gather(tf.stack(counts, axis=1), channel, batch_dims=1),
              tf.float32)
  key = tf.where(picked > 0, (j + 0.5) / tf.maximum(n, 1.0), np.inf)
  # Lexicographic (key, channel): stable sort by channel, then by key.
  by_channel = tf.argsort(channel, axis=1, stable=True)
  key = tf.gather(key, by_channel, batch_dims=1)
  picked = tf.gather(picked, by_channel, batch_dims=1)
  order = tf.argsort(key, axis=1, stable=True)[:, :k]
  fused = tf.gather(picked, order, batch_dims=1)
  slots = tf.shape(fused)[1]
  rank_score = (k - tf.cast(tf.range(slots), tf.float32)) / float(max(k, 1))
  scores = tf.where(fused > 0, rank_score[tf.newaxis, :], ranking.NEG_INF)
  return ranking.pad_to_k(fused, scores, k)


def _normalize(ids: tf.Tensor, scores: tf.Tensor, how: str) -> tf.Tensor:
  """Per-user normalised scores of one channel's ``(B, L)`` list."""
  valid = (ids > 0) & tf.math.is_finite(scores)
  if how == "rank":
    width = tf.cast(tf.shape(ids)[1], tf.float32)
    position = tf.cast(tf.range(tf.shape(ids)[1]), tf.float32)
    return tf.where(valid, ((width - position) / width)[tf.newaxis], 0.0)
  high = tf.reduce_max(tf.where(valid, scores, -np.inf), axis=1,
                       keepdims=True)
  low = tf.reduce_min(tf.where(valid, scores, np.inf), axis=1, keepdims=True)
  spread = high - low
  norm = tf.where(spread > 0, (scores - low) / tf.where(spread > 0, spread,
                                                          1.0), 1.0)
  return tf.where(valid, norm, 0.0)


def fuse_scores(ids: Sequence[tf.Tensor], scores: Sequence[tf.Tensor],
                weights: Sequence[float], k: int,
                normalization: str = "minmax"
                ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Score-normalised fusion (module docstring), in TensorFlow.

  Args:
    ids: One ``(B, L_c)`` ranked id tensor per channel; ``<= 0`` padding.
    scores: Their scores.
    weights: The channels' weights.
    k: Length of the fused list.
    normalization: ``"minmax"`` or ``"rank"``.

  Returns:
    ``(ids, scores)``, ``(B, k)``.

  Raises:
    ValueError: On an unknown normalisation.
  """
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got "
                     f"{normalization!r}.")
  total = float(sum(weights))
  values = []
  for channel_ids, channel_scores, w in zip(ids, scores, weights):
    values.append(_normalize(tf.cast(channel_ids, tf.int64),
                             tf.cast(channel_scores, tf.float32),
                             normalization) * (w / total))
  return _sum_and_cut(ids, values, k)


def fuse_rrf(ids: Sequence[tf.Tensor], weights: Sequence[float], k: int,
             rrf_k: float = 60.0) -> Tuple[tf.Tensor, tf.Tensor]:
  """Reciprocal rank fusion (module docstring), in TensorFlow.

  Args:
    ids: One ``(B, L_c)`` ranked id tensor per channel; ``<= 0`` padding.
    weights: The channels' weights.
    k: Length of the fused list.
    rrf_k: The damping constant.

  Returns:
    ``(ids, scores)``, ``(B, k)``.
  """
  total = float(sum(weights))
  values = []
  for channel_ids, w in zip(ids, weights):
    position = tf.cast(tf.range(tf.shape(channel_ids)[1]), tf.float32)
    value = (w / total) / (rrf_k + position + 1.0)
    values.append(tf.broadcast_to(value[tf.newaxis], tf.shape(channel_ids)))
  return _sum_and_cut(ids, values, k)


def _sum_and_cut(ids: Sequence[tf.Tensor], values: Sequence[tf.Tensor],
                 k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Sums each item's per-channel values per row; the ``k`` best per row.

  Args:
    ids: One ``(B, L_c)`` id tensor per channel; ``<= 0`` padding.
    values: The matching ``(B, L_c)`` float32 values.
    k: Length of the fused list.
  """
  batch = tf.shape(ids[0])[0]
  rows, items = [], []
  for channel_ids in ids:
    width = tf.shape(channel_ids)[1]
    rows.append(tf.repeat(tf.range(tf.cast(batch, tf.int64)), width))
    items.append(tf.reshape(tf.cast(channel_ids, tf.int64), [-1]))
  rows, items = tf.concat(rows, 0), tf.concat(items, 0)
  values = tf.concat([tf.reshape(v, [-1]) for v in values], 0)
  keep = items > 0
  rows, items, values = ranking.aggregate(
      tf.boolean_mask(rows, keep), tf.boolean_mask(items, keep),
      tf.boolean_mask(values, keep), reduce="sum")
  return ranking.top_k_per_row(rows, items, values, batch, k)


def fuse_lists(lists: Mapping[str, Tuple[tf.Tensor, tf.Tensor]],
               config: FusionConfig, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Fuses ranked channel lists with ``config`` (TensorFlow in and out).

  Args:
    lists: Channel name -> ``(ids, scores)``, ``(B, L_c)`` each; must hold
      every channel of ``config.weights``.
    config: The ``FusionConfig``.
    k: Length of the fused list.

  Returns:
    ``(ids, scores)``, ``(B, k)``.

  Raises:
    ValueError: If a weighted channel is missing from ``lists``.
  """
  missing = [c for c in config.channels if c not in lists]
  if missing:
    raise ValueError(f"Fusion needs the lists of {missing}; retrieve those "
                     "channels first or drop them from FusionConfig.weights.")
  ids = [lists[c][0] for c in config.channels]
  weights = [config.weights[c] for c in config.channels]
  if config.mode == "quota":
    return fuse_quota(ids, weights, k)
  if config.mode == "rrf":
    return fuse_rrf(ids, weights, k, config.rrf_k)
  scores = [lists[c][1] for c in config.channels]
  return fuse_scores(ids, scores, weights, k, config.normalization)


class FusedChannel(Channel):
  """The fused channel: the lists of its member channels, fused.

  Args:
    encoder: The model's ``UserEncoder`` (the members' too).
    members: Channel name -> ``Channel``; must hold every channel of
      ``config.weights``, each with this ``k``.
    config: ``FusionConfig``.
    k: Items per user.
    exclude_history: Never return the ``history`` items.
    raw_ids: Optional ``RawIds`` (raw-id serving).

  Raises:
    ValueError: If a member is missing or has another ``k``.
  """

  NAME = names.FUSED

  def __init__(self, encoder: UserEncoder, members: Mapping[str, Channel],
               config: Optional[FusionConfig] = None, k: int = 50,
               exclude_history: bool = True,
               raw_ids: Optional[RawIds] = None):
    super().__init__(encoder, k, exclude_history, raw_ids)
    self.config = config or FusionConfig()
    missing = [c for c in self.config.channels if c not in members]
    if missing:
      raise ValueError(f"The fusion weights name {missing} but no such "
                       "member channel was given.")
    self.members = {c: members[c] for c in self.config.channels}
    for c, member in self.members.items():
      if member.k != self.k or member.exclude_history != exclude_history:
        raise ValueError(
            f"Member {c} has k={member.k}, exclude_history="
            f"{member.exclude_history}; the fused channel needs "
            f"k={self.k}, exclude_history={exclude_history}.")

  @property
  def searchers(self):
    return [i for m in self.members.values() for i in m.searchers]

  def search(self, users: EncodedUsers, exclude: tf.Tensor,
             numpy: bool = False) -> Dict[str, Any]:
    return {c: m.search(users, exclude, numpy)
            for c, m in self.members.items()}

  def rank(self, users: EncodedUsers, searched: Mapping[str, Any],
           exclude: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    lists = {c: m.rank(users, searched[c], exclude)
             for c, m in self.members.items()}
    return fuse_lists(lists, self.config, self.k)
