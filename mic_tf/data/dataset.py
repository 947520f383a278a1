"""The two data contracts every loader and every later stage agree on.

``RawDataset`` is what a loader returns: interactions with the dataset's own
ids, plus optional user and item attribute tables. ``ProcessedDataset`` is what
the ComiRec protocol (``mic_tf.data.protocol``) makes of it: integer ids,
time-ordered sequences and the train/valid/test user split.
"""

import dataclasses
from typing import Dict, List, Optional

import numpy as np
import pandas as pd


@dataclasses.dataclass
class RawDataset:
  """Interactions as a loader read them, before any filtering.

  Attributes:
    name: Dataset name, e.g. ``"ml-1m"``.
    interactions: DataFrame with columns ``user``, ``item``, ``timestamp``
      (raw ids of any hashable type, timestamps numeric), one row per event,
      in file order.
    user_features: Optional DataFrame indexed by raw user id; each column is a
      categorical attribute (values of any hashable type, missing as NaN).
    item_features: Optional DataFrame indexed by raw item id; each column is
      either a categorical attribute or, for columns listed in
      ``item_bag_columns``, a list of tokens (for example genres).
    item_bag_columns: Names of ``item_features`` columns holding token lists.
  """
  name: str
  interactions: pd.DataFrame
  user_features: Optional[pd.DataFrame] = None
  item_features: Optional[pd.DataFrame] = None
  item_bag_columns: List[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ProcessedDataset:
  """A dataset after the ComiRec protocol: integer ids and a user split.

  Id conventions (used everywhere downstream):
    * Items: ``1 .. num_items - 1`` in descending training-pool popularity
      (count of kept interactions); ``0`` is padding.
    * Users: ``0 .. num_users - 1`` (array positions, no padding slot).
    * Attribute values: ``1 .. vocab - 1``; ``0`` means missing/padding.

  Attributes:
    name: Dataset name.
    num_items: Item vocabulary size including the padding id 0.
    sequences: ``sequences[u]`` is user ``u``'s item ids, stably sorted by
      timestamp (int32 array).
    train_users, valid_users, test_users: Disjoint int32 arrays of user ids.
    user_features: Field name -> int32 array of shape ``(num_users,)``.
    user_vocab_sizes: Field name -> vocabulary size (including 0).
    item_features: Field name -> int32 array of shape ``(num_items,)`` for a
      categorical field or ``(num_items, L)`` zero-padded for a bag field; row
      0 (the padding item) is all zeros.
    item_vocab_sizes: Field name -> vocabulary size (including 0).
    raw_user_ids: Raw id of each user (object array, length num_users).
    raw_item_ids: Raw id of each item id (object array, length num_items;
      entry 0 is None).
    user_vocabs: User field name -> raw value of each code (object array,
      length ``user_vocab_sizes[name]``; entry 0, "missing", is None). Used
      to serve raw attribute values.
    train_user_fraction: The fraction of the protocol's training users kept
      in ``train_users`` (``mic_tf.data.subsample``); 1.0: all of them.
  """
  name: str
  num_items: int
  sequences: List[np.ndarray]
  train_users: np.ndarray
  valid_users: np.ndarray
  test_users: np.ndarray
  user_features: Dict[str, np.ndarray]
  user_vocab_sizes: Dict[str, int]
  item_features: Dict[str, np.ndarray]
  item_vocab_sizes: Dict[str, int]
  raw_user_ids: np.ndarray
  raw_item_ids: np.ndarray
  user_vocabs: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
  train_user_fraction: float = 1.0

  @property
  def num_users(self) -> int:
    return len(self.sequences)

  @property
  def num_interactions(self) -> int:
    return int(sum(len(s) for s in self.sequences))
