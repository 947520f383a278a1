"""Tests for mic_tf.layers.embedding_dropout.EmbeddingDropout."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf.layers import EmbeddingDropout


def _within_4_sigma(test, fraction, rate, n):
  sigma = np.sqrt(rate * (1.0 - rate) / n)
  test.assertLess(abs(fraction - rate), 4.0 * sigma,
                  f"fraction {fraction} vs rate {rate} (n={n})")


class EmbeddingDropoutTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(0)
    # Strictly positive values so that a zero can only come from dropout.
    self.x = tf.constant(rng.rand(250, 80).astype(np.float32) + 0.5)

  def test_drop_rate_and_scaling(self):
    layer = EmbeddingDropout(rate=0.2, seed=3)
    out = layer(self.x, training=True).numpy()
    dropped = out == 0.0
    _within_4_sigma(self, dropped.mean(), 0.2, out.size)
    self.assertAllClose(out[~dropped], self.x.numpy()[~dropped] / 0.8)

  def test_dict_entries_dropped_independently(self):
    layer = EmbeddingDropout(rate=0.5, seed=5)
    out = layer({"a": self.x, "b": self.x}, training=True)
    drop_a = out["a"].numpy() == 0.0
    drop_b = out["b"].numpy() == 0.0
    _within_4_sigma(self, drop_a.mean(), 0.5, drop_a.size)
    _within_4_sigma(self, drop_b.mean(), 0.5, drop_b.size)
    _within_4_sigma(self, (drop_a & drop_b).mean(), 0.25, drop_a.size)

  @parameterized.parameters(None, False)
  def test_identity_at_inference(self, training):
    layer = EmbeddingDropout(rate=0.5)
    self.assertAllEqual(layer(self.x, training=training), self.x)
    out = layer({"a": self.x}, training=training)
    self.assertAllEqual(out["a"], self.x)

  def test_tensor_training_flag_in_graph_mode_and_float16(self):
    layer = EmbeddingDropout(rate=0.3, seed=1)
    x16 = tf.cast(self.x, tf.float16)

    @tf.function
    def apply(x, training):
      return layer(x, training=training)

    self.assertAllEqual(apply(x16, tf.constant(False)), x16)
    out = apply(x16, tf.constant(True))
    self.assertEqual(out.dtype, tf.float16)
    _within_4_sigma(self, np.mean(out.numpy() == 0), 0.3,
                    out.shape.num_elements())

  def test_gradient_flows_through_kept_elements(self):
    layer = EmbeddingDropout(rate=0.2, seed=2)
    x = tf.Variable(self.x)
    with tf.GradientTape() as tape:
      out = layer(x, training=True)
      total = tf.reduce_sum(out)
    grad = tape.gradient(total, x).numpy()
    kept = out.numpy() != 0
    self.assertAllClose(grad[kept], np.full(kept.sum(), 1.25))
    self.assertAllEqual(grad[~kept], np.zeros((~kept).sum()))

  def test_get_config_round_trip(self):
    layer = EmbeddingDropout(rate=0.3, seed=9, name="drop")
    config = layer.get_config()
    self.assertEqual(EmbeddingDropout.from_config(config).get_config(), config)
    self.assertEqual(config["rate"], 0.3)
    self.assertEqual(config["seed"], 9)

  def test_seeded_layers_are_reproducible(self):
    first = EmbeddingDropout(rate=0.5, seed=4)
    second = EmbeddingDropout(rate=0.5, seed=4)
    out = first(self.x, training=True)
    self.assertAllEqual(out, second(self.x, training=True))
    self.assertNotAllEqual(out, first(self.x, training=True))

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, r"\[0, 1\)"):
      EmbeddingDropout(rate=1.0)
    with self.assertRaisesRegex(ValueError, "float"):
      EmbeddingDropout()({"ids": tf.constant([1, 2])}, training=True)


if __name__ == "__main__":
  tf.test.main()
