"""UU (eq. 5) and II (eq. 6) against one numpy reference.

Both terms contrast two perturbed views of the same rows (users for UU,
target items for II): each view's positive is its twin, the other 2(B - 1)
views are negatives, except views of rows with the same id (a user sampled
twice, a popular item that recurs in the batch).
"""

import math

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import losses


def _reference(a, b, ids, tau):
  """Each of the 2B views against its twin and other rows' views."""
  n = len(a)
  views = [(i, v[i]) for v in (a, b) for i in range(n)]  # (row, vector)
  unit = [x.astype(np.float64) / np.linalg.norm(x) for _, x in views]
  total = 0.0
  for anchor, (row, _) in enumerate(views):
    twin = anchor + n if anchor < n else anchor - n
    logits = {twin: float(unit[anchor] @ unit[twin]) / tau}
    for other, (other_row, _) in enumerate(views):
      if other_row == row:
        continue
      if ids is not None and ids[other_row] == ids[row]:
        continue
      logits[other] = float(unit[anchor] @ unit[other]) / tau
    log_denominator = math.log(sum(math.exp(l) for l in logits.values()))
    total += log_denominator - logits[twin]
  return total / (2 * n)


_TERMS = (
    # User 0 and 3 sampled twice.
    ("user_user", losses.user_user_loss, [0, 3, 0, 7, 3]),
    # Popular items 1 and 3 recur.
    ("item_item", losses.item_item_loss, [1, 3, 1, 7, 3]),
)


class SameSideLossTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.RandomState(11)
    self.a = rng.randn(5, 3).astype(np.float32)
    self.b = (self.a + 0.3 * rng.randn(5, 3)).astype(np.float32)

  @parameterized.named_parameters(*_TERMS)
  def test_matches_reference_with_repeated_ids(self, loss, ids):
    ids = np.array(ids)
    for row_ids, tau in ((None, 0.1), (ids, 0.1), (ids, 0.5)):
      got = loss(self.a, self.b, row_ids, temperature=tau)
      self.assertAllClose(got, _reference(self.a, self.b, row_ids, tau),
                          rtol=1e-4)

  @parameterized.named_parameters(*_TERMS)
  def test_gradients_and_no_nan_without_negatives(self, loss, ids):
    a = tf.Variable(self.a)
    b = tf.Variable(self.b)
    with tf.GradientTape(persistent=True) as tape:
      value = loss(a, b, np.array(ids))
      degenerate = loss(a, b, np.full(5, 9))
    for grad in tape.gradient(value, [a, b]):
      self.assertTrue(np.all(np.isfinite(grad.numpy())))
    self.assertAllClose(degenerate, 0.0)
    self.assertTrue(np.all(np.isfinite(tape.gradient(degenerate, a).numpy())))

  @parameterized.named_parameters(*_TERMS)
  def test_graph_mode(self, loss, ids):
    got = tf.function(loss)(tf.constant(self.a, tf.float16),
                            tf.constant(self.b, tf.float16),
                            tf.constant(ids))
    self.assertEqual(got.dtype, tf.float32)
    self.assertAllClose(got, _reference(self.a, self.b, np.array(ids), 0.1),
                        rtol=2e-3)


if __name__ == "__main__":
  tf.test.main()
