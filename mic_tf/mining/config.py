"""``MiningConfig``: the settings of nearest-neighbour mining (paper 3.3.2).

Each mined channel has its own representation space and memory bank:

=======  ===========================  ==================================
channel  space (bank)                 mined samples
=======  ===========================  ==================================
``uu``   user space (user tower)      kNN users = positives; users of
                                      other k-means clusters = hard
                                      negatives
``ii``   item space (item tower)      the same for items
``ui``   shared user-item space       users retrieve items and items
                                      retrieve users (kNN = positives);
                                      k-means over users and items
                                      jointly, other clusters = hard
                                      negatives
=======  ===========================  ==================================

The exact loss formulas are in :mod:`mic_tf.mining.losses`.
"""

import dataclasses
import json
from typing import Any, Dict, Optional, Tuple

from mic_tf import names

#: The terms that can be mined, in mining order.
MINED_TERMS = (names.UU, names.II, names.UI)
HARD_NEGATIVE_POOLS = ("nearest_cluster", "other_clusters")
KMEANS_METRICS = ("cosine", "euclidean")


@dataclasses.dataclass
class MiningConfig:
  """Settings of nearest-neighbour mining.

  Attributes:
    channels: Mined channels, any subset of ``("uu", "ii", "ui")``; empty =
      no mining (the model is then exactly ``MICModel``). Each mined channel
      must also be a term of ``MICConfig.terms``.
    num_neighbours: k of the kNN positives: each anchor's mined positive is
      drawn uniformly from its k nearest neighbours (itself excluded).
    num_clusters: Number of k-means++ clusters per space.
    hard_negatives: Hard negatives sampled per anchor (0: none).
    hard_negative_pool: Where hard negatives come from: ``"nearest_cluster"``
      (uniformly from the other cluster whose centroid is closest to the
      anchor's, i.e. hard but never from the anchor's own cluster) or
      ``"other_clusters"`` (uniformly from every row outside the anchor's
      cluster).
    positive_weight: Weight ``w`` of the kNN-positive term; a mined
      channel's loss is ``L_c(with hard negatives) + w * L_c^nn``.
    refresh_every_steps: Also refresh the banks every this many training
      steps (None: only per epoch / at the start).
    refresh_every_epoch: Refresh the banks at the start of every epoch (the
      first refresh of a ``fit`` always happens).
    warmup_steps: No mining during the first this-many optimizer steps: the
      first refresh (which turns the mined terms on) waits until the towers
      have been trained that long, so kNN lists and clusters come from
      trained weights. 0: refresh at the start.
    kmeans_iterations: Maximum Lloyd iterations per refresh.
    kmeans_metric: ``"cosine"`` (spherical k-means) or ``"euclidean"``; both
      run on L2-normalised vectors.
    kmeans_sample_size: Fit the centroids on at most this many rows (seeded
      sample), then assign every row; None fits on all rows.
    index: Neighbour search: ``"exact"`` (``BruteForceIndex``), ``"scann"``
      (``ScannIndex`` sized by ``ScannConfig.auto``, as the channels) or
      ``"auto"`` (exact below 20k rows, a light ScaNN tree above; see
      ``mic_tf.mining.knn.mining_scann_config``).
    encode_batch_size: Rows per forward pass when encoding the pools.
    seed: Seed of the in-graph sampling and of k-means.
  """
  channels: Tuple[str, ...] = MINED_TERMS
  num_neighbours: int = 10
  num_clusters: int = 20
  hard_negatives: int = 4
  hard_negative_pool: str = "nearest_cluster"
  positive_weight: float = 1.0
  refresh_every_steps: Optional[int] = None
  refresh_every_epoch: bool = True
  warmup_steps: int = 0
  kmeans_iterations: int = 20
  kmeans_metric: str = "cosine"
  kmeans_sample_size: Optional[int] = 50_000
  index: str = "auto"
  encode_batch_size: int = 4096
  seed: int = 0

  def __post_init__(self):
    if isinstance(self.channels, str):
      raise ValueError(f"channels must be a sequence of names, got the string "
                       f"{self.channels!r}; write ({self.channels!r},).")
    unknown = sorted(set(self.channels) - set(MINED_TERMS))
    if unknown:
      raise ValueError(f"Unknown mining channel(s) {unknown}; choose from "
                       f"{MINED_TERMS} (or none to switch mining off).")
    # Canonical order, duplicates dropped.
    self.channels = tuple(c for c in MINED_TERMS if c in self.channels)
    _check_positive("num_neighbours", self.num_neighbours)
    _check_positive("kmeans_iterations", self.kmeans_iterations)
    _check_positive("encode_batch_size", self.encode_batch_size)
    if self.num_clusters < 2:
      raise ValueError(f"num_clusters must be >= 2 (hard negatives come from "
                       f"another cluster), got {self.num_clusters}.")
    if self.hard_negatives < 0:
      raise ValueError(f"hard_negatives must be >= 0 (0 disables them), got "
                       f"{self.hard_negatives}.")
    if self.hard_negative_pool not in HARD_NEGATIVE_POOLS:
      raise ValueError(f"hard_negative_pool must be one of "
                       f"{HARD_NEGATIVE_POOLS}, got "
                       f"{self.hard_negative_pool!r}.")
    if self.positive_weight < 0:
      raise ValueError(f"positive_weight must be >= 0, got "
                       f"{self.positive_weight}.")
    if self.refresh_every_steps is not None:
      _check_positive("refresh_every_steps", self.refresh_every_steps)
    if self.warmup_steps < 0:
      raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}.")
    if self.kmeans_metric not in KMEANS_METRICS:
      raise ValueError(f"kmeans_metric must be one of {KMEANS_METRICS}, got "
                       f"{self.kmeans_metric!r}.")
    if self.kmeans_sample_size is not None:
      if self.kmeans_sample_size < self.num_clusters:
        raise ValueError(
            f"kmeans_sample_size ({self.kmeans_sample_size}) must be at least "
            f"num_clusters ({self.num_clusters}), or None to fit on all rows.")
    if self.index not in names.INDEX_CHOICES:
      raise ValueError(f"index must be one of {names.INDEX_CHOICES}, got "
                       f"{self.index!r}.")

  @property
  def enabled(self) -> bool:
    """Whether any channel is mined."""
    return bool(self.channels)

  @classmethod
  def off(cls, **kwargs) -> "MiningConfig":
    """No mining: ``MinedMICModel`` then equals ``MICModel``."""
    return cls(channels=(), **kwargs)

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=1, sort_keys=True)

  @classmethod
  def from_dict(cls, d: Dict[str, Any]) -> "MiningConfig":
    return cls(**d)


def _check_positive(name: str, value: Any) -> None:
  if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
