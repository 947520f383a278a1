"""Alignment and uniformity against numpy references and hand values."""

import math

import numpy as np
import pytest
import tensorflow as tf

from mic_harness import alignment_uniformity as au


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_hand_values():
  e1, e2 = np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]])
  assert au.alignment(e1, e1) == 0.0
  assert au.alignment(e1, e2) == pytest.approx(2.0)  # ||e1 - e2||^2 = 2
  assert au.alignment(e1, -e1) == pytest.approx(4.0)
  assert au.alignment(e1, e2, alpha=1.0) == pytest.approx(math.sqrt(2))
  # Two antipodal points: one pair at squared distance 4 -> -2 * 4.
  assert au.uniformity(np.array([[2.0, 0.0], [-1.0, 0.0]])) == pytest.approx(
      -8.0)
  # Square on the circle: 4 pairs at d^2 = 2, 2 pairs at d^2 = 4.
  square = np.array([[1.0, 0], [0, 1.0], [-1.0, 0], [0, -1.0]])
  want = math.log((4 * math.exp(-4) + 2 * math.exp(-8)) / 6)
  assert au.uniformity(square) == pytest.approx(want)


def test_match_bruteforce_reference():
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
  ux, uy = _unit(x), _unit(y)
  want_align = np.mean([np.sum((ux[i] - uy[i]) ** 2) for i in range(50)])
  assert au.alignment(x, y) == pytest.approx(want_align)
  want_unif = math.log(np.mean([
      math.exp(-2 * np.sum((ux[i] - ux[j]) ** 2))
      for i in range(50) for j in range(i + 1, 50)]))
  assert au.uniformity(x) == pytest.approx(want_unif)
  assert au.uniformity(x, chunk=7) == pytest.approx(want_unif)
  # TF tensors are accepted.
  assert au.alignment(tf.constant(x), tf.constant(y)) == pytest.approx(
      want_align)


def test_uniformity_subset_is_seeded():
  x = np.random.default_rng(1).normal(size=(300, 4))
  a = au.uniformity(x, max_points=50, seed=3)
  assert a == au.uniformity(x, max_points=50, seed=3)
  assert a != au.uniformity(x, max_points=50, seed=4)
  assert au.uniformity(x, max_points=300) == pytest.approx(
      au.uniformity(x, max_points=1000))


def test_errors():
  with pytest.raises(ValueError, match="same"):
    au.alignment(np.ones((2, 3)), np.ones((3, 3)))
  with pytest.raises(ValueError, match="non-empty"):
    au.alignment(np.ones((0, 3)), np.ones((0, 3)))
  with pytest.raises(ValueError, match="NaN"):
    au.uniformity(np.array([[np.nan, 1.0], [1.0, 0.0]]))
  with pytest.raises(ValueError, match="at least 2"):
    au.uniformity(np.ones((1, 3)))


def test_closest_interest():
  queries = np.array([[[1.0, 0], [0, 1.0]], [[1.0, 0], [0, 1.0]]])
  targets = np.array([[0.1, 2.0], [3.0, 0.2]])
  np.testing.assert_array_equal(au.closest_interest(queries, targets),
                                [[0, 1.0], [1.0, 0]])
  flat = np.ones((2, 2))
  assert au.closest_interest(flat, targets) is flat


def test_pair_builders():
  rows, items = au.user_target_pairs([np.array([5, 0, 6]), np.array([]),
                                      np.array([7])])
  assert rows.tolist() == [0, 0, 2] and items.tolist() == [5, 6, 7]
  # maxlen 2: window = last 4 items; the newest (9) lands in `second`.
  rows, first, second = au.history_halves(
      [np.array([1, 2, 3, 4, 5, 9]), np.array([4]), np.array([0, 7, 8, 6])],
      maxlen=2)
  assert rows.tolist() == [0, 2]
  # [7, 8, 6] (padding dropped): odd length, so `first` gets 8 alone.
  assert [f.tolist() for f in first] == [[3, 5], [8]]
  assert [s.tolist() for s in second] == [[4, 9], [7, 6]]
  pairs = au.consecutive_pairs([np.array([1, 2, 2, 3]), np.array([4])])
  assert pairs.tolist() == [[1, 2], [2, 3]]
  many = au.consecutive_pairs([np.arange(1, 100)], max_pairs=10, seed=0)
  assert many.shape == (10, 2) and np.all(many[:, 1] == many[:, 0] + 1)
