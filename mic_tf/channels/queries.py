"""``ChannelQueries``: what every channel needs to know about the users served.

* ``shared``: the user queries in the shared user-item space (U2I, and the
  user-item cosine of U2U and I2I), ``(n, K, d)`` with ``K = 1`` for a
  single-interest tower; unit vectors.
* ``user_space``: one unit vector per user in the user space (U2U); a
  multi-interest user is the mean of its unit interests, re-normalised.
* ``history``: the padded ``history`` feature ``(n, maxlen)``, oldest first
  (I2I's source items).
* ``exclude``: item ids never to return, ``(n, E)``, 0-padded (``E`` may be
  0): the users' full input histories when history exclusion is on.
"""

import dataclasses
from typing import Iterator, Mapping, Optional, Sequence

import numpy as np

from mic_tf import features as F
from mic_tf.channels import ranking
from mic_tf.models import encode


@dataclasses.dataclass
class ChannelQueries:
  """Precomputed inputs of the channels for ``n`` users (see module doc)."""
  shared: np.ndarray
  user_space: np.ndarray
  history: np.ndarray
  exclude: np.ndarray

  def __post_init__(self):
    self.shared = np.asarray(self.shared, np.float32)
    if self.shared.ndim == 2:
      self.shared = self.shared[:, None, :]
    if self.shared.ndim != 3:
      raise ValueError(
          f"shared queries must be (n, d) or (n, K, d), got shape "
          f"{self.shared.shape}.")
    self.user_space = np.asarray(self.user_space, np.float32)
    self.history = np.asarray(self.history, np.int64)
    self.exclude = np.asarray(self.exclude, np.int64)
    if self.exclude.ndim != 2:
      raise ValueError(
          f"exclude must be a 2-D 0-padded id matrix, got shape "
          f"{self.exclude.shape}; build it with ranking.pad_lists.")
    n = self.shared.shape[0]
    for name in ("user_space", "history", "exclude"):
      if getattr(self, name).shape[0] != n:
        raise ValueError(
            f"{name} has {getattr(self, name).shape[0]} rows but shared has "
            f"{n}: every field needs one row per user.")

  @property
  def size(self) -> int:
    return int(self.shared.shape[0])

  @property
  def max_excluded(self) -> int:
    """Longest exclusion list (0-padding not counted)."""
    if self.exclude.size == 0:
      return 0
    return int((self.exclude > 0).sum(axis=1).max())

  def slice(self, start: int, stop: int) -> "ChannelQueries":
    """Rows ``start:stop``; trailing all-padding exclusion columns dropped."""
    exclude = self.exclude[start:stop]
    used = np.flatnonzero((exclude > 0).any(axis=0))
    width = int(used[-1]) + 1 if used.size else 1  # drop all-padding tail
    return ChannelQueries(self.shared[start:stop], self.user_space[start:stop],
                          self.history[start:stop], exclude[:, :width])

  def batches(self, batch_size: int) -> Iterator["ChannelQueries"]:
    for start in range(0, self.size, batch_size):
      yield self.slice(start, min(start + batch_size, self.size))


def encode_queries(model, features: Mapping[str, np.ndarray],
                   exclude: Optional[Sequence[np.ndarray]] = None,
                   batch_size: int = 1024) -> ChannelQueries:
  """Encodes users with a trained ``MICModel`` into ``ChannelQueries``.

  Args:
    model: A ``MICModel``.
    features: User feature arrays (e.g. ``EvalUsers.features``), including
      the padded ``history``.
    exclude: Optional per-user item ids never to return (e.g.
      ``EvalUsers.histories``); None excludes nothing.
    batch_size: Users per forward pass.

  Returns:
    The ``ChannelQueries``.

  Raises:
    ValueError: If ``features`` has no ``history`` field.
  """
  if F.HISTORY not in features:
    raise ValueError(
        f"features has no {F.HISTORY!r} field (got {sorted(features)}); the "
        "I2I channel reads its source items from it.")
  shared = encode.encode_users(model, features, "shared", batch_size)
  user_space = encode.encode_users(model, features, "user", batch_size)
  n = shared.shape[0]
  if exclude is None:
    exclude_matrix = np.zeros((n, 1), np.int64)
  else:
    if len(exclude) != n:
      raise ValueError(f"exclude has {len(exclude)} lists for {n} users.")
    exclude_matrix = ranking.pad_lists(exclude)
  return ChannelQueries(shared, user_space, features[F.HISTORY],
                        exclude_matrix)
