"""Tests for mic_tf.losses.user_user (eq. 5) against a numpy reference."""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import losses


def _reference_user_user(a, b, user_ids, tau):
  """Each of the 2B user views against its twin and other users' views."""
  n = len(a)
  views = [(i, v[i]) for v in (a, b) for i in range(n)]  # (user row, vector)
  unit = [x.astype(np.float64) / np.linalg.norm(x) for _, x in views]
  total = 0.0
  for anchor, (row, _) in enumerate(views):
    twin = anchor + n if anchor < n else anchor - n
    logits = {twin: float(unit[anchor] @ unit[twin]) / tau}
    for other, (other_row, _) in enumerate(views):
      if other_row == row:
        continue
      if user_ids is not None and user_ids[other_row] == user_ids[row]:
        continue
      logits[other] = float(unit[anchor] @ unit[other]) / tau
    log_denominator = math.log(sum(math.exp(l) for l in logits.values()))
    total += log_denominator - logits[twin]
  return total / (2 * n)


class UserUserLossTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(11)
    self.a = rng.randn(5, 3).astype(np.float32)
    self.b = (self.a + 0.3 * rng.randn(5, 3)).astype(np.float32)
    self.user_ids = np.array([0, 3, 0, 7, 3])  # User 0 and 3 sampled twice.

  def test_matches_reference_with_duplicate_users(self):
    for ids, tau in ((None, 0.1), (self.user_ids, 0.1), (self.user_ids, 0.5)):
      got = losses.user_user_loss(self.a, self.b, ids, temperature=tau)
      self.assertAllClose(got, _reference_user_user(self.a, self.b, ids, tau),
                          rtol=1e-4)

  def test_gradients_and_no_nan_without_negatives(self):
    a = tf.Variable(self.a)
    b = tf.Variable(self.b)
    with tf.GradientTape(persistent=True) as tape:
      loss = losses.user_user_loss(a, b, self.user_ids)
      degenerate = losses.user_user_loss(a, b, np.full(5, 9))
    for grad in tape.gradient(loss, [a, b]):
      self.assertTrue(np.all(np.isfinite(grad.numpy())))
    self.assertAllClose(degenerate, 0.0)
    self.assertTrue(np.all(np.isfinite(tape.gradient(degenerate, a).numpy())))

  def test_graph_mode(self):
    loss_fn = tf.function(losses.user_user_loss)
    got = loss_fn(tf.constant(self.a, tf.float16),
                  tf.constant(self.b, tf.float16), tf.constant(self.user_ids))
    self.assertEqual(got.dtype, tf.float32)
    self.assertAllClose(
        got, _reference_user_user(self.a, self.b, self.user_ids, 0.1),
        rtol=2e-3)


if __name__ == "__main__":
  tf.test.main()
