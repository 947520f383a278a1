"""Tests for mic_tf.losses.combination.LossCombiner (eq. 8)."""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import tensorflow as tf

from mic_tf import losses

TERMS = {"basic": 2.0, "ui": 3.0, "uu": 5.0, "ii": 7.0}


class LossCombinerTest(tf.test.TestCase, parameterized.TestCase):

  def test_paper_default(self):
    combiner = losses.LossCombiner()
    self.assertAllClose(combiner(TERMS), 0.7 * 2.0 + 0.3 * (3.0 + 5.0 + 7.0))

  def test_weights_and_subset(self):
    combiner = losses.LossCombiner(lambda_=0.4, weights={"ui": 2.0, "ii": 0.5},
                                   enabled=("ii", "ui"))
    # "uu" is disabled (and ignored although present); "ui" weight 2, "ii" 0.5.
    self.assertAllClose(combiner(TERMS), 0.4 * 2.0 + 0.6 * (2 * 3.0 + 0.5 * 7))
    self.assertEqual(combiner.enabled, ("ui", "ii"))

  @parameterized.parameters("fixed", "uncertainty")
  def test_no_channel_returns_exactly_basic(self, mode):
    combiner = losses.LossCombiner(lambda_=0.7, enabled=(), mode=mode)
    self.assertAllEqual(combiner({"basic": tf.constant(2.5)}), 2.5)
    self.assertEmpty(combiner.trainable_variables)

  def test_uncertainty_mode(self):
    combiner = losses.LossCombiner(enabled=("ui", "ii"), mode="uncertainty")
    names = sorted(v.name for v in combiner.trainable_variables)
    self.assertLen(names, 3)  # basic, ui, ii
    self.assertTrue(all("log_variance" in n for n in names))
    # At s = 0 every term has weight 1.
    self.assertAllClose(combiner(TERMS), 2.0 + 3.0 + 7.0)
    combiner.log_variances["ui"].assign(math.log(3.0))
    self.assertAllClose(combiner(TERMS), 2.0 + 1.0 + math.log(3.0) + 7.0)

  def test_uncertainty_variables_train_towards_log_loss(self):
    combiner = losses.LossCombiner(enabled=("uu",), mode="uncertainty")
    optimizer = tf.keras.optimizers.SGD(learning_rate=0.5)
    terms = {"basic": tf.constant(4.0), "uu": tf.constant(0.5)}
    for _ in range(200):
      with tf.GradientTape() as tape:
        loss = combiner(terms)
      grads = tape.gradient(loss, combiner.trainable_variables)
      self.assertTrue(all(g is not None for g in grads))
      optimizer.apply_gradients(zip(grads, combiner.trainable_variables))
    # d/ds [exp(-s) L + s] = 0 at s = log L.
    self.assertAllClose(combiner.log_variances["basic"], math.log(4.0),
                        atol=1e-3)
    self.assertAllClose(combiner.log_variances["uu"], math.log(0.5),
                        atol=1e-3)

  def test_gradients_reach_the_loss_terms(self):
    values = {k: tf.Variable(v) for k, v in TERMS.items()}
    combiner = losses.LossCombiner(lambda_=0.7, weights={"uu": 3.0})
    with tf.GradientTape() as tape:
      loss = combiner(values)
    grads = tape.gradient(loss, [values[k] for k in ("basic", "ui", "uu", "ii")])
    self.assertAllClose(grads, [0.7, 0.3, 0.9, 0.3])

  def test_graph_mode(self):
    combiner = losses.LossCombiner(mode="uncertainty")

    @tf.function
    def combine(basic, ui, uu, ii):
      return combiner({"basic": basic, "ui": ui, "uu": uu, "ii": ii})

    got = combine(*[tf.constant(TERMS[k], tf.float16)
                    for k in ("basic", "ui", "uu", "ii")])
    self.assertEqual(got.dtype, tf.float32)
    self.assertAllClose(got, sum(TERMS.values()))

  @parameterized.parameters("fixed", "uncertainty")
  def test_get_config_round_trip(self, mode):
    combiner = losses.LossCombiner(lambda_=0.5, weights={"uu": 2.0},
                                   enabled=("uu", "ii"), mode=mode, name="c")
    config = combiner.get_config()
    clone = losses.LossCombiner.from_config(config)
    self.assertEqual(clone.get_config(), config)
    self.assertAllClose(clone(TERMS), combiner(TERMS))
    restored = tf.keras.layers.deserialize(
        tf.keras.layers.serialize(combiner))
    self.assertIsInstance(restored, losses.LossCombiner)
    self.assertEqual(restored.get_config(), config)

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, "lambda_"):
      losses.LossCombiner(lambda_=1.5)
    with self.assertRaisesRegex(ValueError, "Unknown channels"):
      losses.LossCombiner(enabled=("ui", "xx"))
    with self.assertRaisesRegex(ValueError, "Unknown channels"):
      losses.LossCombiner(weights={"vv": 1.0})
    with self.assertRaisesRegex(ValueError, ">= 0"):
      losses.LossCombiner(weights={"ui": -1.0})
    with self.assertRaisesRegex(ValueError, "mode"):
      losses.LossCombiner(mode="gradnorm")
    with self.assertRaisesRegex(ValueError, "string"):
      losses.LossCombiner(enabled="ui")
    with self.assertRaisesRegex(ValueError, r"missing losses \['ii'\]"):
      losses.LossCombiner()({"basic": 1.0, "ui": 1.0, "uu": 1.0})


if __name__ == "__main__":
  tf.test.main()
