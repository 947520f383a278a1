"""Co-occurrence neighbours: the items the same training users chose.

``MICConfig(ii_positives="cooccurrence")`` gives the II term (eq. 6) a
positive that means "the same users chose both": instead of the other
perturbed view of the same item, a perturbed view of one of the item's most
co-chosen items. The table of those items is built here, once, from the
training users' histories only (never a valid or test user's items).

Similarity is ItemKNN's cosine over the binary training user-item matrix,
``c(i, j) / sqrt(c(i) c(j))`` (``mic_tf.baselines.ItemKNN``: one
implementation of it); each item keeps its ``k`` most similar items with a
positive similarity, best first, ties towards the lower id.
"""

import dataclasses
from typing import Sequence

import numpy as np

from mic_tf import baselines
from mic_tf.data.dataset import ProcessedDataset


@dataclasses.dataclass(frozen=True)
class ItemNeighbours:
  """Each item's co-occurrence neighbours.

  Attributes:
    ids: int32 ``(num_items, k)``; row ``i`` holds ``i``'s neighbours best
      first, then ``i`` itself in the slots it has no neighbour for (row 0,
      padding, is all 0).
    counts: int32 ``(num_items,)``: how many slots of each row are real
      neighbours (the rest are the item itself).
  """
  ids: np.ndarray
  counts: np.ndarray

  @property
  def k(self) -> int:
    return int(self.ids.shape[1])


def cooccurrence_neighbours(train_sequences: Sequence[np.ndarray],
                            num_items: int, k: int) -> ItemNeighbours:
  """The ``k`` most co-chosen items of every item.

  Args:
    train_sequences: Item id arrays of the training users only (0 =
      padding; repeats within a user count once).
    num_items: Item vocabulary size including padding id 0.
    k: Neighbours kept per item.

  Returns:
    The ``ItemNeighbours``.

  Raises:
    ValueError: On an id outside ``[0, num_items)`` or a bad ``k``.
  """
  model = baselines.ItemKNN(num_items, neighbourhood=k).fit(train_sequences)
  ids, _ = model.most_similar(k)
  counts = (ids >= 0).sum(axis=1).astype(np.int32)
  own = np.broadcast_to(np.arange(num_items)[:, np.newaxis], ids.shape)
  ids = np.where(ids >= 0, ids, own).astype(np.int32)
  return ItemNeighbours(ids=ids, counts=counts)


def training_sequences(dataset: ProcessedDataset) -> list:
  """Every training user's full sequence, by ascending user id."""
  users = np.sort(np.asarray(dataset.train_users, np.int64))
  return [np.asarray(dataset.sequences[u], np.int64) for u in users]


def dataset_neighbours(dataset: ProcessedDataset, num_items: int,
                       k: int) -> ItemNeighbours:
  """``cooccurrence_neighbours`` of the dataset's training users."""
  return cooccurrence_neighbours(training_sequences(dataset), num_items, k)
