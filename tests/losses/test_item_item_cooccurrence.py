"""The II term with co-occurrence positives (``positive_ids``)."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import pytest
import tensorflow as tf

from mic_tf import losses


def _reference(a, b, ids, pos, tau, known=None):
  """Per-anchor InfoNCE written out: anchor r of row i = r % n."""
  n = len(ids)
  v = np.concatenate([a, b]).astype(np.float64)
  v /= np.linalg.norm(v, axis=1, keepdims=True)
  key_ids = np.concatenate([ids, pos])
  total = 0.0
  for r in range(2 * n):
    i = r % n
    positive = r + n if r < n else r - n
    logits = []
    for c in range(2 * n):
      j = c % n
      keep = c != r and key_ids[c] not in (ids[i], pos[i])
      if known is not None and known[i, j]:
        # Column j's item view, or its positive view of the same item.
        keep = keep and not (c < n or pos[j] == ids[j])
      if keep or c == positive:
        logits.append(v[r] @ v[c] / tau)
    total += np.log(np.sum(np.exp(logits))) - v[r] @ v[positive] / tau
  return total / (2 * n)


@pytest.mark.parametrize("with_known", [False, True])
def test_matches_the_numpy_reference(with_known):
  rng = np.random.default_rng(1)
  n = 7
  a = rng.normal(size=(n, 5)).astype(np.float32)
  b = rng.normal(size=(n, 5)).astype(np.float32)
  ids = np.array([1, 2, 3, 2, 5, 6, 7])
  # Row 0's positive is row 2's item, row 4's is itself, 6 recurs.
  pos = np.array([3, 9, 6, 8, 5, 6, 2])
  known = rng.random((n, n)) < 0.3 if with_known else None
  got = losses.item_item_loss(a, b, ids, temperature=0.2,
                              known_positives=known, positive_ids=pos)
  np.testing.assert_allclose(float(got), _reference(a, b, ids, pos, 0.2,
                                                    known), rtol=1e-5)


@pytest.mark.parametrize("with_known", [False, True])
def test_own_ids_as_positives_give_eq6(with_known):
  rng = np.random.default_rng(2)
  a = rng.normal(size=(6, 4)).astype(np.float32)
  b = rng.normal(size=(6, 4)).astype(np.float32)
  ids = np.array([4, 1, 4, 2, 3, 1])
  known = rng.random((6, 6)) < 0.4 if with_known else None
  want = losses.item_item_loss(a, b, ids, 0.1, known)
  got = losses.item_item_loss(a, b, ids, 0.1, known, positive_ids=ids)
  np.testing.assert_allclose(float(got), float(want), rtol=1e-6)


def test_the_positive_pairs_are_the_neighbour_rows():
  # view_b[i] equals view_a[i]: the loss is small only when each row's
  # positive is its own row of view_b, not a shuffled one.
  rng = np.random.default_rng(3)
  a = np.linalg.qr(rng.normal(size=(8, 8)))[0].astype(np.float32)
  ids, pos = np.arange(1, 9), np.arange(11, 19)
  aligned = losses.item_item_loss(a, a, ids, 0.1, positive_ids=pos)
  shuffled = losses.item_item_loss(a, np.roll(a, 1, axis=0), ids, 0.1,
                                   positive_ids=pos)
  assert float(aligned) < 1e-3 < float(shuffled)


def test_graph_mode_and_gradients():
  a = tf.Variable(np.random.default_rng(4).normal(size=(5, 3)), dtype=tf.float32)
  b = tf.Variable(np.random.default_rng(5).normal(size=(5, 3)), dtype=tf.float32)

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = losses.item_item_loss(a, b, tf.constant([1, 2, 3, 4, 5]), 0.1,
                                   positive_ids=tf.constant([2, 1, 6, 6, 5]))
    return loss, tape.gradient(loss, [a, b])

  loss, grads = step()
  assert np.isfinite(float(loss))
  assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_positive_ids_need_item_ids():
  x = np.ones((2, 3), np.float32)
  with pytest.raises(ValueError, match="needs item_ids"):
    losses.item_item_loss(x, x, positive_ids=np.array([1, 2]))
