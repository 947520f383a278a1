"""Fusion: one list of ``k`` items from the U2I, U2U and I2I lists.

Two rules (``FusionConfig.mode``); ``weights`` lists the channels in
priority order (default ``u2i: 0.5, u2u: 0.25, i2i: 0.25``):

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
"""

import dataclasses
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mic_tf.channels import ranking

NAME = "fused"
MODES = ("quota", "score")
NORMALIZATIONS = ("minmax", "rank")
FUSABLE = ("u2i", "u2u", "i2i")


def _default_weights() -> Dict[str, float]:
  return {"u2i": 0.5, "u2u": 0.25, "i2i": 0.25}


@dataclasses.dataclass(frozen=True)
class FusionConfig:
  """How the channels are fused (see the module docstring).

  Attributes:
    mode: ``"quota"`` or ``"score"``.
    weights: Channel name -> share / weight (``> 0``), in priority order
      (a mapping, or ``[channel, weight]`` pairs, the form ``to_dict``
      writes so that JSON key sorting cannot change the priority).
    normalization: ``"minmax"`` or ``"rank"`` (``mode="score"`` only).
  """
  mode: str = "quota"
  weights: Mapping[str, float] = dataclasses.field(
      default_factory=_default_weights)
  normalization: str = "minmax"

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
    object.__setattr__(self, "weights", dict(weights))
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

  def to_dict(self) -> Dict[str, object]:
    return {"mode": self.mode,
            "weights": [[c, w] for c, w in self.weights.items()],
            "normalization": self.normalization}


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
  batch = tf.shape(ids[0])[0]
  all_rows, all_items, all_values = [], [], []
  for channel_ids, channel_scores, w in zip(ids, scores, weights):
    channel_ids = tf.cast(channel_ids, tf.int64)
    norm = _normalize(channel_ids, tf.cast(channel_scores, tf.float32),
                      normalization) * (w / total)
    width = tf.shape(channel_ids)[1]
    all_rows.append(tf.repeat(tf.range(tf.cast(batch, tf.int64)), width))
    all_items.append(tf.reshape(channel_ids, [-1]))
    all_values.append(tf.reshape(norm, [-1]))
  rows = tf.concat(all_rows, 0)
  items = tf.concat(all_items, 0)
  values = tf.concat(all_values, 0)
  keep = items > 0
  rows, items, values = ranking.aggregate(
      tf.boolean_mask(rows, keep), tf.boolean_mask(items, keep),
      tf.boolean_mask(values, keep), reduce="sum")
  return ranking.top_k_per_row(rows, items, values, batch, k)


def fuse(results: Mapping[str, Tuple[np.ndarray, np.ndarray]],
         config: FusionConfig, k: int) -> Tuple[np.ndarray, np.ndarray]:
  """Fuses already retrieved channel lists (numpy in, numpy out).

  Args:
    results: Channel name -> ``(ids, scores)``, ``(n, L_c)`` each; must hold
      every channel of ``config.weights``.
    config: The ``FusionConfig``.
    k: Length of the fused list.

  Returns:
    ``(ids, scores)``, ``(n, k)``.

  Raises:
    ValueError: If a weighted channel is missing from ``results``.
  """
  missing = [c for c in config.channels if c not in results]
  if missing:
    raise ValueError(f"Fusion needs the lists of {missing}; retrieve those "
                     "channels first or drop them from FusionConfig.weights.")
  ids = [tf.constant(results[c][0]) for c in config.channels]
  weights = [config.weights[c] for c in config.channels]
  if config.mode == "quota":
    out = _fuse_quota(ids, weights, k)
  else:
    scores = [tf.constant(results[c][1]) for c in config.channels]
    out = _fuse_scores(ids, scores, weights, k, config.normalization)
  return out[0].numpy(), out[1].numpy()


_fuse_quota = tf.function(fuse_quota, reduce_retracing=True,
                           autograph=False)
_fuse_scores = tf.function(fuse_scores, reduce_retracing=True,
                            autograph=False)
