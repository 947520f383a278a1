"""Known-positive masking: the mask itself and its effect on each loss."""

import numpy as np
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import losses as L


def _np_known(users, items, hist):
  b = len(items)
  out = np.zeros((b, b), bool)
  for i in range(b):
    for j in range(b):
      out[i, j] = (users[i] == users[j] or items[i] == items[j] or
                   (items[j] in set(hist[i]) - {0}))
  return out


def _np_softmax(u, v, tau, valid):
  u = u / np.linalg.norm(u, axis=1, keepdims=True)
  v = v / np.linalg.norm(v, axis=1, keepdims=True)
  logits = u @ v.T / tau
  out = []
  for i in range(len(u)):
    keep = valid[i].copy()
    keep[i] = True
    row = logits[i][keep]
    out.append(np.log(np.exp(row).sum()) - logits[i, i])
  return np.mean(out)


def test_known_positives_matches_numpy():
  rng = np.random.default_rng(0)
  users = rng.integers(1, 5, size=12)
  items = rng.integers(1, 9, size=12)
  hist = rng.integers(0, 9, size=(12, 4))
  got = L.known_positives(users, items, hist).numpy()
  np.testing.assert_array_equal(got, _np_known(users, items, hist))
  assert got.sum() > 12  # the draw has off-diagonal known positives


def test_known_positives_matches_numpy_on_many_draws_in_a_graph():
  # The in-history rule is a lookup among the distinct targets; check it on
  # draws with repeated targets, repeated history entries, all-padding rows
  # and history items that are no row's target, traced with unknown shapes.
  fn = tf.function(L.known_positives, input_signature=[
      tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int32),
      tf.TensorSpec([None, None], tf.int32)])
  for seed in range(6):
    rng = np.random.default_rng(seed)
    b, length, vocab = rng.integers(1, 40), rng.integers(1, 9), 30
    users = rng.integers(1, 10, size=b).astype(np.int32)
    items = rng.integers(1, vocab, size=b).astype(np.int32)
    hist = rng.integers(0, vocab + 5, size=(b, length)).astype(np.int32)
    hist[rng.random(b) < 0.2] = 0
    np.testing.assert_array_equal(fn(users, items, hist).numpy(),
                                  _np_known(users, items, hist))


def test_padding_never_matches():
  got = L.known_positives(None, [1, 2], [[0, 0], [0, 0]]).numpy()
  np.testing.assert_array_equal(got, np.eye(2, dtype=bool))


def test_softmax_drops_known_positive_columns():
  rng = np.random.default_rng(1)
  u, v = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
  ids = np.arange(1, 7)
  known = np.zeros((6, 6), bool)
  known[0, 3] = known[2, 5] = True
  got = L.softmax_loss(tf.constant(u, tf.float32), tf.constant(v, tf.float32),
                       ids, temperature=0.5, known_positives=known)
  valid = ~known & ~np.eye(6, dtype=bool)
  np.testing.assert_allclose(got, _np_softmax(u, v, 0.5, valid), rtol=1e-5)


def test_user_item_masks_both_directions_symmetrically():
  rng = np.random.default_rng(2)
  u = tf.constant(rng.normal(size=(5, 4)), tf.float32)
  v = tf.constant(rng.normal(size=(5, 4)), tf.float32)
  ids = np.arange(1, 6)
  known = np.zeros((5, 5), bool)
  known[1, 4] = True
  got = L.user_item_loss([u], [v], ids, temperature=0.2,
                         known_positives=known)
  # One view: u->i drops item 4 for user 1; i->u drops user 1 for item 4.
  valid = ~np.eye(5, dtype=bool)
  u2i = _np_softmax(u.numpy(), v.numpy(), 0.2, valid & ~known)
  i2u = _np_softmax(v.numpy(), u.numpy(), 0.2, valid & ~known.T)
  np.testing.assert_allclose(got, 0.5 * (u2i + i2u), rtol=1e-5)
  plain = L.user_item_loss([u], [v], ids, temperature=0.2)
  assert abs(float(plain) - float(got)) > 1e-4
