"""Co-occurrence neighbours (``mic_tf.mining.cooccurrence``) against numpy."""

import numpy as np
import pytest

from mic_tf.mining import cooccurrence


def _reference(sequences, num_items, k):
  """Cosine over the binary training matrix, each item's top k by numpy."""
  x = np.zeros((len(sequences), num_items), np.float32)
  for u, seq in enumerate(sequences):
    for i in seq:
      if i > 0:
        x[u, i] = 1.0
  counts = x.T @ x
  norms = np.sqrt(np.diag(counts)).astype(np.float32)
  ids = np.zeros((num_items, k), np.int64)
  real = np.zeros(num_items, np.int64)
  for i in range(num_items):
    row = []
    for j in range(1, num_items):
      if j != i and counts[i, j] > 0:
        row.append((-(np.float32(counts[i, j]) / (norms[i] * norms[j])), j))
    row = [j for _, j in sorted(row)[:k]]  # best first, ties to lower id
    real[i] = len(row)
    ids[i] = row + [i] * (k - len(row))
  return ids, real


@pytest.mark.parametrize("k", [1, 3, 7])
def test_neighbours_equal_the_numpy_reference(k):
  rng = np.random.default_rng(0)
  num_items = 30
  # Popularity skew gives ties and items with few or no co-chosen items;
  # item 29 is never chosen, repeats and padding must not count.
  p = 1.0 / np.arange(1, num_items - 1)
  sequences = [np.concatenate([[0, 0], rng.choice(np.arange(1, num_items - 1),
                                                 size=rng.integers(1, 6),
                                                 p=p / p.sum())])
               for _ in range(40)]
  sequences[0] = np.array([3, 3, 5])
  got = cooccurrence.cooccurrence_neighbours(sequences, num_items, k)
  ids, real = _reference(sequences, num_items, k)
  np.testing.assert_array_equal(got.ids, ids)
  np.testing.assert_array_equal(got.counts, real)
  assert got.ids.dtype == np.int32 and got.k == k
  assert got.counts[0] == 0 and (got.ids[0] == 0).all()
  assert got.counts[num_items - 1] == 0
  assert (got.ids[num_items - 1] == num_items - 1).all()
  # The case padding exists for: full rows, and rows padded with the item.
  assert (got.counts == k).any()
  assert k == 1 or ((got.counts > 0) & (got.counts < k)).any()


def test_only_the_dataset_training_users_are_read():
  class _Dataset:
    sequences = [np.array([1, 2]), np.array([3, 4]), np.array([2, 1, 5])]
    train_users = np.array([2, 0])

  got = cooccurrence.dataset_neighbours(_Dataset(), 6, 2)
  # User 1 (items 3, 4) is not a training user: 3 and 4 have no neighbour.
  np.testing.assert_array_equal(got.counts, [0, 2, 2, 0, 0, 2])
  np.testing.assert_array_equal(got.ids[3], [3, 3])
  np.testing.assert_array_equal(got.ids[1], [2, 5])  # cos 1 > 1/sqrt(2)
  np.testing.assert_array_equal(got.ids[5], [1, 2])  # tie: lower id first


def test_bad_ids_are_refused():
  with pytest.raises(ValueError):
    cooccurrence.cooccurrence_neighbours([np.array([1, 9])], 5, 2)
  with pytest.raises(ValueError, match="positive integer"):
    cooccurrence.cooccurrence_neighbours([np.array([1, 2])], 5, 0)
