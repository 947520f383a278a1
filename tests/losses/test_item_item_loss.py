"""Tests for mic_tf.losses.item_item (eq. 6) against a numpy reference."""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import losses


def _reference_item_item(a, b, item_ids, tau):
  """Each of the 2B item views against its twin and other items' views."""
  n = len(a)
  views = [(i, v[i]) for v in (a, b) for i in range(n)]  # (item row, vector)
  unit = [x.astype(np.float64) / np.linalg.norm(x) for _, x in views]
  total = 0.0
  for anchor, (row, _) in enumerate(views):
    twin = anchor + n if anchor < n else anchor - n
    logits = {twin: float(unit[anchor] @ unit[twin]) / tau}
    for other, (other_row, _) in enumerate(views):
      if other_row == row:
        continue
      if item_ids is not None and item_ids[other_row] == item_ids[row]:
        continue
      logits[other] = float(unit[anchor] @ unit[other]) / tau
    log_denominator = math.log(sum(math.exp(l) for l in logits.values()))
    total += log_denominator - logits[twin]
  return total / (2 * n)


class ItemItemLossTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(11)
    self.a = rng.randn(5, 3).astype(np.float32)
    self.b = (self.a + 0.3 * rng.randn(5, 3)).astype(np.float32)
    self.item_ids = np.array([1, 3, 1, 7, 3])  # Popular items 1 and 3 recur.

  def test_matches_reference_with_duplicate_items(self):
    for ids, tau in ((None, 0.1), (self.item_ids, 0.1), (self.item_ids, 0.5)):
      got = losses.item_item_loss(self.a, self.b, ids, temperature=tau)
      self.assertAllClose(got, _reference_item_item(self.a, self.b, ids, tau),
                          rtol=1e-4)

  def test_gradients_and_no_nan_without_negatives(self):
    a = tf.Variable(self.a)
    b = tf.Variable(self.b)
    with tf.GradientTape(persistent=True) as tape:
      loss = losses.item_item_loss(a, b, self.item_ids)
      degenerate = losses.item_item_loss(a, b, np.full(5, 9))
    for grad in tape.gradient(loss, [a, b]):
      self.assertTrue(np.all(np.isfinite(grad.numpy())))
    self.assertAllClose(degenerate, 0.0)
    self.assertTrue(np.all(np.isfinite(tape.gradient(degenerate, a).numpy())))

  def test_graph_mode(self):
    loss_fn = tf.function(losses.item_item_loss)
    got = loss_fn(tf.constant(self.a, tf.float16),
                  tf.constant(self.b, tf.float16), tf.constant(self.item_ids))
    self.assertEqual(got.dtype, tf.float32)
    self.assertAllClose(
        got, _reference_item_item(self.a, self.b, self.item_ids, 0.1),
        rtol=2e-3)


if __name__ == "__main__":
  tf.test.main()
