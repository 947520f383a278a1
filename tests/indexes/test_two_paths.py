"""Every index's numpy path and TensorFlow path return the same lists.

The TF path is also checked after a SavedModel round trip: an index held by
a ``tf.Module`` is saved with it and answers the same once reloaded.
"""

import os
import tempfile

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
from absl.testing import parameterized
import numpy as np
import scann  # noqa: F401  (registers ScaNN's TF ops for loading)
import tensorflow as tf

from mic_tf import indexes

_N, _D = 3000, 16


def _data():
  rng = np.random.default_rng(3)
  items = rng.standard_normal((_N, _D)).astype(np.float32)
  items /= np.linalg.norm(items, axis=1, keepdims=True)
  queries = rng.standard_normal((200, _D)).astype(np.float32)
  return items, queries


def _index(kind):
  if kind == "exact":
    return indexes.BruteForceIndex(query_batch_size=64)
  if kind == "scann_brute_force":
    return indexes.ScannIndex(indexes.ScannConfig.auto(_N, k=10))
  return indexes.ScannIndex(indexes.ScannConfig(num_neighbours=10)
                            .with_leaves(30, search=4).with_ah()
                            .with_reorder(40))


class _Holder(tf.Module):

  def __init__(self, index):
    super().__init__()
    self.index = index

  @tf.function(input_signature=[tf.TensorSpec([None, _D], tf.float32)])
  def top(self, queries):
    return self.index.tf_search(queries, 25)


class TwoPathsTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("exact", "scann_brute_force", "scann_tree_ah")
  def test_numpy_and_tf_paths_agree(self, kind):
    items, queries = _data()
    external = np.arange(_N, dtype=np.int64) * 3 + 1
    index = _index(kind).build(items, ids=external)
    if isinstance(index, indexes.ScannIndex):
      index.prepare_tf()
    for k in (1, 25, _N + 5):  # k above the pool size pads with (-1, -inf)
      want_ids, want_scores = index.search(queries, k)
      got_ids, got_scores = index.tf_search(tf.constant(queries), k)
      self.assertAllEqual(got_ids.numpy(), want_ids)
      self.assertAllClose(got_scores.numpy(), want_scores, atol=1e-6)
    self.assertTrue(np.all(want_ids[:, _N:] == indexes.PAD_ID))
    self.assertTrue(np.all(np.isneginf(want_scores[:, _N:])))

    holder = _Holder(index)
    expected = holder.top(tf.constant(queries))
    with tempfile.TemporaryDirectory() as directory:
      path = os.path.join(directory, "saved")
      tf.saved_model.save(holder, path, options=tf.saved_model.SaveOptions(
          namespace_whitelist=["Scann"]))
      loaded = tf.saved_model.load(path)
      got = loaded.top(tf.constant(queries))
    self.assertAllEqual(got[0], expected[0])
    self.assertAllEqual(expected[0].numpy(), index.search(queries, 25)[0])

  def test_scann_tf_path_before_prepare_fails_clearly_in_a_graph(self):
    items, queries = _data()
    index = _index("scann_tree_ah").build(items)
    traced = tf.function(lambda q: index.tf_search(q, 5))
    with self.assertRaisesRegex(RuntimeError, "prepare_tf"):
      traced(tf.constant(queries))


if __name__ == "__main__":
  tf.test.main()
