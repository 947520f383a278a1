"""ComiRecDRTower: the shared tower contract plus dynamic-routing specifics."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers import ComiRecDRTower, build_towers, squash
import tower_test_lib as lib

K = 3
D_IN, D_OUT = 6, 5


def _softmax(x, axis):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _squash(s):
  n2 = (s ** 2).sum(-1, keepdims=True)
  return n2 / (1 + n2) * s / np.sqrt(n2 + 1e-9)


def reference_routing(history, mask, bilinear, iterations):
  """Plain numpy routing, one user at a time (ComiRec's algorithm)."""
  out = []
  for e, m in zip(history, mask):
    hat = np.stack([e[t] @ bilinear[t] for t in range(len(e))])  # (T, K*d)
    hat = hat.reshape(len(e), K, D_OUT).transpose(1, 0, 2)  # (K, T, d)
    b = np.zeros((K, len(e)))
    for _ in range(iterations):
      c = _softmax(b, axis=0) * m[None, :]
      v = _squash(np.einsum("kt,ktd->kd", c, hat))
      b = b + np.einsum("ktd,kd->kt", hat, v)
    out.append(v)
  return np.stack(out)


class ComiRecDRContractTest(lib.TowerContractTest):

  TOWER = "comirec_dr"
  TOWER_KWARGS = {"num_interests": K}


class ComiRecDRTowerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    tf.keras.utils.set_random_seed(0)
    self.fields = lib.data()[1].spec.user_fields

  def tower(self, **kwargs):
    kwargs.setdefault("dropout", 0.0)
    return ComiRecDRTower(self.fields, D_IN, D_OUT, num_interests=K,
                          **kwargs)

  def inputs(self, tower):
    feats = lib.user_batch()
    mask = tf.not_equal(feats[F.HISTORY], 0)
    history = tower.embed(feats)[F.HISTORY] * tf.cast(mask, tf.float32)[
        ..., None]
    return history, mask

  def test_squash(self):
    s = tf.constant([[3.0, 4.0], [0.0, 0.0], [0.1, 0.0]])
    v = squash(s).numpy()
    self.assertAllClose(np.linalg.norm(v, axis=-1),
                        [25 / 26, 0.0, 0.01 / 1.01], atol=1e-6)
    self.assertAllClose(v[0] / np.linalg.norm(v[0]), [0.6, 0.8])

  def test_matches_reference_routing(self):
    for iterations in (1, 3):
      tower = self.tower(routing_iterations=iterations)
      history, mask = self.inputs(tower)
      got = tower.extract_interests(history, mask)
      want = reference_routing(history.numpy(), mask.numpy(),
                               tower.bilinear.numpy(), iterations)
      self.assertAllClose(got, want, rtol=1e-4, atol=1e-5)
    self.assertEqual(tower.bilinear.shape, (lib.MAXLEN, D_IN, K * D_OUT))

  def test_routing_changes_the_capsules(self):
    one = self.tower(routing_iterations=1)
    three = ComiRecDRTower.from_config(
        {**one.get_config(), "routing_iterations": 3})
    history, mask = self.inputs(one)
    three(lib.user_batch())
    three.bilinear.assign(one.bilinear)
    self.assertNotAllClose(one.extract_interests(history, mask),
                           three.extract_interests(history, mask))

  def test_routing_logits_are_not_back_propagated(self):
    tower = self.tower()
    history, mask = self.inputs(tower)
    probe = tf.random.stateless_normal([8, K, D_OUT], [3, 4])

    with tf.GradientTape() as tape:
      tape.watch(history)
      got = tf.reduce_sum(tower.extract_interests(history, mask) * probe)
    grads = tape.gradient(got, [history, tower.bilinear])

    # Same forward pass, written with the coupling coefficients held fixed.
    hat = tower.predictions(history)
    coupling = tf.zeros_like(hat[..., 0])
    valid = tf.cast(mask, tf.float32)[:, None, :]
    for _ in range(tower.routing_iterations - 1):
      c = tf.nn.softmax(coupling, axis=1) * valid
      v = squash(tf.einsum("bkt,bktd->bkd", c, hat))
      coupling += tf.einsum("bktd,bkd->bkt", hat, v)
    fixed = tf.stop_gradient(tf.nn.softmax(coupling, axis=1) * valid)
    with tf.GradientTape() as tape:
      tape.watch(history)
      hat = tower.predictions(history)
      want = tf.reduce_sum(
          squash(tf.einsum("bkt,bktd->bkd", fixed, hat)) * probe)
    expected = tape.gradient(want, [history, tower.bilinear])
    self.assertAllClose(got, want, rtol=1e-5)
    for g, e in zip(grads, expected):
      self.assertGreater(float(tf.reduce_max(tf.abs(g))), 0.0)
      self.assertAllClose(g, e, rtol=1e-4, atol=1e-6)

  def test_history_only_capsules_are_squashed(self):
    tower = self.tower(use_attributes=False)
    out = tower(lib.user_batch()).numpy()
    self.assertEqual(out.shape, (8, K, D_OUT))
    self.assertTrue(np.all(np.linalg.norm(out, axis=-1) < 1.0))
    self.assertEqual([f.name for f in tower.fields], [F.HISTORY])

  def test_builder_and_errors(self):
    spec = lib.data()[1].spec
    user, item = build_towers("comirec_dr", spec, 8, 4, 0.1,
                              hidden_units=(64,), num_interests=2,
                              routing_iterations=2)
    self.assertTrue(user.multi_interest)
    self.assertEqual((user.num_interests, user.routing_iterations), (2, 2))
    self.assertEqual(type(item).__name__, "DSSMTower")
    self.assertEqual(user(lib.user_batch()).shape, (8, 2, 4))
    with self.assertRaisesRegex(ValueError, "routing_iterations"):
      self.tower(routing_iterations=0)
    with self.assertRaisesRegex(ValueError, "dropout"):
      self.tower(dropout=1.0)


if __name__ == "__main__":
  tf.test.main()
