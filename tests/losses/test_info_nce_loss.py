"""Tests for mic_tf.losses.info_nce against loop-based numpy references."""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import losses


def _cos(x, y):
  return float(np.dot(x, y) / (np.linalg.norm(x) * np.linalg.norm(y)))


def _reference_info_nce(q, k, pos, tau, qids=None, kids=None, extra=None,
                        weights=None):
  """One query at a time: -log(exp(pos) / sum over kept keys)."""
  q = q.astype(np.float64)
  k = k.astype(np.float64)
  per_query = []
  for i in range(len(q)):
    denominator = 0.0
    for j in range(len(k)):
      keep = True
      if j != pos[i]:
        if qids is not None and kids[j] == qids[i]:
          keep = False
        if extra is not None and not extra[i][j]:
          keep = False
      if keep:
        denominator += math.exp(_cos(q[i], k[j]) / tau)
    per_query.append(-(_cos(q[i], k[pos[i]]) / tau - math.log(denominator)))
  per_query = np.array(per_query)
  if weights is None:
    return per_query.mean()
  return (weights * per_query).sum() / weights.sum()


def _reference_nt_xent(a, b, ids, tau):
  """SimCLR over 2B views, written view by view."""
  views = np.concatenate([a, b]).astype(np.float64)
  n = len(a)
  per_view = []
  for anchor in range(2 * n):
    instance = anchor % n
    positive = (anchor + n) % (2 * n)
    denominator = math.exp(_cos(views[anchor], views[positive]) / tau)
    for other in range(2 * n):
      if other % n == instance:
        continue  # The anchor itself, or its positive (already counted).
      if ids is not None and ids[other % n] == ids[instance]:
        continue  # Accidental hit.
      denominator += math.exp(_cos(views[anchor], views[other]) / tau)
    per_view.append(math.log(denominator) -
                    _cos(views[anchor], views[positive]) / tau)
  return float(np.mean(per_view))


class InfoNceTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(7)
    self.q = rng.randn(5, 4).astype(np.float32)
    self.k = rng.randn(7, 4).astype(np.float32)
    self.pos = np.array([3, 0, 6, 2, 2])
    self.qids = np.array([10, 11, 12, 10, 13])
    self.kids = np.array([11, 10, 99, 10, 10, 12, 13])
    self.extra = rng.rand(5, 7) > 0.3

  def test_plain_matches_reference(self):
    got = losses.info_nce(self.q, self.k, self.pos, temperature=0.1)
    self.assertAllClose(got, _reference_info_nce(self.q, self.k, self.pos, 0.1),
                        rtol=1e-4)

  def test_ids_mask_and_weights_match_reference(self):
    weights = np.array([1.0, 2.0, 0.0, 0.5, 1.0], np.float32)
    got = losses.info_nce(self.q, self.k, self.pos, temperature=0.2,
                          query_ids=self.qids, key_ids=self.kids,
                          extra_key_mask=self.extra, weights=weights)
    want = _reference_info_nce(self.q, self.k, self.pos, 0.2, self.qids,
                               self.kids, self.extra, weights)
    self.assertAllClose(got, want, rtol=1e-4)

  def test_accidental_hits_change_the_loss(self):
    plain = losses.info_nce(self.q, self.k, self.pos)
    masked = losses.info_nce(self.q, self.k, self.pos, query_ids=self.qids,
                             key_ids=self.kids)
    self.assertLess(float(masked), float(plain))

  def test_row_without_negatives_is_zero_not_nan(self):
    extra = np.zeros((5, 7), bool)  # Only the positives survive.
    got = losses.info_nce(self.q, self.k, self.pos, extra_key_mask=extra)
    self.assertAllClose(got, 0.0)
    ids = np.ones(7, np.int64)
    with tf.GradientTape() as tape:
      q = tf.constant(self.q)
      tape.watch(q)
      loss = losses.info_nce(q, self.k, self.pos, query_ids=ids[:5],
                             key_ids=ids)
    grad = tape.gradient(loss, q)
    self.assertAllClose(loss, 0.0)
    self.assertTrue(np.all(np.isfinite(grad.numpy())))

  def test_gradients_flow_and_are_finite(self):
    q = tf.Variable(self.q)
    k = tf.Variable(self.k)
    temperature = tf.Variable(0.1)
    with tf.GradientTape() as tape:
      loss = losses.info_nce(q, k, self.pos, temperature,
                             query_ids=self.qids, key_ids=self.kids)
    for grad in tape.gradient(loss, [q, k, temperature]):
      self.assertIsNotNone(grad)
      self.assertTrue(np.all(np.isfinite(grad.numpy())))

  def test_graph_mode_dynamic_batch_and_float16(self):
    @tf.function(input_signature=[
        tf.TensorSpec([None, 4], tf.float16),
        tf.TensorSpec([None, 4], tf.float16),
        tf.TensorSpec([None], tf.int32)])
    def loss_fn(q, k, pos):
      return losses.info_nce(q, k, pos)

    got = loss_fn(self.q.astype(np.float16), self.k.astype(np.float16),
                  self.pos.astype(np.int32))
    self.assertEqual(got.dtype, tf.float32)
    want = _reference_info_nce(self.q.astype(np.float16),
                               self.k.astype(np.float16), self.pos, 0.1)
    self.assertAllClose(got, want, rtol=1e-3)

  def test_rejects_one_sided_ids_and_bad_temperature(self):
    with self.assertRaisesRegex(ValueError, "both"):
      losses.info_nce(self.q, self.k, self.pos, query_ids=self.qids)
    with self.assertRaisesRegex(ValueError, "temperature"):
      losses.info_nce(self.q, self.k, self.pos, temperature=0.0)
    with self.assertRaisesRegex(ValueError, "same dimension"):
      losses.info_nce(self.q, self.k[:, :3], self.pos)
    with self.assertRaisesRegex(ValueError, "floating"):
      losses.info_nce(self.pos[:, None], self.k, self.pos)


class NtXentTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(3)
    self.a = rng.randn(6, 5).astype(np.float32)
    self.b = rng.randn(6, 5).astype(np.float32)
    self.ids = np.array([4, 8, 4, 1, 8, 2])  # Duplicates on purpose.

  def test_matches_reference(self):
    for ids in (None, self.ids):
      got = losses.nt_xent(self.a, self.b, ids=ids, temperature=0.1)
      self.assertAllClose(got, _reference_nt_xent(self.a, self.b, ids, 0.1),
                          rtol=1e-4)

  def test_all_same_id_gives_zero_without_nan(self):
    a = tf.Variable(self.a)
    with tf.GradientTape() as tape:
      loss = losses.nt_xent(a, self.b, ids=np.zeros(6, np.int32))
    self.assertAllClose(loss, 0.0)
    self.assertTrue(np.all(np.isfinite(tape.gradient(loss, a).numpy())))

  def test_gradients_flow_to_both_views(self):
    a = tf.Variable(self.a)
    b = tf.Variable(self.b)
    with tf.GradientTape() as tape:
      loss = losses.nt_xent(a, b, ids=self.ids)
    for grad in tape.gradient(loss, [a, b]):
      self.assertIsNotNone(grad)
      self.assertTrue(np.all(np.isfinite(grad.numpy())))
      self.assertGreater(float(tf.reduce_sum(tf.abs(grad))), 0.0)

  def test_graph_mode_dynamic_batch(self):
    @tf.function(input_signature=[
        tf.TensorSpec([None, 5], tf.float32),
        tf.TensorSpec([None, 5], tf.float32),
        tf.TensorSpec([None], tf.int64)])
    def loss_fn(a, b, ids):
      return losses.nt_xent(a, b, ids=ids)

    for n in (6, 3):
      got = loss_fn(self.a[:n], self.b[:n], self.ids[:n])
      self.assertAllClose(
          got, _reference_nt_xent(self.a[:n], self.b[:n], self.ids[:n], 0.1),
          rtol=1e-4)

  def test_rejects_mismatched_views(self):
    with self.assertRaisesRegex(ValueError, "same shape"):
      losses.nt_xent(self.a, self.b[:4])


if __name__ == "__main__":
  tf.test.main()
