"""The pools that are mined: all training users and all items.

A training user is represented as at the end of its training sequence: its
attributes plus its last ``maxlen`` training items as history (the same
features ``features.FeatureTables.user_features`` builds for evaluation).
Items are every id ``1 .. num_items - 1`` (0 is padding).
"""

from typing import Dict, Tuple

import numpy as np

from mic_tf import features as F
from mic_tf.data.dataset import ProcessedDataset


def training_user_pool(tables: F.FeatureTables, dataset: ProcessedDataset
                       ) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
  """User ids and user-tower features of every training user.

  Args:
    tables: Feature tables from ``features.build_feature_tables``.
    dataset: The processed dataset the tables were built from.

  Returns:
    ``(user_ids, features)``: sorted int32 ids ``(n,)`` of the training users
    and the user feature arrays (``n`` rows each), history = the user's last
    ``maxlen`` training items.

  Raises:
    ValueError: If the dataset has no training users.
  """
  users = np.sort(np.asarray(dataset.train_users, np.int64))
  if users.size == 0:
    raise ValueError("The dataset has no training users to mine; check the "
                     "split.")
  maxlen = tables.spec.maxlen
  histories = np.zeros((len(users), maxlen), np.int32)
  for row, u in enumerate(users):
    seq = np.asarray(dataset.sequences[u])
    tail = seq[-maxlen:]
    if len(tail):
      histories[row, maxlen - len(tail):] = tail
  return users.astype(np.int32), tables.user_features(users, histories)


def item_pool_ids(num_items: int) -> np.ndarray:
  """Every real item id ``1 .. num_items - 1`` (int32).

  Raises:
    ValueError: If there is no real item.
  """
  if num_items < 2:
    raise ValueError(f"num_items={num_items} leaves no real item (id 0 is "
                     "padding).")
  return np.arange(1, num_items, dtype=np.int32)
