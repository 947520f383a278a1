"""mic_tf.data.subsample: a seeded fraction of the training users."""

import numpy as np
import pytest

from mic_tf.data import subsample


@pytest.fixture
def full(ml100k_protocol):
  return ml100k_protocol


def test_keeps_a_sorted_seeded_subset_and_leaves_evaluation_alone(full):
  half = subsample.keep_train_users(full, 0.5, seed=3)
  t = len(full.train_users)
  assert len(half.train_users) == int(round(0.5 * t))
  assert np.all(np.diff(half.train_users) > 0)
  assert set(half.train_users) <= set(full.train_users)
  assert half.train_users.dtype == full.train_users.dtype
  assert half.train_user_fraction == 0.5
  for name in ("valid_users", "test_users"):
    np.testing.assert_array_equal(getattr(half, name), getattr(full, name))
  assert half.sequences is full.sequences  # whole sequences, nothing cut
  assert full.train_user_fraction == 1.0 and len(full.train_users) == t
  # The same seed draws the same users; another seed, others.
  np.testing.assert_array_equal(
      subsample.keep_train_users(full, 0.5, seed=3).train_users,
      half.train_users)
  assert not np.array_equal(
      subsample.keep_train_users(full, 0.5, seed=4).train_users,
      half.train_users)
  # A smaller fraction keeps a subset of a larger one's users.
  fifth = subsample.keep_train_users(full, 0.2, seed=3)
  assert set(fifth.train_users) < set(half.train_users)


def test_whole_fraction_and_the_same_fraction_return_the_dataset(full):
  assert subsample.keep_train_users(full, 1.0) is full
  half = subsample.keep_train_users(full, 0.5)
  assert subsample.keep_train_users(half, 0.5) is half
  assert len(subsample.keep_train_users(full, 1e-9).train_users) == 1


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fractions_outside_the_unit_interval_are_refused(full, fraction):
  with pytest.raises(ValueError, match=r"train_user_fraction must be in "
                     r"\(0, 1\]"):
    subsample.keep_train_users(full, fraction)


def test_a_subsampled_dataset_is_not_subsampled_again(full):
  half = subsample.keep_train_users(full, 0.5)
  with pytest.raises(ValueError, match="already keeps 0.5 of its training "
                     "users; subsample the full dataset to 0.2"):
    subsample.keep_train_users(half, 0.2)
