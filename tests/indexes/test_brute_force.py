"""Tests for mic_tf.indexes.brute_force and the shared helpers in base."""

import os
import tempfile

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf.indexes import base
from mic_tf.indexes import brute_force


def _data(n=2000, d=16, q=64, seed=0):
  rng = np.random.default_rng(seed)
  items = rng.standard_normal((n, d)).astype(np.float32)
  queries = rng.standard_normal((q, d)).astype(np.float32)
  return items, queries


def _numpy_top_k(items, queries, k):
  scores = queries @ items.T
  order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return order, np.take_along_axis(scores, order, axis=1)


class BruteForceIndexTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("one_batch", 1024, 512 * 2**20),
      ("small_batches", 7, 512 * 2**20),
      ("memory_capped", 1024, 4 * 2000 * 5),  # 5 queries per matmul
  )
  def test_matches_numpy(self, query_batch_size, max_score_bytes):
    items, queries = _data()
    index = brute_force.BruteForceIndex(
        query_batch_size=query_batch_size,
        max_score_bytes=max_score_bytes).build(items)
    ids, scores = index.search(queries, k=25)
    want_ids, want_scores = _numpy_top_k(items, queries, 25)
    self.assertEqual(ids.dtype, np.int64)
    self.assertEqual(scores.dtype, np.float32)
    self.assertEqual(ids.shape, (64, 25))
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, atol=1e-4)
    # Scores are the dot products of the returned rows, best first.
    recomputed = np.einsum("qd,qkd->qk", queries, items[ids])
    self.assertAllClose(scores, recomputed, atol=1e-4)
    self.assertTrue(np.all(np.diff(scores, axis=1) <= 0))

  @parameterized.named_parameters(("eager", False), ("graph", True))
  def test_tf_path_scores_large_batches_in_capped_blocks(self, graph):
    # 64 queries, 5 per block (the last one padded): same lists as numpy.
    items, queries = _data()
    index = brute_force.BruteForceIndex(
        max_score_bytes=4 * 2000 * 5).build(items)
    search = index.tf_search
    if graph:
      search = tf.function(search, input_signature=[
          tf.TensorSpec([None, 16], tf.float32), tf.TensorSpec([], tf.int32)])
    for count in (1, 5, 6, 64):
      ids, scores = search(tf.constant(queries[:count]), tf.constant(25))
      want_ids, want_scores = _numpy_top_k(items, queries[:count], 25)
      self.assertEqual(ids.shape, (count, 25))
      self.assertAllEqual(ids, want_ids)
      self.assertAllClose(scores, want_scores, atol=1e-4)

  def test_batch_size_respects_memory_cap(self):
    items, _ = _data(n=2000)
    index = brute_force.BruteForceIndex(
        query_batch_size=1024, max_score_bytes=4 * 2000 * 5).build(items)
    self.assertEqual(index.batch_size, 5)
    tiny = brute_force.BruteForceIndex(max_score_bytes=1).build(items)
    self.assertEqual(tiny.batch_size, 1)

  def test_maps_rows_to_external_ids(self):
    items, queries = _data()
    external = np.arange(2000, dtype=np.int64) * 10 + 1
    index = brute_force.BruteForceIndex().build(items, ids=external)
    ids, _ = index.search(queries, k=5)
    rows, _ = _numpy_top_k(items, queries, 5)
    self.assertAllEqual(ids, external[rows])
    self.assertEqual(index.size, 2000)
    self.assertEqual(index.dim, 16)

  def test_pads_when_k_exceeds_size(self):
    items, queries = _data(n=3)
    ids, scores = brute_force.BruteForceIndex().build(items).search(
        queries[:2], k=5)
    self.assertEqual(ids.shape, (2, 5))
    self.assertAllEqual(ids[:, 3:], np.full((2, 2), -1))
    self.assertTrue(np.all(np.isneginf(scores[:, 3:])))
    self.assertAllEqual(np.sort(ids[:, :3], axis=1), [[0, 1, 2], [0, 1, 2]])

  def test_empty_query_batch(self):
    items, _ = _data()
    ids, scores = brute_force.BruteForceIndex().build(items).search(
        np.zeros((0, 16), np.float32), k=4)
    self.assertEqual(ids.shape, (0, 4))
    self.assertEqual(scores.shape, (0, 4))

  def test_save_load_round_trip(self):
    items, queries = _data()
    external = np.arange(2000, dtype=np.int64)[::-1].copy()
    index = brute_force.BruteForceIndex(query_batch_size=100).build(
        items, ids=external)
    with tempfile.TemporaryDirectory() as directory:
      index.save(directory)
      self.assertTrue(os.path.isfile(
          os.path.join(directory, base.METADATA_FILENAME)))
      loaded = brute_force.BruteForceIndex.load(directory)
      via_dispatch = indexes.load_index(directory)
    self.assertIsInstance(via_dispatch, brute_force.BruteForceIndex)
    want = index.search(queries, 10)
    for restored in (loaded, via_dispatch):
      got = restored.search(queries, 10)
      self.assertAllEqual(got[0], want[0])
      self.assertAllEqual(got[1], want[1])
      self.assertEqual(restored.batch_size, index.batch_size)

  def test_load_errors(self):
    with tempfile.TemporaryDirectory() as directory:
      with self.assertRaisesRegex(FileNotFoundError, "not a saved"):
        brute_force.BruteForceIndex.load(directory)
      base.write_metadata(directory, {"kind": "scann"})
      with self.assertRaisesRegex(ValueError, "load_index"):
        brute_force.BruteForceIndex.load(directory)

  def test_errors(self):
    items, queries = _data()
    index = brute_force.BruteForceIndex()
    with self.assertRaisesRegex(RuntimeError, "call build"):
      index.search(queries, 3)
    with self.assertRaisesRegex(ValueError, "empty database"):
      index.build(np.zeros((0, 16), np.float32))
    with self.assertRaisesRegex(ValueError, "2-D"):
      index.build(items[0])
    nan_items = items.copy()
    nan_items[7, 3] = np.nan
    with self.assertRaisesRegex(ValueError, "NaN or inf.*row: 7"):
      index.build(nan_items)
    index.build(items)
    with self.assertRaisesRegex(ValueError, "does not match the index"):
      index.search(queries[:, :8], 3)
    for bad_k in (0, -1, 2.5, True):
      with self.assertRaisesRegex(ValueError, "positive integer"):
        index.search(queries, bad_k)
    with self.assertRaisesRegex(ValueError, "queries\\[None, :\\]"):
      index.search(queries[0], 3)
    inf_queries = queries.copy()
    inf_queries[2, 0] = np.inf
    with self.assertRaisesRegex(ValueError, "queries contain NaN or inf"):
      index.search(inf_queries, 3)
    with self.assertRaisesRegex(ValueError, "positive"):
      brute_force.BruteForceIndex(query_batch_size=0)

  def test_bad_ids(self):
    items, _ = _data(n=4)
    index = brute_force.BruteForceIndex()
    with self.assertRaisesRegex(ValueError, "shape \\(4,\\)"):
      index.build(items, ids=np.arange(3))
    with self.assertRaisesRegex(ValueError, "unique"):
      index.build(items, ids=np.array([1, 2, 2, 3]))
    with self.assertRaisesRegex(ValueError, "non-negative"):
      index.build(items, ids=np.array([-1, 2, 3, 4]))
    with self.assertRaisesRegex(ValueError, "integers"):
      index.build(items, ids=np.array([1.0, 2.0, 3.0, 4.0]))


