"""What the three channels retrieve from: precomputed vectors and their indexes.

``ChannelAssets`` holds, for a trained model, every vector the channels
search or score with (all L2-normalised, all compared by cosine):

* ``item_shared``: items in the shared user-item space (U2I; the user-item
  cosine of U2U and I2I).
* ``item_space``: items in the item space (I2I).
* ``train_user_space``: the training users in the user space (U2U), each
  encoded from the last ``maxlen`` items of the user's full training
  sequence and the user's attributes.
* ``train_sequences``: those users' full training sequences (U2U's
  candidates).

``ChannelIndexes`` holds the three nearest-neighbour indexes over them (exact
or ScaNN, ``mic_tf.indexes``), and saves / loads them together.
"""

import dataclasses
import json
import os
from typing import Dict, List, Mapping, Optional

import numpy as np

from mic_tf import features as F
from mic_tf import indexes
from mic_tf.data.dataset import ProcessedDataset
from mic_tf.models import encode

INDEX_KINDS = ("exact", "scann")
#: Index name -> channel that searches it.
INDEX_CHANNELS = {"items": "u2i", "users": "u2u", "item_space": "i2i"}


@dataclasses.dataclass
class ChannelAssets:
  """Precomputed vectors of one trained model (see the module docstring).

  Attributes:
    item_shared: ``(num_items, d_s)`` float32; row 0 (padding) is zero.
    item_space: ``(num_items, d_i)`` float32; row 0 is zero.
    train_users: ``(T,)`` int64 training user ids, ascending.
    train_user_space: ``(T, d_u)`` float32, row ``r`` for ``train_users[r]``.
    train_sequences: ``T`` int arrays, each training user's full sequence.
  """
  item_shared: np.ndarray
  item_space: np.ndarray
  train_users: np.ndarray
  train_user_space: np.ndarray
  train_sequences: List[np.ndarray]

  def __post_init__(self):
    self.train_users = np.asarray(self.train_users, np.int64)
    if self.item_shared.shape[0] != self.item_space.shape[0]:
      raise ValueError(
          f"item_shared has {self.item_shared.shape[0]} rows and item_space "
          f"{self.item_space.shape[0]}: both must have one row per item id.")
    if not (len(self.train_users) == len(self.train_user_space) ==
            len(self.train_sequences)):
      raise ValueError(
          "train_users, train_user_space and train_sequences must have one "
          f"entry per training user; got {len(self.train_users)}, "
          f"{len(self.train_user_space)} and {len(self.train_sequences)}.")
    if np.any(np.diff(self.train_users) <= 0):
      raise ValueError("train_users must be strictly ascending.")

  @property
  def num_items(self) -> int:
    return int(self.item_shared.shape[0])

  def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
    """Row of each training user id in ``train_*``; -1 for others / -1."""
    user_ids = np.asarray(user_ids, np.int64)
    pos = np.searchsorted(self.train_users, user_ids)
    pos = np.minimum(pos, len(self.train_users) - 1)
    found = (user_ids >= 0) & (self.train_users[pos] == user_ids)
    return np.where(found, pos, -1)


def build_channel_assets(model, tables: F.FeatureTables,
                         dataset: ProcessedDataset,
                         batch_size: int = 1024) -> ChannelAssets:
  """Encodes the item pool and the training users with a trained model.

  Args:
    model: A trained ``MICModel``.
    tables: The run's feature tables.
    dataset: The run's processed dataset.
    batch_size: Users per forward pass.

  Returns:
    The ``ChannelAssets``.
  """
  train_users = np.sort(np.asarray(dataset.train_users, np.int64))
  sequences = [np.asarray(dataset.sequences[u], np.int64) for u in train_users]
  maxlen = tables.spec.maxlen
  padded = np.stack([F.pad_history(s, len(s), maxlen) for s in sequences])
  feats = tables.user_features(train_users, padded)
  return ChannelAssets(
      item_shared=encode.encode_items(model, "shared"),
      item_space=encode.encode_items(model, "item"),
      train_users=train_users,
      train_user_space=encode.encode_users(model, feats, "user", batch_size),
      train_sequences=sequences)


@dataclasses.dataclass
class ChannelIndexes:
  """The channels' indexes.

  Attributes:
    items: Shared-space items, ids = item ids ``1 .. num_items-1`` (U2I).
    users: User-space training users, ids = user ids (U2U).
    item_space: Item-space items, ids = item ids (I2I).
  """
  items: indexes.Index
  users: indexes.Index
  item_space: indexes.Index

  def as_dict(self) -> Dict[str, indexes.Index]:
    return {name: getattr(self, name) for name in INDEX_CHANNELS}

  def save(self, directory: str) -> None:
    """Writes each index to ``directory/<name>`` (see ``Index.save``)."""
    os.makedirs(directory, exist_ok=True)
    for name, index in self.as_dict().items():
      index.save(os.path.join(directory, name))
    with open(os.path.join(directory, "channel_indexes.json"), "w") as f:
      json.dump({"indexes": list(INDEX_CHANNELS)}, f)

  @classmethod
  def load(cls, directory: str) -> "ChannelIndexes":
    """Reads indexes written by ``save``.

    Raises:
      FileNotFoundError: If ``directory`` holds no saved channel indexes.
    """
    if not os.path.isfile(os.path.join(directory, "channel_indexes.json")):
      raise FileNotFoundError(
          f"{directory!r} holds no channel indexes: pass a directory written "
          "by ChannelIndexes.save.")
    return cls(**{name: indexes.load_index(os.path.join(directory, name))
                  for name in INDEX_CHANNELS})


def build_channel_indexes(
    assets: ChannelAssets, kind: str = "exact", k: int = 50,
    scann_configs: Optional[Mapping[str, indexes.ScannConfig]] = None
) -> ChannelIndexes:
  """Builds the three indexes over the assets.

  Args:
    assets: The ``ChannelAssets``.
    kind: ``"exact"`` (``BruteForceIndex``) or ``"scann"`` (``ScannIndex``).
    k: Typical number of neighbours, used to size ``ScannConfig.auto``.
    scann_configs: Optional index name (``"items"``, ``"users"``,
      ``"item_space"``) -> ``ScannConfig`` for ``kind="scann"``; missing
      names use ``ScannConfig.auto(size, k)`` (exact float scoring below
      20k rows).

  Returns:
    The ``ChannelIndexes``.

  Raises:
    ValueError: On an unknown kind or config name.
  """
  if kind not in INDEX_KINDS:
    raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}.")
  scann_configs = dict(scann_configs or {})
  unknown = sorted(set(scann_configs) - set(INDEX_CHANNELS))
  if unknown:
    raise ValueError(f"Unknown index name(s) {unknown} in scann_configs; use "
                     f"{list(INDEX_CHANNELS)}.")
  if scann_configs and kind != "scann":
    raise ValueError("scann_configs were given with kind='exact'; pass "
                     "kind='scann' or drop them.")
  item_ids = np.arange(1, assets.num_items, dtype=np.int64)
  tables = {
      "items": (assets.item_shared[1:], item_ids),
      "users": (assets.train_user_space, assets.train_users),
      "item_space": (assets.item_space[1:], item_ids),
  }
  built = {}
  for name, (vectors, ids) in tables.items():
    if kind == "exact":
      built[name] = indexes.make_index("exact", vectors, ids)
    else:
      config = scann_configs.get(name) or indexes.ScannConfig.auto(
          len(vectors), k)
      built[name] = indexes.make_index("scann", vectors, ids,
                                       scann_config=config)
  return ChannelIndexes(**built)
