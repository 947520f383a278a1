"""Tests for the U2I channel against hand-made answers and a numpy reference."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import indexes
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.u2i import U2IChannel
from mic_tf.channels.u2i import U2IConfig
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


class HistoryQueryTest(tf.test.TestCase, parameterized.TestCase):
  """U2IConfig.history_weight: one search of [e ; v] with [q ; w h]."""

  def _data(self, interests, seed=0):
    rng = np.random.default_rng(seed)
    shared = _unit(rng.normal(size=(30, 5)))
    space = _unit(rng.normal(size=(30, 3)))
    shared[0] = space[0] = 0.0
    queries = _unit(rng.normal(size=(7, interests, 5)))
    history = rng.integers(0, 30, size=(7, 4))  # 0 = padding
    history[0] = 0  # a user without history: the plain query
    history[1, :2] = 31  # unknown ids count as padding
    return shared, space, queries, history

  def _reference(self, shared, space, queries, history, w, k):
    known = np.where(history < len(shared), history, 0)
    summed = space[known].sum(axis=1)
    norm = np.linalg.norm(summed, axis=-1, keepdims=True)
    h = np.divide(summed, norm, out=np.zeros_like(summed), where=norm > 0)
    scores = (np.einsum("ukd,nd->ukn", queries, shared).max(axis=1)
              + w * h @ space.T)
    scores[:, 0] = -np.inf
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, axis=1)

  @parameterized.parameters((1, 0.5), (1, 2.0), (3, 1.0))
  def test_matches_reference(self, interests, w):
    shared, space, queries, history = self._data(interests)
    encoder = lib.encoder(queries, len(shared), history=history)
    channel = U2IChannel(encoder, shared, 8, exclude_history=False,
                         config=U2IConfig(history_weight=w),
                         item_space=space)
    ids, scores = lib.retrieve(channel, batch_size=3)
    want_ids, want_scores = self._reference(shared, space, queries,
                                            history, w, 8)
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, atol=1e-5)

  def test_weight_zero_is_the_plain_channel(self):
    shared, space, queries, history = self._data(1, seed=3)
    encoder = lib.encoder(queries, len(shared), history=history)
    plain = lib.retrieve(U2IChannel(encoder, shared, 6,
                                    exclude_history=False))
    zero = lib.retrieve(U2IChannel(encoder, shared, 6, exclude_history=False,
                                   config=U2IConfig(0.0), item_space=space))
    self.assertAllEqual(plain[0], zero[0])
    # A user without a known history item gets the plain query.
    weighted = lib.retrieve(U2IChannel(
        encoder, shared, 6, exclude_history=False,
        config=U2IConfig(history_weight=1.0), item_space=space))
    self.assertAllEqual(weighted[0][0], plain[0][0])
    self.assertNotAllEqual(weighted[0], plain[0])

  def test_scann_brute_force_index_gives_the_exact_answer(self):
    shared, space, queries, history = self._data(1, seed=5)
    encoder = lib.encoder(queries, len(shared), history=history)
    config = U2IConfig(history_weight=0.5)
    exact = lib.retrieve(U2IChannel(encoder, shared, 8, config=config,
                                    item_space=space, exclude_history=False))
    scann = lib.retrieve(U2IChannel(
        encoder, shared, 8, "scann", indexes.ScannConfig(num_neighbours=8),
        exclude_history=False, config=config, item_space=space))
    self.assertAllEqual(exact[0], scann[0])
    self.assertAllClose(exact[1], scann[1], atol=1e-5)

  def test_bad_settings(self):
    for bad in (-0.1, float("nan"), float("inf"), True, "1"):
      with self.assertRaisesRegex(ValueError, "history_weight"):
        U2IConfig(history_weight=bad)
    shared, space, queries, history = self._data(1)
    encoder = lib.encoder(queries, len(shared), history=history)
    with self.assertRaisesRegex(ValueError, "item_space="):
      U2IChannel(encoder, shared, 4, config=U2IConfig(1.0))
    with self.assertRaisesRegex(ValueError, "rows like item_shared"):
      U2IChannel(encoder, shared, 4, config=U2IConfig(1.0),
                 item_space=space[:-1])

  def test_channel_config_round_trip(self):
    config = ChannelConfig(u2i=U2IConfig(history_weight=0.25))
    again = ChannelConfig.from_dict(config.to_dict())
    self.assertEqual(again, config)
    # Reports written before U2I had settings read as the plain query.
    old = config.to_dict()
    del old["u2i"]
    self.assertEqual(ChannelConfig.from_dict(old).u2i, U2IConfig())


if __name__ == "__main__":
  tf.test.main()
