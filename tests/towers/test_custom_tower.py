"""Plugging a new tower into MIC: define, register, build, train.

The two towers below are the documented way to bring your own encoder
(``mic_tf/towers/base.py``): a ``Tower`` subclass (MIC perturbs it by field
masking *and* embedding dropout) and a plain ``tf.keras.Model`` (field masking
only).
"""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from mic_tf import towers
from mic_tf.models import MICConfig, MICModel
from mic_tf.towers import base as tower_base
from mic_tf.towers import registry
import tower_test_lib as lib


class MaxPoolTower(towers.Tower):
  """A new tower in a few lines: max over the history, then a Dense layer."""

  def __init__(self, fields, embedding_dim=16, output_dim=16, **kwargs):
    super().__init__(fields, embedding_dim, output_dim, **kwargs)
    self.head = tf.keras.layers.Dense(output_dim)

  def encode(self, embedded, features, training=None):
    real = tf.not_equal(features["history"], 0)[..., None]
    pooled = tf.reduce_max(tf.where(real, embedded["history"], -1e4), axis=1)
    pooled = tf.where(tf.reduce_any(real, axis=1), pooled, 0.0)
    others = self.pooled_fields(embedded, features, skip=("history",))
    return self.head(tf.concat([pooled, others], axis=-1))


class KerasBagTower(tf.keras.Model):
  """Any Keras model works too: mean of history embeddings, then Dense."""

  def __init__(self, num_items, dim, **kwargs):
    super().__init__(**kwargs)
    self.items = tf.keras.layers.Embedding(num_items + 1, dim)
    self.head = tf.keras.layers.Dense(dim)

  def call(self, features, training=None):
    ids = features["history"]
    return self.head(towers.masked_mean(self.items(ids), ids))


def build_max_pool(fields, embedding_dim, output_dim, dropout, **kwargs):
  del dropout, kwargs["hidden_units"]
  return MaxPoolTower(fields, embedding_dim, output_dim, **kwargs)


def build_keras_bag(fields, embedding_dim, output_dim, dropout, name=None,
                    **kwargs):
  del dropout, kwargs
  history = [f for f in fields if f.name == "history"][0]
  return KerasBagTower(history.vocab_size, output_dim, name=name)


class CustomTowerTest(tf.test.TestCase, parameterized.TestCase):

  def register(self, name, builder):
    registry.register_tower(name, builder, overwrite=True)
    # Keep the process-wide registry clean for other tests.
    builders = registry._USER_BUILDERS  # pylint: disable=protected-access
    self.addCleanup(builders.pop, name, None)

  @parameterized.named_parameters(
      ("tower_subclass", "test_max_pool", build_max_pool, MaxPoolTower),
      ("plain_keras_model", "test_keras_bag", build_keras_bag, KerasBagTower))
  @pytest.mark.slow
  def test_register_build_and_train(self, name, builder, cls):
    self.register(name, builder)
    self.assertIn(name, towers.available_towers())
    tf.keras.utils.set_random_seed(0)
    _, tables, _ = lib.data()
    user, item = towers.build_towers(name, tables.spec, lib.EMBEDDING_DIM,
                                     lib.OUTPUT_DIM, hidden_units=(32,))
    self.assertIsInstance(user, cls)
    self.assertIsInstance(item, towers.DSSMTower)
    self.assertEqual(user(lib.user_batch()).shape, (8, lib.OUTPUT_DIM))
    model = MICModel(user, item, tables.spec, tables.item_table,
                     MICConfig(contrastive_batch_size=lib.BATCH))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    losses = lib.fit(model, epochs=3, max_examples=6 * lib.BATCH)
    losses = losses.history["loss"]
    self.assertTrue(np.all(np.isfinite(losses)), losses)
    self.assertLess(losses[-1], losses[0], losses)


class DocstringExampleTest(tf.test.TestCase):

  def test_tower_docstring_example_runs(self):
    doc = tower_base.__doc__
    code = doc.split("::\n", 1)[1].split("\nRegister it", 1)[0]
    code = "\n".join(line[2:] for line in code.splitlines())
    scope = {"mic_tf": mic_tf, "tf": tf}
    exec(code, scope)  # pylint: disable=exec-used
    _, tables, _ = lib.data()
    tower = scope["MeanTower"](tables.spec.user_fields, embedding_dim=8,
                               output_dim=4)
    self.assertEqual(tower(lib.user_batch()).shape, (8, 4))
    self.assertFalse(tower.multi_interest)


if __name__ == "__main__":
  tf.test.main()
