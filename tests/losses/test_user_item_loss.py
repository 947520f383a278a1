"""Tests for mic_tf.losses.user_item (eq. 4) against a numpy reference."""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import losses


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x)


def _one_direction(anchors, keys, ids, tau):
  """Mean over (view k, example i) of -log softmax of the aligned key.

  Negatives: keys of every view of every other example j whose id differs.
  """
  num_views, n = len(anchors), len(anchors[0])
  total = 0.0
  for k in range(num_views):
    for i in range(n):
      anchor = _unit(anchors[k][i])
      positive = float(anchor @ _unit(keys[k][i])) / tau
      denominator = math.exp(positive)
      for k2 in range(num_views):
        for j in range(n):
          if j == i or (ids is not None and ids[j] == ids[i]):
            continue
          denominator += math.exp(float(anchor @ _unit(keys[k2][j])) / tau)
      total += math.log(denominator) - positive
  return total / (num_views * n)


def _reference_user_item(user_views, item_views, item_ids, user_ids, tau):
  return 0.5 * (_one_direction(user_views, item_views, item_ids, tau) +
                _one_direction(item_views, user_views, user_ids, tau))


class UserItemLossTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(5)
    self.users = [rng.randn(6, 4).astype(np.float32) for _ in range(2)]
    self.items = [rng.randn(6, 4).astype(np.float32) for _ in range(2)]
    self.item_ids = np.array([2, 5, 2, 9, 5, 1])
    self.user_ids = np.array([0, 1, 2, 0, 4, 5])

  def test_matches_reference(self):
    cases = ((None, None, 0.1), (self.item_ids, None, 0.1),
             (self.item_ids, self.user_ids, 0.1),
             (self.item_ids, self.user_ids, 0.7))
    for item_ids, user_ids, tau in cases:
      got = losses.user_item_loss(self.users, self.items, item_ids,
                                  user_ids=user_ids, temperature=tau)
      want = _reference_user_item(self.users, self.items, item_ids, user_ids,
                                  tau)
      self.assertAllClose(got, want, rtol=1e-4)

  def test_single_and_three_views(self):
    for k in (1, 3):
      users = (self.users * 2)[:k]
      items = (self.items * 2)[:k]
      got = losses.user_item_loss(users, items, self.item_ids)
      want = _reference_user_item(users, items, self.item_ids, None, 0.1)
      self.assertAllClose(got, want, rtol=1e-4)

  def test_gradients_flow_to_every_view(self):
    variables = [tf.Variable(v) for v in self.users + self.items]
    with tf.GradientTape() as tape:
      loss = losses.user_item_loss(variables[:2], variables[2:],
                                   self.item_ids, user_ids=self.user_ids)
    for grad in tape.gradient(loss, variables):
      self.assertIsNotNone(grad)
      self.assertTrue(np.all(np.isfinite(grad.numpy())))
      self.assertGreater(float(tf.reduce_sum(tf.abs(grad))), 0.0)

  def test_no_nan_when_every_example_has_the_same_item(self):
    users = tf.Variable(self.users[0])
    with tf.GradientTape() as tape:
      loss = losses.user_item_loss([users], [self.items[0]], np.full(6, 3),
                                   user_ids=np.full(6, 1))
    self.assertAllClose(loss, 0.0)
    self.assertTrue(np.all(np.isfinite(tape.gradient(loss, users).numpy())))

  def test_graph_mode_dynamic_batch_float16(self):
    spec = tf.TensorSpec([None, 4], tf.float16)

    @tf.function(input_signature=[spec, spec, spec, spec,
                                  tf.TensorSpec([None], tf.int32)])
    def loss_fn(u1, u2, v1, v2, ids):
      return losses.user_item_loss([u1, u2], [v1, v2], ids)

    half = [v.astype(np.float16) for v in self.users + self.items]
    for n in (6, 4):
      got = loss_fn(*[h[:n] for h in half], self.item_ids[:n].astype(np.int32))
      want = _reference_user_item([h[:n] for h in half[:2]],
                                  [h[:n] for h in half[2:]],
                                  self.item_ids[:n], None, 0.1)
      self.assertEqual(got.dtype, tf.float32)
      self.assertAllClose(got, want, rtol=2e-3)

  def test_rejects_bad_view_lists(self):
    with self.assertRaisesRegex(ValueError, "same number of views"):
      losses.user_item_loss(self.users, self.items[:1], self.item_ids)
    with self.assertRaisesRegex(ValueError, "list or tuple"):
      losses.user_item_loss(tf.constant(self.users[0]), self.items,
                            self.item_ids)
    with self.assertRaisesRegex(ValueError, "non-empty"):
      losses.user_item_loss([], [], self.item_ids)


if __name__ == "__main__":
  tf.test.main()
