"""Tests for mic_tf.layers.field_mask.FieldMask."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf.layers import FieldMask

NUM = 20000


def _features(rng):
  history = rng.randint(1, 50, size=(NUM, 8)).astype(np.int32)
  history[:, 5:] = 0  # Padding tail: 5 real entries per row.
  history[::3, 2:] = 0  # Every third row has only 2 real entries.
  return {
      "user_id": tf.constant(np.arange(NUM) % 7, tf.int64),  # 0 is valid.
      "gender": tf.constant(rng.randint(1, 3, NUM), tf.int32),
      "history": tf.constant(history),
      "dense": tf.constant(rng.rand(NUM).astype(np.float32)),
  }


def _within_4_sigma(test, fraction, rate, n):
  sigma = np.sqrt(rate * (1.0 - rate) / n)
  test.assertLess(abs(fraction - rate), 4.0 * sigma + 1e-12,
                  f"fraction {fraction} vs rate {rate} (n={n})")


class FieldMaskTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.features = _features(np.random.RandomState(0))
    self.layer = FieldMask(
        field_rates={"user_id": 0.2, "gender": 0.5, "history": 0.3},
        mask_values={"user_id": 7, "gender": 3, "history": 50},
        sequence_fields=("history",), seed=1)

  def test_rates_padding_and_mask_values(self):
    out = self.layer(self.features, training=True)
    for field, rate, mask in (("user_id", 0.2, 7), ("gender", 0.5, 3)):
      before = self.features[field].numpy()
      after = out[field].numpy()
      changed = after != before
      self.assertTrue(np.all(after[changed] == mask))
      _within_4_sigma(self, np.mean(after == mask), rate, NUM)
      self.assertEqual(out[field].dtype, self.features[field].dtype)
    before = self.features["history"].numpy()
    after = out["history"].numpy()
    real = before != 0
    self.assertAllEqual(after[~real], np.zeros((~real).sum()))  # Padding kept.
    self.assertTrue(np.all((after[real] == before[real]) | (after[real] == 50)))
    _within_4_sigma(self, np.mean(after[real] == 50), 0.3, real.sum())

  def test_masks_are_independent_across_fields_and_calls(self):
    first = self.layer(self.features, training=True)
    second = self.layer(self.features, training=True)
    self.assertNotAllEqual(first["user_id"], second["user_id"])
    hit_user = first["user_id"].numpy() == 7
    hit_gender = first["gender"].numpy() == 3
    # Independent fields: P(both) close to 0.2 * 0.5.
    _within_4_sigma(self, np.mean(hit_user & hit_gender), 0.1, NUM)

  def test_other_keys_pass_through(self):
    out = self.layer(self.features, training=True)
    self.assertIs(out["dense"], self.features["dense"])
    self.assertSetEqual(set(out), set(self.features))

  @parameterized.parameters(None, False)
  def test_identity_at_inference(self, training):
    out = self.layer(self.features, training=training)
    for key, value in self.features.items():
      self.assertAllEqual(out[key], value)

  def test_tensor_training_flag_in_graph_mode(self):
    @tf.function
    def apply(features, training):
      return self.layer(features, training=training)

    masked = apply(self.features, tf.constant(True))
    kept = apply(self.features, tf.constant(False))
    self.assertAllEqual(kept["gender"], self.features["gender"])
    _within_4_sigma(self, np.mean(masked["gender"].numpy() == 3), 0.5, NUM)

  def test_seeded_layers_are_reproducible(self):
    make = lambda: FieldMask({"gender": 0.5}, {"gender": 3}, seed=42)
    small = {"gender": self.features["gender"][:200]}
    self.assertAllEqual(make()(small, training=True)["gender"],
                        make()(small, training=True)["gender"])

  def test_get_config_round_trip(self):
    config = self.layer.get_config()
    clone = FieldMask.from_config(config)
    self.assertEqual(clone.get_config(), config)
    self.assertEqual(config["sequence_fields"], ["history"])
    restored = tf.keras.layers.deserialize(
        tf.keras.layers.serialize(self.layer))
    self.assertIsInstance(restored, FieldMask)

  def test_invalid_arguments(self):
    with self.assertRaisesRegex(ValueError, "padding"):
      FieldMask({"a": 0.1}, {"a": 0})
    with self.assertRaisesRegex(ValueError, r"\[0, 1\)"):
      FieldMask({"a": 1.0}, {"a": 5})
    with self.assertRaisesRegex(ValueError, r"\[0, 1\)"):
      FieldMask({"a": -0.1}, {"a": 5})
    with self.assertRaisesRegex(ValueError, "no mask value"):
      FieldMask({"a": 0.1}, {"b": 5})
    with self.assertRaisesRegex(ValueError, "no mask rate"):
      FieldMask({"a": 0.1}, {"a": 5}, sequence_fields=("b",))
    layer = FieldMask({"a": 0.1}, {"a": 5})
    with self.assertRaisesRegex(ValueError, "not in the inputs"):
      layer({"b": tf.constant([1])}, training=True)
    with self.assertRaisesRegex(ValueError, "integer ids"):
      layer({"a": tf.constant([1.0])}, training=True)


if __name__ == "__main__":
  tf.test.main()
