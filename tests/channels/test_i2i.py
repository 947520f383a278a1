"""Tests for the I2I channel against hand-made answers and a numpy reference."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

import channel_test_lib as lib

from mic_tf.channels.i2i import I2IChannel
from mic_tf.channels.i2i import I2IConfig


def _unit(x):
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _reference(history, shared, item_space, item_shared, exclude, config, k):
  """The module docstring's formula, one user at a time, in float64."""
  out = []
  for u, row in enumerate(history):
    sources = []
    for item in row[::-1]:
      if item > 0 and item not in sources:
        sources.append(int(item))
    if not sources:  # popular fallback: the lowest allowed ids
      allowed = [j for j in range(1, len(item_space))
                 if j not in set(int(e) for e in exclude[u])][:k]
      out.append([(-1.0 - j / len(item_space), j) for j in allowed])
      continue
    total = {}
    for p, h in enumerate(sources[:config.num_history_items]):
      sims = item_space @ item_space[h]
      sims[0] = -np.inf  # padding is not in the index
      order = [j for j in np.argsort(-sims, kind="stable") if j not in (0, h)]
      for j in order[:config.num_similar_items]:
        w = sims[j] ** config.gamma if sims[j] > 0 else 0.0
        total[j] = total.get(j, 0.0) + config.recency_decay ** p * w
    out.append(lib.blend_reference(total, exclude[u], shared[u],
                                   item_shared, config.alpha, k))
  return out


def _channel(item_space, item_shared, config):
  return lib.ChannelFactory(I2IChannel, item_space, item_shared, config)


def _queries(history, shared, exclude):
  return lib.ChannelQueries(shared, np.zeros((len(history), 2), np.float32),
                            np.asarray(history), exclude)


class I2IChannelTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # Item space: 1 (1, 0) ~ 2 (.96, .28); 3 (0, 1) ~ 4 (.28, .96);
    # 5 (-1, 0) is far from everything.
    self.item_space = np.array([[0, 0], [1, 0], [0.96, 0.28], [0, 1],
                                [0.28, 0.96], [-1, 0]], np.float32)
    self.item_shared = np.array([[0, 0], [1, 0], [0, 1], [1, 0], [0.6, 0.8],
                                 [0, 1]], np.float32)
    self.history = np.array([[0, 0, 1, 3]])  # 3 is the latest item
    self.shared = np.array([[[0.0, 1.0]]], np.float32)

  def test_recency_weighted_neighbours(self):
    config = I2IConfig(num_history_items=2, num_similar_items=1, alpha=1.0,
                       recency_decay=0.5)
    ids, scores = _channel(self.item_space, self.item_shared, config
                           ).retrieve(_queries(self.history, self.shared,
                                               [[1, 3]]), 3)
    # 3 -> 4 (sim .96, weight 1), 1 -> 2 (sim .96, weight .5).
    self.assertAllEqual(ids, [[4, 2, -1]])
    self.assertAllClose(scores[0, :2], [1.0, 0.5])

  def test_equal_weights_tie_on_item_id(self):
    config = I2IConfig(num_history_items=2, num_similar_items=1, alpha=1.0)
    ids, _ = _channel(self.item_space, self.item_shared, config).retrieve(
        _queries(self.history, self.shared, [[1, 3]]), 2)
    self.assertAllEqual(ids, [[2, 4]])

  def test_cosine_part_and_no_exclusion(self):
    config = I2IConfig(num_history_items=1, num_similar_items=2, alpha=0.0)
    ids, scores = _channel(self.item_space, self.item_shared, config
                           ).retrieve(_queries(self.history, self.shared,
                                               [[]]), 3)
    # Source 3 retrieves 4 (.96) and 2 (.28), never itself; ranked by the
    # shared-space cosine with (0, 1): item 2 -> 1, item 4 -> .8.
    self.assertAllEqual(ids, [[2, 4, -1]])
    self.assertAllClose(scores[0, :2], [1.0, 0.8])

  def test_no_known_history_item_gives_popular_items(self):
    ids, scores = _channel(self.item_space, self.item_shared, I2IConfig()
                           ).retrieve(_queries([[0, 0, 0, 0], [0, 0, 0, 0]],
                                               [[[0.0, 1.0]]] * 2,
                                               [[], [1, 3]]), 3)
    # Lowest ids first (the most popular), excluded ones skipped.
    self.assertAllEqual(ids, [[1, 2, 3], [2, 4, 5]])
    self.assertTrue(np.all(scores < -1) and np.all(scores > -2))

  @parameterized.parameters(
      (I2IConfig(num_history_items=3, num_similar_items=4), 1),
      (I2IConfig(num_history_items=5, num_similar_items=2, alpha=0.2,
                 gamma=2.0, recency_decay=0.7), 2),
      (I2IConfig(num_history_items=8, num_similar_items=10, alpha=0.9), 1))
  def test_matches_reference(self, config, interests):
    rng = np.random.default_rng(config.num_similar_items)
    num_items, d = 30, 4
    item_space = _unit(rng.normal(size=(num_items, d)))
    item_space[0] = 0.0
    item_shared = _unit(rng.normal(size=(num_items, d)))
    item_shared[0] = 0.0
    history = rng.integers(0, num_items, (8, 6))
    history[0] = 0
    shared = _unit(rng.normal(size=(8, interests, d)))
    exclude = [row[row > 0] for row in history]
    exclude[1] = np.array([], np.int64)
    channel = _channel(item_space, item_shared.astype(np.float32), config)
    ids, scores = channel.retrieve(_queries(history, shared, exclude), 7)
    want = _reference(history, shared, item_space, item_shared, exclude,
                      config, 7)
    for u, expected in enumerate(want):
      n = len(expected)
      self.assertAllEqual(ids[u, :n], [j for _, j in expected])
      self.assertAllClose(scores[u, :n], [s for s, _ in expected], atol=1e-5)
      self.assertAllEqual(ids[u, n:], -np.ones(7 - n))

  def test_search_then_rank_with_smaller_settings(self):
    queries = _queries(self.history, self.shared, [[1, 3]])
    channel = _channel(self.item_space, self.item_shared,
                       I2IConfig(num_history_items=2, num_similar_items=3,
                                 alpha=1.0)).build(queries, 3)
    users = channel.encoder(
        {k: tf.constant(v) for k, v in channel.encoder.features().items()})
    exclude = channel.exclusions(users.history, tf.constant([[1, 3]]))
    sources, ids, sims = channel.search(users, exclude)
    self.assertAllEqual(sources, [[3, 1]])
    smaller = I2IConfig(num_history_items=1, num_similar_items=1, alpha=1.0)
    got, _ = channel.rank(users, (sources[:, :1], ids[:, :1, :2],
                                  sims[:, :1, :2]), exclude,
                          channel.settings(smaller))
    self.assertAllEqual(got, [[4, -1, -1]])
    direct = _channel(self.item_space, self.item_shared, smaller)
    self.assertAllEqual(direct.retrieve(queries, 3)[0], got)

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, "recency_decay"):
      I2IConfig(recency_decay=0.0)
    with self.assertRaisesRegex(ValueError, "num_similar_items"):
      I2IConfig(num_similar_items=0)


if __name__ == "__main__":
  tf.test.main()
