"""Tests for the U2I channel against hand-made answers and a numpy reference."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf.channels.u2i import U2IChannel
import channel_test_lib as lib


def _unit(x):
  x = np.asarray(x, np.float32)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _channel(items, shared, k, index="exact", config=None):
  return U2IChannel(lib.encoder(shared, len(items)), items, k, index,
                    scann_config=config, exclude_history=False)


def _reference(queries, items, k, exclude=None):
  """Top k of each item's best interest score, in numpy (ties: lower id)."""
  queries = queries if queries.ndim == 3 else queries[:, None]
  scores = np.einsum("ukd,nd->ukn", queries, items).max(axis=1)
  scores[:, 0] = -np.inf
  for u, e in enumerate(exclude or []):
    scores[u, np.asarray(e, np.int64)] = -np.inf
  ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return ids, np.take_along_axis(scores, ids, axis=1)


class U2IChannelTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # Items at angles 0, 30, 60, 90, 180 degrees; row 0 is padding.
    angles = np.deg2rad([0, 0, 30, 60, 90, 180])
    self.items = np.stack([np.cos(angles), np.sin(angles)], 1).astype(
        np.float32)
    self.items[0] = 0.0

  def test_hand_made_order_and_exclusion(self):
    channel = _channel(self.items, _unit([[1.0, 0.0], [0.0, 1.0]]), 3)
    ids, scores = lib.retrieve(channel, [[2], []])
    # User 0 looks at 0 degrees: items 1 (0), 2 (30, excluded), 3 (60), 4.
    self.assertAllEqual(ids, [[1, 3, 4], [4, 3, 2]])
    self.assertAllClose(scores[0], [1.0, 0.5, 0.0], atol=1e-6)

  def test_history_and_exclude_list_are_both_excluded(self):
    encoder = lib.encoder(_unit([[1.0, 0.0], [1.0, 0.0]]), len(self.items),
                          history=np.array([[0, 0, 1], [0, 0, 0]]))
    channel = U2IChannel(encoder, self.items, 2, exclude_history=True)
    ids, _ = lib.retrieve(channel, [[], [2]], batch_size=1)
    self.assertAllEqual(ids, [[2, 3], [1, 3]])
    # recommend takes the exclusion list as a ragged tensor too.
    ragged = tf.ragged.constant([[], [2]], dtype=tf.int64)
    got, _ = channel.recommend(
        {k: tf.constant(v) for k, v in encoder.features().items()}, ragged)
    self.assertAllEqual(got, ids)

  def test_multi_interest_merges_by_best_score(self):
    shared = np.stack([_unit([[1.0, 0.0], [-1.0, 0.0]])])  # (1, 2, 2)
    ids, scores = lib.retrieve(_channel(self.items, shared, 3))
    # Item 1 (score 1 from interest 0) and item 5 (1 from interest 1) tie;
    # the smaller id comes first; item 2 (cos 30 = .866) follows.
    self.assertAllEqual(ids, [[1, 5, 2]])
    self.assertAllClose(scores, [[1.0, 1.0, np.cos(np.pi / 6)]], atol=1e-6)

  def test_short_pool_pads(self):
    channel = _channel(self.items, _unit([[1.0, 0.0]]), 4)
    ids, scores = lib.retrieve(channel, [[1, 2, 3]])
    self.assertAllEqual(ids, [[4, 5, -1, -1]])
    self.assertTrue(np.all(np.isneginf(scores[0, 2:])))

  @parameterized.parameters((1, False), (1, True), (3, True))
  def test_matches_reference(self, interests, exclude):
    rng = np.random.default_rng(interests)
    items = _unit(rng.normal(size=(40, 6)))
    items[0] = 0.0
    queries = _unit(rng.normal(size=(9, interests, 6)))
    history = [rng.choice(np.arange(1, 40), rng.integers(0, 12),
                          replace=False) for _ in range(9)]
    channel = _channel(items, queries, 10)
    ids, scores = lib.retrieve(channel, history if exclude else None,
                               batch_size=4)
    want_ids, want_scores = _reference(queries, items, 10,
                                       history if exclude else None)
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, atol=1e-6)
    self.assertFalse(np.any(ids == 0))

  def test_scann_brute_force_index_gives_the_exact_answer(self):
    rng = np.random.default_rng(0)
    items = _unit(rng.normal(size=(30, 4)))
    items[0] = 0.0
    queries = _unit(rng.normal(size=(5, 4)))
    exact = lib.retrieve(_channel(items, queries, 8))
    scann = lib.retrieve(_channel(items, queries, 8, "scann",
                                  indexes.ScannConfig(num_neighbours=8)))
    self.assertAllEqual(exact[0], scann[0])
    self.assertAllClose(exact[1], scann[1], atol=1e-5)

  def test_no_users(self):
    channel = _channel(self.items, _unit([[1.0, 0.0]]), 3)
    ids, scores = channel.retrieve(
        {k: v[:0] for k, v in channel.encoder.features().items()})
    self.assertEqual(ids.shape, (0, 3))
    self.assertEqual(scores.shape, (0, 3))


if __name__ == "__main__":
  tf.test.main()
