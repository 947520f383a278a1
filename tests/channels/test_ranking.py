"""Tests for mic_tf.channels.ranking against plain Python references."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf.channels import ranking


def _last_distinct_reference(history, m):
  out = np.zeros((len(history), m), np.int64)
  for r, row in enumerate(history):
    seen = []
    for item in row[::-1]:
      if item > 0 and item not in seen:
        seen.append(item)
    out[r, :min(m, len(seen))] = seen[:m]
  return out


class RankingTest(tf.test.TestCase, parameterized.TestCase):

  def test_pad_lists(self):
    out = ranking.pad_lists([np.array([3, 1]), np.array([], np.int64),
                             np.array([7])])
    self.assertAllEqual(out, [[3, 1], [0, 0], [7, 0]])
    self.assertEqual(ranking.pad_lists([[], []]).shape, (2, 1))
    with self.assertRaisesRegex(ValueError, "width"):
      ranking.pad_lists([[1, 2, 3]], width=2)

  def test_is_excluded(self):
    rows = tf.constant([0, 0, 1, 1, 2], tf.int64)
    items = tf.constant([5, 6, 5, 9, 1], tf.int64)
    exclude = tf.constant([[6, 0], [5, 9], [0, 0]], tf.int64)
    self.assertAllEqual(ranking.is_excluded(rows, items, exclude),
                        [False, True, True, True, False])

  def test_is_excluded_with_nothing_to_exclude(self):
    out = ranking.is_excluded(tf.constant([0, 1], tf.int64),
                              tf.constant([3, 4], tf.int64),
                              tf.zeros([2, 1], tf.int64))
    self.assertAllEqual(out, [False, False])

  @parameterized.parameters("sum", "max")
  def test_aggregate_sorts_and_combines(self, reduce):
    rows = tf.constant([1, 0, 1, 0, 1], tf.int64)
    items = tf.constant([4, 2, 3, 2, 4], tf.int64)
    values = tf.constant([1.0, 2.0, 3.0, 4.0, 5.0])
    r, i, v = ranking.aggregate(rows, items, values, reduce)
    self.assertAllEqual(r, [0, 1, 1])
    self.assertAllEqual(i, [2, 3, 4])
    expected = [6.0, 3.0, 6.0] if reduce == "sum" else [4.0, 3.0, 5.0]
    self.assertAllClose(v, expected)

  def test_aggregate_rejects_unknown_reducer(self):
    with self.assertRaisesRegex(ValueError, "reduce"):
      ranking.aggregate(tf.constant([0]), tf.constant([1]),
                        tf.constant([1.0]), "mean")

  def test_top_k_per_row_pads_and_breaks_ties_by_id(self):
    rows = tf.constant([0, 0, 0, 2], tf.int64)
    items = tf.constant([3, 5, 8, 1], tf.int64)
    scores = tf.constant([0.5, 0.9, 0.5, 0.1])
    ids, top = ranking.top_k_per_row(rows, items, scores, 3, 2)
    self.assertAllEqual(ids, [[5, 3], [-1, -1], [1, -1]])
    self.assertAllClose(top[0], [0.9, 0.5])
    self.assertAllEqual(np.isneginf(top.numpy()),
                        [[False, False], [True, True], [False, True]])

  def test_top_k_per_row_without_any_pair(self):
    empty = tf.zeros([0], tf.int64)
    ids, scores = ranking.top_k_per_row(empty, empty, tf.zeros([0]), 2, 3)
    self.assertAllEqual(ids, -np.ones((2, 3)))
    self.assertTrue(np.all(np.isneginf(scores.numpy())))

  def test_normalize_by_row_max(self):
    rows = tf.constant([0, 0, 1, 2], tf.int64)
    values = tf.constant([1.0, 4.0, 0.0, 2.0])
    self.assertAllClose(ranking.normalize_by_row_max(rows, values, 3),
                        [0.25, 1.0, 0.0, 1.0])

  def test_interest_cosine_takes_best_interest(self):
    queries = tf.constant([[[1.0, 0.0], [0.0, 1.0]]])
    table = tf.constant([[0.0, 0.0], [0.6, 0.8], [-1.0, 0.0]])
    out = ranking.interest_cosine(tf.constant([0, 0], tf.int64),
                                  tf.constant([1, 2], tf.int64), queries,
                                  table)
    self.assertAllClose(out, [0.8, 0.0])

  def test_interest_cosine_in_chunks_equals_all_at_once(self):
    rng = np.random.default_rng(0)
    queries = tf.constant(rng.normal(size=(4, 2, 3)), tf.float32)
    table = tf.constant(rng.normal(size=(9, 3)), tf.float32)
    rows = tf.constant(rng.integers(0, 4, 23), tf.int64)
    items = tf.constant(rng.integers(0, 9, 23), tf.int64)
    want = tf.reduce_max(tf.einsum("pkd,pd->pk", tf.gather(queries, rows),
                                   tf.gather(table, items)), axis=1)
    for chunk in (1, 5, 23, 100):
      self.assertAllClose(ranking.interest_cosine(rows, items, queries, table,
                                                  chunk=chunk), want)
    empty = tf.constant([], tf.int64)
    self.assertEqual(
        ranking.interest_cosine(empty, empty, queries, table).shape, (0,))
    graph = tf.function(ranking.interest_cosine)
    self.assertAllClose(graph(rows, items, queries, table, 5), want)

  @parameterized.parameters(1, 3, 6)
  def test_last_distinct_items(self, m):
    rng = np.random.default_rng(m)
    history = rng.integers(0, 5, (20, 6))
    history[0] = 0  # empty history
    history[1] = [0, 0, 4, 4, 4, 4]
    out = ranking.last_distinct_items(tf.constant(history), m)
    self.assertAllEqual(out, _last_distinct_reference(history, m))

  def test_last_distinct_items_pads_short_histories(self):
    out = ranking.last_distinct_items(tf.constant([[0, 2, 1]]), 4)
    self.assertAllEqual(out, [[1, 2, 0, 0]])


if __name__ == "__main__":
  tf.test.main()