class RecallAgainstExactTest(tf.test.TestCase):

  def test_fraction_found(self):
    exact = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    approx = np.array([[4, 3, 9, 9], [5, 6, 7, 8]])
    self.assertAllClose(indexes.recall_against_exact(approx, exact), 0.75)

  def test_ignores_padding(self):
    exact = np.array([[1, 2, -1, -1], [-1, -1, -1, -1]])
    approx = np.array([[2, -1, -1, -1], [-1, -1, -1, -1]])
    self.assertAllClose(indexes.recall_against_exact(approx, exact), 0.5)
    self.assertEqual(
        indexes.recall_against_exact(np.full((1, 2), -1),
                                     np.full((1, 2), -1)), 1.0)

  def test_shape_errors(self):
    with self.assertRaisesRegex(ValueError, "same query batch"):
      indexes.recall_against_exact(np.zeros((2, 3)), np.zeros((3, 3)))
    with self.assertRaisesRegex(ValueError, "2-D"):
      indexes.recall_against_exact(np.zeros(3), np.zeros((1, 3)))


if __name__ == "__main__":
  tf.test.main()


def test_streamed_top_k_equals_one_matmul_with_ties_to_the_lower_row():
  rng = np.random.default_rng(3)
  database = rng.normal(size=(103, 8)).astype(np.float32)
  database[50] = database[7]  # an exact tie: row 7 must come first
  queries = np.concatenate([database[[7]], rng.normal(size=(9, 8))])
  queries = queries.astype(np.float32)
  reference = brute_force.exact_top_k(queries, database, 12).indices.numpy()
  for block_rows in (1, 10, 64, 103, 500):
    got = brute_force.exact_top_k_streamed(queries, database, 12, block_rows)
    np.testing.assert_array_equal(got, reference)
  assert list(got[0][:2]) == [7, 50]
