"""Tests for mic_tf.losses.basic (eq. 7) against numpy references."""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import losses


def _logit(u, v, tau):
  u = np.asarray(u, np.float64)
  v = np.asarray(v, np.float64)
  return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v))) / tau


def _softplus(x):
  return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def _reference_logistic(users, items, ids, tau):
  n = len(users)
  positive = [_softplus(-_logit(users[i], items[i], tau)) for i in range(n)]
  negative = [_softplus(_logit(users[i], items[j], tau))
              for i in range(n) for j in range(n)
              if j != i and (ids is None or ids[j] != ids[i])]
  return np.mean(positive) + (np.mean(negative) if negative else 0.0)


def _reference_softmax(users, items, ids, tau, log_q=None):
  n = len(users)
  total = 0.0
  for i in range(n):
    def corrected(j, i=i):
      return _logit(users[i], items[j], tau) - (0.0 if log_q is None
                                                 else float(log_q[j]))
    kept = [j for j in range(n)
            if j == i or ids is None or ids[j] != ids[i]]
    total += math.log(sum(math.exp(corrected(j)) for j in kept)) - corrected(i)
  return total / n


class BasicLossesTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(2)
    self.users = rng.randn(6, 4).astype(np.float32)
    self.items = rng.randn(6, 4).astype(np.float32)
    self.ids = np.array([3, 1, 3, 2, 1, 4])
    self.log_q = np.log(rng.dirichlet(np.ones(6))).astype(np.float32)

  def test_logistic_matches_reference(self):
    for ids, tau in ((None, 0.1), (self.ids, 0.1), (self.ids, 1.0)):
      got = losses.logistic_loss(self.users, self.items, ids, temperature=tau)
      self.assertAllClose(
          got, _reference_logistic(self.users, self.items, ids, tau),
          rtol=1e-4)

  def test_softmax_matches_reference(self):
    for ids, log_q in ((None, None), (self.ids, None), (self.ids, self.log_q)):
      got = losses.softmax_loss(self.users, self.items, ids, log_q=log_q)
      self.assertAllClose(
          got, _reference_softmax(self.users, self.items, ids, 0.1, log_q),
          rtol=1e-4)

  def test_logq_correction_changes_the_loss(self):
    plain = losses.softmax_loss(self.users, self.items, self.ids)
    corrected = losses.softmax_loss(self.users, self.items, self.ids,
                                    log_q=self.log_q)
    self.assertNotAllClose(plain, corrected)

  def test_no_valid_negatives_is_finite(self):
    same = np.full(6, 5)
    users = tf.Variable(self.users)
    with tf.GradientTape(persistent=True) as tape:
      logistic = losses.logistic_loss(users, self.items, same)
      softmax = losses.softmax_loss(users, self.items, same)
    self.assertAllClose(
        logistic, _reference_logistic(self.users, self.items, same, 0.1),
        rtol=1e-4)
    self.assertAllClose(softmax, 0.0)
    for loss in (logistic, softmax):
      self.assertTrue(np.all(np.isfinite(tape.gradient(loss, users).numpy())))

  def test_gradients_flow_including_learned_temperature(self):
    users = tf.Variable(self.users)
    items = tf.Variable(self.items)
    log_temperature = tf.Variable(math.log(0.2))
    for loss_fn in (losses.logistic_loss, losses.softmax_loss):
      with tf.GradientTape() as tape:
        loss = loss_fn(users, items, self.ids,
                       temperature=tf.exp(log_temperature))
      for grad in tape.gradient(loss, [users, items, log_temperature]):
        self.assertIsNotNone(grad)
        self.assertTrue(np.all(np.isfinite(grad.numpy())))

  def test_graph_mode_dynamic_batch_float16(self):
    spec = tf.TensorSpec([None, 4], tf.float16)
    ids_spec = tf.TensorSpec([None], tf.int64)

    @tf.function(input_signature=[spec, spec, ids_spec])
    def both(users, items, ids):
      return (losses.logistic_loss(users, items, ids),
              losses.softmax_loss(users, items, ids))

    users16 = self.users.astype(np.float16)
    items16 = self.items.astype(np.float16)
    for n in (6, 3):
      logistic, softmax = both(users16[:n], items16[:n], self.ids[:n])
      self.assertEqual(logistic.dtype, tf.float32)
      self.assertAllClose(
          logistic,
          _reference_logistic(users16[:n], items16[:n], self.ids[:n], 0.1),
          rtol=2e-3)
      self.assertAllClose(
          softmax,
          _reference_softmax(users16[:n], items16[:n], self.ids[:n], 0.1),
          rtol=2e-3)

  def test_rejects_unpaired_batches(self):
    with self.assertRaisesRegex(ValueError, "same number of rows"):
      losses.logistic_loss(self.users, self.items[:4], None)
    with self.assertRaisesRegex(ValueError, "same number of rows"):
      losses.softmax_loss(self.users, self.items[:4], None)


if __name__ == "__main__":
  tf.test.main()
