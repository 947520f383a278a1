"""Tests for mic_tf.indexes.scann_index, .config and the package helpers."""

import os
import shutil
import tempfile

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf.indexes import config as config_lib
from mic_tf.indexes import scann_index
from mic_tf.indexes.config import ScannConfig

_N, _D = 4000, 32


def _clustered(n=_N, q=100, d=_D, clusters=40, seed=0):
  """Unit vectors from a Gaussian mixture (items, queries)."""
  rng = np.random.default_rng(seed)
  centres = rng.standard_normal((clusters, d))
  centres /= np.linalg.norm(centres, axis=1, keepdims=True)

  def draw(count):
    points = centres[rng.integers(clusters, size=count)]
    points = points + rng.standard_normal((count, d)) / np.sqrt(d)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(
        np.float32)

  return draw(n), draw(q)


def _tree_ah_config(k=10):
  """A forced tree + AH + reorder config for the small test data."""
  return (ScannConfig(num_neighbours=k)
          .with_leaves(40, search=10)
          .with_ah(dimensions_per_block=2,
                   anisotropic_quantization_threshold=0.2)
          .with_reorder(100)
          .with_spherical()
          .with_training(threads=1))


class ScannConfigTest(tf.test.TestCase, parameterized.TestCase):

  def test_auto_small_pool_is_exact(self):
    config = ScannConfig.auto(19_999, k=50)
    self.assertTrue(config.is_exact)
    self.assertEqual(config.num_neighbours, 50)
    self.assertIsNone(config.reorder_num_neighbours)

  def test_auto_medium_pool_is_ah_without_tree(self):
    config = ScannConfig.auto(50_000, k=50)
    self.assertIsNone(config.num_leaves)
    self.assertEqual(config.scoring, "ah")
    self.assertEqual(config.dimensions_per_block, 2)
    self.assertEqual(config.reorder_num_neighbours, 500)
    self.assertIsNone(ScannConfig.auto(199_999, k=50).num_leaves)

  def test_auto_large_pool_uses_tree(self):
    config = ScannConfig.auto(1_000_000, k=50)
    self.assertEqual(config.num_leaves, 2000)
    self.assertEqual(config.num_leaves_to_search, 40)
    self.assertEqual(config.training_sample_size, 256_000)
    self.assertTrue(config.spherical)
    self.assertEqual(config.scoring, "ah")
    self.assertAllClose(config.anisotropic_quantization_threshold, 0.2)
    self.assertEqual(config.reorder_num_neighbours, 500)
    self.assertFalse(ScannConfig.auto(1_000_000, normalized=False).spherical)

  def test_auto_scans_at_least_min_points(self):
    config = ScannConfig.auto(200_000, k=10)
    avg_leaf = 200_000 / config.num_leaves
    self.assertGreaterEqual(config.num_leaves_to_search * avg_leaf,
                            config_lib.MIN_POINTS_SCANNED)
    self.assertEqual(config.reorder_num_neighbours, 250)

  def test_fluent_methods_return_new_configs(self):
    base = ScannConfig.auto(1000)
    tuned = (base.with_leaves(20, search=5).with_ah(4, None).with_reorder(60)
             .with_training(sample_size=500, iterations=3, threads=1)
             .with_num_neighbours(7).with_parallel_search(False))
    self.assertTrue(base.is_exact)
    self.assertEqual((tuned.num_leaves, tuned.num_leaves_to_search), (20, 5))
    self.assertEqual(tuned.dimensions_per_block, 4)
    self.assertIsNone(tuned.anisotropic_quantization_threshold)
    self.assertEqual(tuned.training_sample_size, 500)
    self.assertEqual(tuned.training_iterations, 3)
    self.assertEqual(tuned.training_threads, 1)
    self.assertEqual(tuned.num_neighbours, 7)
    self.assertFalse(tuned.parallel_search)
    self.assertIsNone(tuned.without_tree().num_leaves)
    self.assertIsNone(tuned.without_reorder().reorder_num_neighbours)
    self.assertTrue(tuned.without_tree().with_brute_force().is_exact)
    self.assertIn("5 nearest of 20", tuned.describe())
    self.assertIn("rescore the best 60", tuned.describe())
    self.assertIn("isotropic", tuned.describe())

  def test_dict_round_trip(self):
    config = _tree_ah_config()
    self.assertEqual(ScannConfig.from_dict(config.to_dict()), config)
    with self.assertRaisesRegex(ValueError, "Unknown ScannConfig fields"):
      ScannConfig.from_dict({"num_leafs": 3})
    # An index saved before the fields' rename loads under today's names.
    saved = config.to_dict()
    saved["num_neighbors"] = saved.pop("num_neighbours")
    saved["reorder_num_neighbors"] = saved.pop("reorder_num_neighbours")
    self.assertEqual(ScannConfig.from_dict(saved), config)
    with self.assertRaisesRegex(ValueError, "both 'num_neighbors' and"):
      ScannConfig.from_dict({**saved, "num_neighbours": 3})

  def test_numpy_scalars_are_stored_as_python(self):
    config = ScannConfig(num_neighbours=np.int64(5))
    self.assertIs(type(config.num_neighbours), int)

  @parameterized.named_parameters(
      ("leaves_without_search", dict(num_leaves=10), "go together"),
      ("search_more_than_leaves",
       dict(num_leaves=10, num_leaves_to_search=11), "cannot exceed"),
      ("zero_leaves", dict(num_leaves=0, num_leaves_to_search=0),
       "positive integer"),
      ("reorder_with_brute_force", dict(reorder_num_neighbours=10),
       "only meaningful"),
      ("bad_scoring", dict(scoring="pq"), "scoring must be"),
      ("nan_threshold",
       dict(scoring="ah", anisotropic_quantization_threshold=float("nan")),
       "finite"),
      ("zero_k", dict(num_neighbours=0), "positive integer"),
      ("negative_threads", dict(training_threads=-1), ">= 0"),
      ("zero_target_recall", dict(target_recall=0.0), "target_recall"),
      ("target_recall_above_one", dict(target_recall=1.5), "target_recall"),
  )
  def test_invalid_configs(self, kwargs, message):
    with self.assertRaisesRegex(ValueError, message):
      ScannConfig(**kwargs)


class ScannIndexTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.items, cls.queries = _clustered()
    cls.exact = indexes.BruteForceIndex().build(cls.items)
    cls.tree = scann_index.ScannIndex(_tree_ah_config()).build(cls.items)

  def test_brute_force_mode_is_exact(self):
    index = scann_index.ScannIndex(ScannConfig.auto(_N, k=10)).build(
        self.items)
    self.assertTrue(index.config.is_exact)
    ids, scores = index.search(self.queries, 10)
    want_ids, want_scores = self.exact.search(self.queries, 10)
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, atol=1e-5)

  @parameterized.parameters(True, False)
  def test_tree_ah_recall_is_high(self, parallel):
    ids, scores = self.tree.search(self.queries, 10, parallel=parallel)
    exact_ids, _ = self.exact.search(self.queries, 10)
    self.assertEqual(ids.dtype, np.int64)
    self.assertEqual(scores.dtype, np.float32)
    self.assertGreaterEqual(indexes.recall_against_exact(ids, exact_ids), 0.98)
    # After reordering, scores are the exact dot products, best first.
    recomputed = np.einsum("qd,qkd->qk", self.queries, self.items[ids])
    self.assertAllClose(scores, recomputed, atol=1e-4)
    self.assertTrue(np.all(np.diff(scores, axis=1) <= 1e-6))

  def test_searching_fewer_leaves_lowers_recall(self):
    exact_ids, _ = self.exact.search(self.queries, 10)
    recalls = [
        indexes.recall_against_exact(
            self.tree.search(self.queries, 10, num_leaves_to_search=leaves)[0],
            exact_ids) for leaves in (1, 40)
    ]
    self.assertLess(recalls[0], 0.95)  # ~0.9: one leaf misses neighbours.
    self.assertGreaterEqual(recalls[1], 0.99)

  def test_k_larger_than_reorder_pool(self):
    ids, scores = self.tree.search(self.queries[:5], 150,
                                   num_leaves_to_search=40)
    self.assertEqual(ids.shape, (5, 150))
    self.assertTrue(np.all(ids >= 0))  # The pool was widened to k.
    self.assertTrue(np.all(np.isfinite(scores)))

  def test_pads_missing_results(self):
    # One leaf (~100 of 4000 points, seen up to ~300) cannot yield 1000.
    ids, scores = self.tree.search(self.queries[:3], 1000,
                                   num_leaves_to_search=1)
    self.assertEqual(ids.shape, (3, 1000))
    missing = ids == indexes.PAD_ID
    self.assertTrue(missing[:, -1].all())
    self.assertAllEqual(np.isneginf(scores), missing)
    for row_ids, row_missing in zip(ids, missing):
      found = row_ids[~row_missing]
      self.assertLen(np.unique(found), found.size)  # No fake duplicate rows.
      self.assertFalse(row_missing[:found.size].any())  # Padding at the end.

  def test_pads_when_k_exceeds_size(self):
    items, queries = _clustered(n=5, q=2)
    index = scann_index.ScannIndex(ScannConfig()).build(items)
    ids, scores = index.search(queries, 8)
    self.assertAllEqual(ids[:, 5:], np.full((2, 3), -1))
    self.assertTrue(np.all(np.isneginf(scores[:, 5:])))
    self.assertAllEqual(np.sort(ids[:, :5], axis=1), [list(range(5))] * 2)

  def test_maps_rows_to_external_ids(self):
    external = np.arange(_N, dtype=np.int64) + 1  # Item ids start at 1.
    index = scann_index.ScannIndex(ScannConfig()).build(self.items,
                                                        ids=external)
    ids, _ = index.search(self.queries, 5)
    rows, _ = self.exact.search(self.queries, 5)
    self.assertAllEqual(ids, external[rows])

  def test_save_load_gives_identical_results(self):
    external = np.arange(_N, dtype=np.int64)[::-1] * 3
    index = scann_index.ScannIndex(_tree_ah_config()).build(
        self.items, ids=external)
    want_ids, want_scores = index.search(self.queries, 10)
    with tempfile.TemporaryDirectory() as directory:
      saved = os.path.join(directory, "saved")
      index.save(saved)
      moved = os.path.join(directory, "moved")
      shutil.move(saved, moved)  # Assets are stored with relative paths.
      loaded = scann_index.ScannIndex.load(moved)
      dispatched = indexes.load_index(moved)
    self.assertIsInstance(dispatched, scann_index.ScannIndex)
    for restored in (loaded, dispatched):
      self.assertEqual(restored.config, index.config)
      self.assertEqual((restored.size, restored.dim), (_N, _D))
      got_ids, got_scores = restored.search(self.queries, 10)
      self.assertAllEqual(got_ids, want_ids)
      self.assertAllEqual(got_scores, want_scores)

  def test_load_errors(self):
    with tempfile.TemporaryDirectory() as directory:
      with self.assertRaisesRegex(FileNotFoundError, "not a saved"):
        scann_index.ScannIndex.load(directory)
      indexes.BruteForceIndex().build(self.items[:10]).save(directory)
      with self.assertRaisesRegex(ValueError, "'exact' index"):
        scann_index.ScannIndex.load(directory)

  def test_calibration_widens_search_to_target_recall(self):
    # One of 40 leaves and a pool of 10 candidates miss many neighbours.
    narrow = _tree_ah_config().with_leaves(40, search=1).with_reorder(10)
    uncalibrated = scann_index.ScannIndex(narrow).build(self.items)
    self.assertIsNone(uncalibrated.calibration)
    index = scann_index.ScannIndex(narrow.with_target_recall(0.99)).build(
        self.items)
    calibration = index.calibration
    self.assertLess(calibration["initial_recall"], 0.9)
    self.assertGreaterEqual(calibration["recall"], 0.99)
    self.assertEqual(calibration["queries"], 1000)
    self.assertEqual(index.config.num_leaves_to_search,
                     calibration["num_leaves_to_search"])
    self.assertEqual(index.config.reorder_num_neighbours,
                     calibration["reorder_num_neighbours"])
    self.assertGreater(
        (index.config.num_leaves_to_search, index.config.reorder_num_neighbours),
        (1, 10))
    # Held-out queries (not database rows) keep a recall near the target,
    # far above the uncalibrated knobs'.
    exact_ids, _ = self.exact.search(self.queries, 10)
    recall = indexes.recall_against_exact(
        index.search(self.queries, 10)[0], exact_ids)
    before = indexes.recall_against_exact(
        uncalibrated.search(self.queries, 10)[0], exact_ids)
    self.assertGreaterEqual(recall, 0.98)
    self.assertLess(before, 0.9)
    # The TF path and a saved copy use the calibrated knobs too.
    want_ids, want_scores = index.search(self.queries, 10)
    tf_ids, tf_scores = index.tf_search(self.queries, 10)
    self.assertAllEqual(tf_ids, want_ids)
    self.assertAllClose(tf_scores, want_scores)
    with tempfile.TemporaryDirectory() as directory:
      index.save(directory)
      loaded = scann_index.ScannIndex.load(directory)
    self.assertEqual(loaded.config, index.config)
    self.assertEqual(loaded.calibration, calibration)
    self.assertAllEqual(loaded.search(self.queries, 10)[0], want_ids)

  def test_unreachable_target_is_logged(self):
    # AH codes of every point without reordering: no knob is left to widen,
    # and 4-bit codes do not reach recall 1.0.
    config = (ScannConfig(num_neighbours=10).with_ah().with_training(threads=1)
              .with_target_recall(1.0))
    with self.assertLogs("absl", level="WARNING") as logs:
      index = scann_index.ScannIndex(config).build(self.items)
    self.assertLess(index.calibration["recall"], 1.0)
    self.assertIn("use an exact index", "\n".join(logs.output))

  def test_auto_config_resolved_at_build(self):
    index = scann_index.ScannIndex(default_k=7)
    with self.assertRaisesRegex(RuntimeError, "call build"):
      _ = index.config
    index.build(self.items[:100])
    self.assertEqual(index.config, ScannConfig.auto(100, 7))

  def test_errors(self):
    index = scann_index.ScannIndex(_tree_ah_config())
    with self.assertRaisesRegex(RuntimeError, "call build"):
      index.search(self.queries, 3)
    with self.assertRaisesRegex(ValueError, "empty database"):
      index.build(np.zeros((0, _D), np.float32))
    nan_items = self.items.copy()
    nan_items[3, 0] = np.nan
    with self.assertRaisesRegex(ValueError, "NaN or inf"):
      index.build(nan_items)
    with self.assertRaisesRegex(ValueError, "exceeds the database size"):
      index.build(self.items[:39])
    with self.assertRaisesRegex(ValueError, "does not match the index"):
      self.tree.search(self.queries[:, :16], 3)
    for bad_k in (0, -2):
      with self.assertRaisesRegex(ValueError, "positive integer"):
        self.tree.search(self.queries, bad_k)
    nan_queries = self.queries.copy()
    nan_queries[0, 0] = np.nan
    with self.assertRaisesRegex(ValueError, "queries contain NaN"):
      self.tree.search(nan_queries, 3)
    with self.assertRaisesRegex(ValueError, "in \\[1, 40\\]"):
      self.tree.search(self.queries, 3, num_leaves_to_search=41)
    exact_mode = scann_index.ScannIndex(ScannConfig()).build(self.items[:50])
    with self.assertRaisesRegex(ValueError, "no tree"):
      exact_mode.search(self.queries, 3, num_leaves_to_search=2)
    with self.assertRaisesRegex(ValueError, "reordering"):
      exact_mode.search(self.queries, 3, num_candidates=20)
    with self.assertRaisesRegex(TypeError, "ScannConfig"):
      scann_index.ScannIndex({"num_leaves": 3})

  def test_empty_query_batch(self):
    ids, scores = self.tree.search(np.zeros((0, _D), np.float32), 4)
    self.assertEqual(ids.shape, (0, 4))
    self.assertEqual(scores.shape, (0, 4))

