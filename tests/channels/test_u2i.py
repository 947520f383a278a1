"""Tests for the U2I channel against hand-made answers and exact_top_k."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import evaluation
from mic_tf import indexes
from mic_tf.channels import ranking
from mic_tf.channels.queries import ChannelQueries
from mic_tf.channels.u2i import U2IChannel


def _unit(x):
  x = np.asarray(x, np.float32)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _queries(shared, exclude=None):
  n = len(shared)
  exclude = ranking.pad_lists(exclude if exclude is not None else [[]] * n)
  return ChannelQueries(shared, np.zeros((n, 2), np.float32),
                        np.zeros((n, 3), np.int64), exclude)


def _item_index(vectors, kind="exact", config=None):
  ids = np.arange(1, len(vectors), dtype=np.int64)
  return indexes.make_index(kind, vectors[1:], ids, scann_config=config)


class U2IChannelTest(tf.test.TestCase, parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # Items at angles 0, 30, 60, 90, 180 degrees; row 0 is padding.
    angles = np.deg2rad([0, 0, 30, 60, 90, 180])
    self.items = np.stack([np.cos(angles), np.sin(angles)], 1).astype(
        np.float32)
    self.items[0] = 0.0

  def test_hand_made_order_and_exclusion(self):
    channel = U2IChannel(_item_index(self.items))
    queries = _queries(_unit([[1.0, 0.0], [0.0, 1.0]]), [[2], []])
    ids, scores = channel.retrieve(queries, 3)
    # User 0 looks at 0 degrees: items 1 (0), 2 (30, excluded), 3 (60), 4.
    self.assertAllEqual(ids, [[1, 3, 4], [4, 3, 2]])
    self.assertAllClose(scores[0], [1.0, 0.5, 0.0], atol=1e-6)

  def test_left_padded_exclusion_matrix(self):
    channel = U2IChannel(_item_index(self.items), batch_size=1)
    queries = ChannelQueries(_unit([[1.0, 0.0], [1.0, 0.0]]),
                             np.zeros((2, 2)), np.zeros((2, 3), np.int64),
                             np.array([[0, 0, 1], [0, 0, 0]]))
    ids, _ = channel.retrieve(queries, 2)
    self.assertAllEqual(ids, [[2, 3], [1, 2]])

  def test_queries_need_one_row_per_user(self):
    with self.assertRaisesRegex(ValueError, "one row per user"):
      ChannelQueries(np.zeros((2, 3)), np.zeros((1, 3)),
                     np.zeros((2, 4), np.int64), np.zeros((2, 1), np.int64))

  def test_multi_interest_merges_by_best_score(self):
    channel = U2IChannel(_item_index(self.items))
    shared = np.stack([_unit([[1.0, 0.0], [-1.0, 0.0]])])  # (1, 2, 2)
    ids, scores = channel.retrieve(_queries(shared), 3)
    # Item 1 (score 1 from interest 0) and item 5 (1 from interest 1) tie;
    # the smaller id comes first; item 2 (cos 30 = .866) follows.
    self.assertAllEqual(ids, [[1, 5, 2]])
    self.assertAllClose(scores, [[1.0, 1.0, np.cos(np.pi / 6)]], atol=1e-6)

  def test_short_pool_pads(self):
    channel = U2IChannel(_item_index(self.items))
    ids, scores = channel.retrieve(_queries(_unit([[1.0, 0.0]]),
                                            [[1, 2, 3]]), 4)
    self.assertAllEqual(ids, [[4, 5, -1, -1]])
    self.assertTrue(np.all(np.isneginf(scores[0, 2:])))

  @parameterized.parameters((1, False), (1, True), (3, True))
  def test_matches_exact_top_k(self, interests, exclude):
    rng = np.random.default_rng(interests)
    items = _unit(rng.normal(size=(40, 6)))
    items[0] = 0.0
    queries = _unit(rng.normal(size=(9, interests, 6)))
    history = [rng.choice(np.arange(1, 40), rng.integers(0, 12),
                          replace=False) for _ in range(9)]
    channel = U2IChannel(_item_index(items), batch_size=4)
    ids, scores = channel.retrieve(
        _queries(queries, history if exclude else None), 10)
    want_ids, want_scores = evaluation.exact_top_k(
        queries, items, 10, exclude=history if exclude else None)
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, atol=1e-6)
    self.assertFalse(np.any(ids == 0))

  def test_scann_brute_force_index_gives_the_exact_answer(self):
    rng = np.random.default_rng(0)
    items = _unit(rng.normal(size=(30, 4)))
    items[0] = 0.0
    queries = _queries(_unit(rng.normal(size=(5, 4))))
    exact = U2IChannel(_item_index(items)).retrieve(queries, 8)
    scann = U2IChannel(_item_index(items, "scann",
                                   indexes.ScannConfig(num_neighbours=8))
                       ).retrieve(queries, 8)
    self.assertAllEqual(exact[0], scann[0])
    self.assertAllClose(exact[1], scann[1], atol=1e-5)

  def test_no_users(self):
    channel = U2IChannel(_item_index(self.items))
    ids, scores = channel.retrieve(
        _queries(np.zeros((0, 2), np.float32)), 3)
    self.assertEqual(ids.shape, (0, 3))
    self.assertEqual(scores.shape, (0, 3))


if __name__ == "__main__":
  tf.test.main()
