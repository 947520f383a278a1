"""Tests of the mined contrastive terms against a numpy reference."""

import mic_tf  # noqa: F401  (Keras-2 environment first)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import losses as L
from mic_tf.mining import losses as ML

TAU = 0.5


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _lse(values):
  values = np.asarray(values, np.float64)
  m = values.max()
  return m + np.log(np.exp(values - m).sum())


def _case(seed=0, b=4, d=5, h_per=2):
  """Two views of b examples, mined positives and hard negatives.

  Ids are chosen to collide on purpose: examples 0 and 2 share a user, the
  mined neighbour of example 1 is the user of example 3, a hard negative has
  the id of example 0's user and one shares example 1's cluster.
  """
  rng = np.random.default_rng(seed)
  views = [rng.normal(size=(b, d)).astype(np.float32) for _ in range(2)]
  ids = np.array([7, 3, 7, 9], np.int32)
  mined = rng.normal(size=(b, d)).astype(np.float32)
  mined_ids = np.array([3, 9, 11, 3], np.int32)
  mined_ok = np.array([True, True, False, True])
  clusters = np.array([0, 1, 0, 2], np.int32)
  hard = {
      "vectors": rng.normal(size=(b * h_per, d)).astype(np.float32),
      "ids": np.array([5, 7, 12, 13, 14, 9, 15, 16], np.int32),
      "clusters": np.array([1, 2, 1, 0, 2, 0, 1, 0], np.int32),
      "valid": np.array([True, True, True, True, True, True, False, True]),
  }
  return views, ids, mined, mined_ids, mined_ok, clusters, hard


def _reference(views, ids, mined, mined_ids, mined_ok, clusters, hard):
  """(L_aug, L_nn) by the formulas of mic_tf.mining.losses, with loops."""
  b = len(ids)
  q = _unit(np.concatenate(views).astype(np.float64))
  qids = np.tile(ids, 2)
  ex = np.tile(np.arange(b), 2)
  pos = np.concatenate([np.arange(b, 2 * b), np.arange(b)])
  qc = np.tile(clusters, 2)
  m = _unit(mined.astype(np.float64))
  h = _unit(hard["vectors"].astype(np.float64))
  s = lambda a, c: float(a @ c) / TAU
  aug, nn, weights = [], [], []
  for r in range(2 * b):
    hard_ok = [l for l in range(len(h)) if hard["valid"][l] and
               hard["clusters"][l] != qc[r] and hard["ids"][l] != qids[r]]
    terms = [s(q[r], q[pos[r]])]
    terms += [s(q[r], q[j]) for j in range(2 * b)
              if j != r and j != pos[r] and qids[j] != qids[r]]
    terms += [s(q[r], h[l]) for l in hard_ok]
    aug.append(_lse(terms) - s(q[r], q[pos[r]]))
    e = ex[r]
    excl = {qids[r], mined_ids[e]}
    terms = [s(q[r], m[e])]
    terms += [s(q[r], m[j]) for j in range(b)
              if j != e and mined_ok[j] and mined_ids[j] not in excl]
    terms += [s(q[r], q[j]) for j in range(2 * b)
              if j != r and qids[j] not in excl]
    terms += [s(q[r], h[l]) for l in hard_ok if hard["ids"][l] != mined_ids[e]]
    nn.append(_lse(terms) - s(q[r], m[e]))
    weights.append(float(mined_ok[e]))
  nn, weights = np.array(nn), np.array(weights)
  return np.mean(aug), (nn * weights).sum() / weights.sum()


def _tf_terms(views, ids, mined, mined_ids, mined_ok, clusters, hard,
              use_hard=True):
  queries, examples, qids, positives, not_self = ML.self_channel_layout(
      (tf.constant(views[0]), tf.constant(views[1])), tf.constant(ids))
  hard_t = hard_mask = None
  if use_hard:
    hard_t = {k: tf.constant(v) for k, v in hard.items()}
    hard_mask = ML.hard_negative_mask(qids, tf.tile(clusters, [2]),
                                      tf.ones([2 * len(ids)], tf.bool), hard_t)
  aug = ML.augmented_loss(queries, queries, positives, qids, qids, not_self,
                          TAU, hard_t, hard_mask)
  nn = ML.neighbour_loss(queries, examples, qids, tf.constant(mined),
                         tf.constant(mined_ids), tf.constant(mined_ok),
                         queries, qids, not_self, TAU, hard_t, hard_mask)
  return aug, nn


class MinedLossesTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(0, 1, 2)
  def test_terms_match_the_numpy_reference(self, seed):
    case = _case(seed)
    aug, nn = _tf_terms(*case)
    want_aug, want_nn = _reference(*case)
    self.assertAllClose(aug, want_aug, rtol=1e-5)
    self.assertAllClose(nn, want_nn, rtol=1e-5)

  def test_without_hard_negatives_the_augmented_term_is_nt_xent(self):
    views, ids, *rest = _case(3)
    aug, _ = _tf_terms(views, ids, *rest, use_hard=False)
    self.assertAllClose(aug, L.nt_xent(views[0], views[1], ids, TAU),
                        rtol=1e-6)

  def test_hard_negatives_raise_the_augmented_loss(self):
    case = _case(4)
    with_hard, _ = _tf_terms(*case)
    without, _ = _tf_terms(*case, use_hard=False)
    self.assertGreater(with_hard, without)

  def test_no_query_is_its_own_or_its_neighbours_negative(self):
    views, ids, mined, mined_ids, mined_ok, clusters, hard = _case(5)
    _, examples, qids, _, not_self = ML.self_channel_layout(
        (tf.constant(views[0]), tf.constant(views[1])), tf.constant(ids))
    hard_t = {k: tf.constant(v) for k, v in hard.items()}
    hard_mask = ML.hard_negative_mask(qids, tf.tile(clusters, [2]),
                                      tf.ones([8], tf.bool), hard_t)
    mask = ML.neighbour_mask(examples, qids, tf.constant(mined_ids),
                             tf.constant(mined_ok), qids, not_self, hard_t,
                             hard_mask).numpy()
    key_ids = np.concatenate([mined_ids, np.tile(ids, 2), hard["ids"]])
    qids, examples = qids.numpy(), examples.numpy()
    for r in range(8):
      valid_ids = key_ids[mask[r]]
      self.assertNotIn(qids[r], valid_ids)
      self.assertNotIn(mined_ids[examples[r]], valid_ids)
    # Invalid mined positives are nobody's negative.
    self.assertFalse(mask[:, 2].any())

  def test_hard_negative_mask_rules(self):
    hard = {"ids": tf.constant([1, 2, 3, 4]),
            "clusters": tf.constant([0, 1, 1, 2]),
            "valid": tf.constant([True, True, False, True])}
    mask = ML.hard_negative_mask(tf.constant([2, 9]), tf.constant([0, 1]),
                                 tf.constant([True, True]), hard)
    # Query 0 (id 2, cluster 0): id 1 same cluster, id 2 itself, id 3
    # invalid -> only id 4. Query 1 (cluster 1): ids 1 and 4.
    self.assertAllEqual(mask, [[False, False, False, True],
                               [True, False, False, True]])
    mask = ML.hard_negative_mask(tf.constant([2, 9]), tf.constant([0, 1]),
                                 tf.constant([False, True]), hard)
    self.assertFalse(mask.numpy()[0].any())

  def test_no_valid_mined_positive_gives_zero(self):
    views, ids, mined, mined_ids, _, clusters, hard = _case(6)
    _, nn = _tf_terms(views, ids, mined, mined_ids,
                      np.zeros(4, bool), clusters, hard)
    self.assertEqual(float(nn), 0.0)

  def test_gradient_reaches_queries_not_mined_vectors(self):
    views, ids, mined, mined_ids, mined_ok, clusters, hard = _case(7)
    v0, v1 = tf.Variable(views[0]), tf.Variable(views[1])
    m = tf.Variable(mined)
    with tf.GradientTape() as tape:
      queries, examples, qids, _, not_self = ML.self_channel_layout(
          (v0, v1), tf.constant(ids))
      nn = ML.neighbour_loss(queries, examples, qids, tf.stop_gradient(m),
                             tf.constant(mined_ids), tf.constant(mined_ok),
                             queries, qids, not_self, TAU)
    g0, gm = tape.gradient(nn, [v0, m])
    self.assertGreater(float(tf.reduce_sum(tf.abs(g0))), 0.0)
    self.assertIsNone(gm)


if __name__ == "__main__":
  tf.test.main()
