"""The tf.data training pipeline: shapes, values and determinism."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import features as F
from mic_tf import pipeline
from mic_tf import reproducibility
from mic_tf.testing.synthetic import synthetic_dataset


class PipelineTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.ds = synthetic_dataset(num_users=50, num_items=30, length=9, seed=1)
    self.tables = F.build_feature_tables(self.ds, maxlen=6)

  def _batches(self, seed, epochs=1, batch_size=16):
    d = pipeline.training_dataset(self.tables, self.ds, batch_size=batch_size,
                                  seed=seed, drop_remainder=False)
    return [{k: v.numpy() for k, v in b.items()}
            for _ in range(epochs) for b in d]

  def test_shapes_and_keys(self):
    b = self._batches(0)[0]
    self.assertEqual(b["history"].shape, (16, 6))
    self.assertEqual(b["item_id"].shape, (16,))
    self.assertCountEqual(b, ["history", "item_id", "user", "gender", "age"])

  def test_every_example_matches_numpy_reference(self):
    seen = 0
    for b in self._batches(0):
      for i in range(len(b["item_id"])):
        u = b["user"][i]
        seq = self.ds.sequences[u]
        pos = int(np.nonzero(seq == b["item_id"][i])[0][0])
        np.testing.assert_array_equal(b["history"][i],
                                      F.pad_history(seq, pos, 6))
        self.assertEqual(b["gender"][i], self.ds.user_features["gender"][u])
        seen += 1
    self.assertEqual(seen, pipeline.num_training_examples(self.ds))

  def test_deterministic_under_seed_and_reshuffled_per_epoch(self):
    a, b, c = self._batches(5, 2), self._batches(5, 2), self._batches(6, 2)
    n = len(a) // 2
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x["item_id"], y["item_id"])
    self.assertFalse(all(np.array_equal(x["item_id"], y["item_id"])
                         for x, y in zip(a, c)))
    self.assertFalse(np.array_equal(a[0]["user"], a[n]["user"]))

  def test_max_examples_subset(self):
    d = pipeline.training_dataset(self.tables, self.ds, batch_size=10,
                                  seed=0, max_examples=35,
                                  drop_remainder=False)
    self.assertEqual(sum(int(b["item_id"].shape[0]) for b in d), 35)

  def test_bad_batch_size(self):
    with self.assertRaisesRegex(ValueError, "batch_size"):
      pipeline.training_dataset(self.tables, self.ds, batch_size=0)


class IndexShufflePipelineTest(PipelineTest):
  """The same guarantees through the index permutation of large datasets."""

  def setUp(self):
    super().setUp()
    self._threshold = pipeline.INDEX_SHUFFLE_FROM
    pipeline.INDEX_SHUFFLE_FROM = 0

  def tearDown(self):
    pipeline.INDEX_SHUFFLE_FROM = self._threshold
    super().tearDown()

  def test_each_epoch_is_a_permutation(self):
    batches = self._batches(3, epochs=2)
    n = pipeline.num_training_examples(self.ds)
    for epoch in (batches[:len(batches) // 2], batches[len(batches) // 2:]):
      pairs = sorted(zip(np.concatenate([b["user"] for b in epoch]),
                         np.concatenate([b["item_id"] for b in epoch])))
      reference = sorted(
          (u, int(self.ds.sequences[u][p])) for u, p in
          F.training_positions(self.ds))
      self.assertEqual(len(pairs), n)
      self.assertEqual(pairs, reference)


_AUTOTUNE_PROBE = """
import mic_tf
from mic_tf import features as F, pipeline, reproducibility
from mic_tf.testing.synthetic import synthetic_dataset
reproducibility.enable_determinism()
ds = synthetic_dataset(num_users=20, num_items=10, length=5, seed=1)
d = pipeline.training_dataset(F.build_feature_tables(ds, maxlen=4), ds, 4)
print("autotune", d.options().autotune.enabled)
"""


@pytest.mark.slow
def test_deterministic_mode_turns_tf_data_autotuning_off():
  # Under op determinism every epoch's iterator teardown waited for the
  # autotuning thread (10-30 s an epoch on ML-1M); off, it does not.
  root = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, PYTHONPATH=str(root))
  env[reproducibility.DETERMINISTIC_ENV] = "1"
  done = subprocess.run([sys.executable, "-c", _AUTOTUNE_PROBE], env=env,
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "autotune False" in done.stdout, done.stdout
  # Without determinism tf.data keeps autotuning.
  ds = synthetic_dataset(num_users=20, num_items=10, length=5, seed=1)
  d = pipeline.training_dataset(F.build_feature_tables(ds, maxlen=4), ds, 4)
  assert d.options().autotune.enabled is not False


if __name__ == "__main__":
  tf.test.main()