class MakeIndexTest(tf.test.TestCase):

  def test_kinds(self):
    items, queries = _clustered(n=500, q=10)
    exact = indexes.make_index("exact", items, k=5)
    self.assertIsInstance(exact, indexes.BruteForceIndex)
    auto = indexes.make_index("auto", items, k=5)
    self.assertIsInstance(auto, indexes.ScannIndex)
    self.assertEqual(auto.config, ScannConfig.auto(500, 5))
    self.assertAllEqual(auto.search(queries, 5)[0],
                        exact.search(queries, 5)[0])
    configured = indexes.make_index(
        "scann", scann_config=ScannConfig().with_ah().with_reorder(20))
    self.assertFalse(configured.is_built)
    self.assertEqual(configured.config.reorder_num_neighbours, 20)
    batched = indexes.make_index("exact", query_batch_size=3)
    self.assertIsInstance(batched, indexes.BruteForceIndex)

  def test_errors(self):
    with self.assertRaisesRegex(ValueError, "kind must be one of"):
      indexes.make_index("faiss")
    with self.assertRaisesRegex(ValueError, "kind='scann'"):
      indexes.make_index("exact", scann_config=ScannConfig())
    with self.assertRaisesRegex(ValueError, "kind='scann'"):
      indexes.make_index("auto", scann_config=ScannConfig())
    with self.assertRaisesRegex(ValueError, "only apply to kind='exact'"):
      indexes.make_index("scann", query_batch_size=3)


if __name__ == "__main__":
  tf.test.main()
