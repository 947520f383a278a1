"""Tests for the U2U channel against hand-made answers and a numpy reference."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import channel_test_lib as lib

from mic_tf.channels.u2u import neighbour_histories
from mic_tf.channels.u2u import U2UChannel
from mic_tf.channels.u2u import U2UConfig


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference(user_space, shared, train_space, sequences, item_shared,
               exclude, config, k):
  """The module docstring's formula, one user at a time, in float64."""
  out = []
  for u in range(len(user_space)):
    sims = train_space @ user_space[u]
    neighbours = np.argsort(-sims, kind="stable")[:config.num_neighbours]
    total = {}
    for v in neighbours:
      w = sims[v] ** config.gamma if sims[v] > 0 else 0.0
      seq = sequences[v]
      if config.history_len:
        seq = seq[-config.history_len:]
      for item in set(int(i) for i in seq if i > 0):
        total[item] = total.get(item, 0.0) + w
    out.append(lib.blend_reference(total, exclude[u], shared[u],
                                   item_shared, config.alpha, k))
  return out


def _channel(train_space, sequences, item_shared, config):
  return lib.ChannelFactory(U2UChannel, train_space, sequences, item_shared,
                            config)


class U2UChannelTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # Training users A (1, 0), B (.8, .6), C (-1, 0) with items {1, 2},
    # {2, 3} and {4}; the query user sits at (1, 0).
    self.train_space = np.array([[1.0, 0.0], [0.8, 0.6], [-1.0, 0.0]],
                                np.float32)
    self.sequences = [np.array([1, 2, 1]), np.array([2, 3]), np.array([4])]
    # Shared space: the query is (0, 1); its cosine with items 1..4 is
    # .995, 1, .436 and 0.
    self.item_shared = _unit([[1, 0], [0.1, 0.995], [0.0, 1.0], [0.9, 0.436],
                              [1.0, 0.0]]).astype(np.float32)
    self.item_shared[0] = 0.0
    self.query = lambda exclude: lib.ChannelQueries(
        np.array([[[0.0, 1.0]]], np.float32),
        np.array([[1.0, 0.0]], np.float32), np.zeros((1, 4), np.int64),
        ([exclude]))

  def test_neighbour_weights_only(self):
    channel = _channel(self.train_space, self.sequences, self.item_shared,
                       U2UConfig(num_neighbours=2, alpha=1.0))
    ids, scores = channel.retrieve(self.query([]), 4)
    # S = {1: 1, 2: 1.8, 3: .8}; item 4 belongs to the third-closest user.
    self.assertAllEqual(ids, [[2, 1, 3, -1]])
    self.assertAllClose(scores[0, :3], [1.0, 1 / 1.8, 0.8 / 1.8])

  def test_exclusion(self):
    channel = _channel(self.train_space, self.sequences, self.item_shared,
                       U2UConfig(num_neighbours=2, alpha=1.0))
    ids, _ = channel.retrieve(self.query([2]), 4)
    self.assertAllEqual(ids, [[1, 3, -1, -1]])

  def test_cosine_only_reranks_the_candidates(self):
    channel = _channel(self.train_space, self.sequences, self.item_shared,
                       U2UConfig(num_neighbours=2, alpha=0.0))
    ids, scores = channel.retrieve(self.query([]), 3)
    self.assertAllEqual(ids, [[2, 1, 3]])
    self.assertAllClose(scores[0], [1.0, 0.995, 0.436], atol=2e-3)

  def test_gamma_sharpens_similarities(self):
    channel = _channel(self.train_space, self.sequences, self.item_shared,
                       U2UConfig(num_neighbours=2, alpha=1.0, gamma=2.0))
    _, scores = channel.retrieve(self.query([]), 3)
    # S = {2: 1 + .64, 1: 1, 3: .64}.
    self.assertAllClose(scores[0], [1.0, 1 / 1.64, 0.64 / 1.64])

  def test_neighbour_histories(self):
    values, splits = neighbour_histories(
        [np.array([3, 1, 3]), np.array([], np.int64), np.array([5, 0, 2])],
        history_len=2)
    self.assertAllEqual(values, [1, 3, 2])
    self.assertAllEqual(splits, [0, 2, 2, 3])

  @parameterized.parameters(
      (U2UConfig(num_neighbours=4, alpha=0.5), 1),
      (U2UConfig(num_neighbours=7, alpha=0.3, gamma=2.0), 3),
      (U2UConfig(num_neighbours=30, alpha=0.8, history_len=3), 2))
  def test_matches_reference(self, config, interests):
    rng = np.random.default_rng(config.num_neighbours)
    num_items, d = 25, 5
    train_space = _unit(rng.normal(size=(30, d)))
    sequences = [rng.integers(1, num_items, rng.integers(1, 9))
                 for _ in range(30)]
    item_shared = _unit(rng.normal(size=(num_items, d)))
    item_shared[0] = 0.0
    user_space = _unit(rng.normal(size=(7, d)))
    shared = _unit(rng.normal(size=(7, interests, d)))
    exclude = [rng.integers(1, num_items, rng.integers(0, 4))
               for _ in range(7)]
    channel = _channel(train_space, sequences, item_shared.astype(np.float32),
                       config)
    queries = lib.ChannelQueries(shared, user_space, np.zeros((7, 3), np.int64),
                             (exclude))
    ids, scores = channel.retrieve(queries, 6)
    want = _reference(user_space, shared, train_space, sequences,
                      item_shared, exclude, config, 6)
    for u, expected in enumerate(want):
      n = len(expected)
      self.assertAllEqual(ids[u, :n], [item for _, item in expected])
      self.assertAllClose(scores[u, :n], [s for s, _ in expected], atol=1e-5)
      self.assertAllEqual(ids[u, n:], -np.ones(6 - n))
      self.assertFalse(np.isin(ids[u], exclude[u]).any())

  def test_search_then_rank_with_fewer_neighbours(self):
    # What the tuning does: search once with a large N, rank the first N.
    channel = _channel(self.train_space, self.sequences, self.item_shared,
                       U2UConfig(num_neighbours=2, alpha=1.0)
                       ).build(self.query([]), 4)
    users = channel.encoder(
        {k: tf.constant(v) for k, v in channel.encoder.features().items()})
    exclude = channel.exclusions(users.history)
    rows, sims = channel.search(users, exclude, num_neighbours=3)
    self.assertAllEqual(rows, [[0, 1, 2]])
    smaller = U2UConfig(num_neighbours=1, alpha=1.0)
    ids, _ = channel.rank(users, (rows[:, :1], sims[:, :1]), exclude,
                          channel.settings(smaller))
    self.assertAllEqual(ids, [[1, 2, -1, -1]])
    direct = _channel(self.train_space, self.sequences, self.item_shared,
                      smaller).retrieve(self.query([]), 4)[0]
    self.assertAllEqual(direct, ids)

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, "alpha"):
      U2UConfig(alpha=1.5)
    with self.assertRaisesRegex(ValueError, "num_neighbours"):
      U2UConfig(num_neighbours=0)


if __name__ == "__main__":
  tf.test.main()
