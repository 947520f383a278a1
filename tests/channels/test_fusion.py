"""Tests for channel fusion: quota arithmetic, quota merge, score merge."""

import json

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import channels
from mic_tf.channels import fusion
from mic_tf.channels.fusion import FusionConfig


def _fuse(lists, config, k):
  """``fusion.fuse_lists`` on numpy lists, numpy out."""
  tensors = {c: (tf.constant(ids), tf.constant(scores))
             for c, (ids, scores) in lists.items()}
  ids, scores = fusion.fuse_lists(tensors, config, k)
  return ids.numpy(), scores.numpy()


def _lists(*rows):
  """Channel name -> (ids, scores) with scores descending by position."""
  out = {}
  for name, ids in zip(("u2i", "u2u", "i2i"), rows):
    ids = np.array([ids], np.int64)
    scores = np.where(ids > 0, -np.arange(ids.shape[1], dtype=np.float32),
                      -np.inf).astype(np.float32)
    out[name] = (ids, scores)
  return out


class QuotaArithmeticTest(parameterized.TestCase):

  @parameterized.parameters(
      (50, (0.5, 0.25, 0.25), [25, 13, 12]),
      (20, (0.5, 0.25, 0.25), [10, 5, 5]),
      (4, (0.5, 0.25, 0.25), [2, 1, 1]),
      (1, (0.5, 0.25, 0.25), [1, 0, 0]),
      (2, (1, 1, 1), [1, 1, 0]),
      (10, (1, 2, 1), [3, 5, 2]),
      (7, (3,), [7]),
      (0, (1, 1), [0, 0]))
  def test_quotas(self, k, weights, expected):
    self.assertEqual(fusion.quotas(k, weights), expected)
    self.assertEqual(sum(fusion.quotas(k, weights)), k)

  def test_bad_weights(self):
    with self.assertRaisesRegex(ValueError, "positive"):
      fusion.quotas(5, (1, 0))


class FusionTest(tf.test.TestCase):

  def test_quota_dedupes_and_interleaves(self):
    lists = _lists([10, 11, 12, 13], [11, 20, 21], [30, 31])
    ids, scores = _fuse(lists, FusionConfig(), 4)
    # Quotas 2/1/1: u2i takes 10, 11; u2u skips 11 and takes 20; i2i 30.
    # Keys: 10 -> .25, 20 -> .5, 30 -> .5 (after u2u), 11 -> .75.
    self.assertAllEqual(ids, [[10, 20, 30, 11]])
    self.assertAllClose(scores, [[1.0, 0.75, 0.5, 0.25]])

  def test_quota_fills_from_channels_in_priority_order(self):
    lists = _lists([10, 11, 12, 13], [11, 20, 21], [-1, -1])
    ids, _ = _fuse(lists, FusionConfig(), 4)
    # i2i is empty: its slot goes to u2i's next item, 12. u2i then has 3
    # items (keys 1/6, 1/2, 5/6), u2u one (1/2).
    self.assertAllEqual(ids, [[10, 11, 20, 12]])

  def test_quota_pads_when_every_list_runs_out(self):
    lists = _lists([1, 2], [2, -1], [-1, -1])
    ids, scores = _fuse(lists, FusionConfig(), 4)
    self.assertAllEqual(ids, [[1, 2, -1, -1]])
    self.assertTrue(np.all(np.isneginf(scores[0, 2:])))

  def test_quota_counts_per_channel(self):
    rng = np.random.default_rng(0)
    u2i = rng.permutation(np.arange(1, 200))[:50]
    u2u = rng.permutation(np.arange(200, 400))[:50]
    i2i = rng.permutation(np.arange(400, 600))[:50]
    ids, _ = _fuse(_lists(u2i, u2u, i2i), FusionConfig(), 50)
    row = ids[0]
    self.assertLen(set(row.tolist()), 50)
    self.assertEqual([np.isin(row, c).sum() for c in (u2i, u2u, i2i)],
                     [25, 13, 12])
    # Each channel keeps its own order inside the fused list.
    for channel in (u2i, u2u, i2i):
      picked = row[np.isin(row, channel)]
      self.assertAllEqual(picked, channel[:len(picked)])
    # The top 20 holds about the 20-item quotas (10 / 5 / 5).
    top = row[:20]
    self.assertEqual([np.isin(top, c).sum() for c in (u2i, u2u, i2i)],
                     [10, 5, 5])

  def test_score_fusion_minmax(self):
    lists = {"u2i": (np.array([[1, 2, 3]]), np.array([[0.9, 0.5, 0.1]])),
             "u2u": (np.array([[3, 4]]), np.array([[2.0, 1.0]]))}
    config = FusionConfig(mode="score", weights={"u2i": 1.0, "u2u": 1.0})
    ids, scores = _fuse(lists, config, 4)
    # u2i -> 1, .5, 0; u2u -> 1, 0; fused 1: .5, 2: .25, 3: .5, 4: 0.
    self.assertAllEqual(ids, [[1, 3, 2, 4]])
    self.assertAllClose(scores, [[0.5, 0.5, 0.25, 0.0]])

  def test_score_fusion_rank(self):
    lists = {"u2i": (np.array([[1, 2, 3]]), np.array([[0.9, 0.5, 0.1]])),
             "u2u": (np.array([[3, 4]]), np.array([[2.0, 1.0]]))}
    config = FusionConfig(mode="score", weights={"u2i": 1.0, "u2u": 1.0},
                          normalization="rank")
    ids, scores = _fuse(lists, config, 3)
    # u2i -> 1, 2/3, 1/3; u2u -> 1, 1/2; 3: 1/6 + 1/2, 1: 1/2, 2: 1/3.
    self.assertAllEqual(ids, [[3, 1, 2]])
    self.assertAllClose(scores, [[2 / 3, 0.5, 1 / 3]])

  def test_score_fusion_ignores_padding_and_equal_scores(self):
    lists = {"u2i": (np.array([[5, -1]]), np.array([[0.3, -np.inf]])),
             "i2i": (np.array([[6, 7]]), np.array([[0.2, 0.2]]))}
    config = FusionConfig(mode="score", weights={"u2i": 3.0, "i2i": 1.0})
    ids, scores = _fuse(lists, config, 3)
    self.assertAllEqual(ids, [[5, 6, 7]])
    self.assertAllClose(scores, [[0.75, 0.25, 0.25]])

  def test_config_round_trip_keeps_priority(self):
    config = channels.ChannelConfig(fusion=FusionConfig(
        weights={"u2u": 0.2, "i2i": 0.3, "u2i": 0.5}))
    text = json.dumps(config.to_dict(), sort_keys=True)
    again = channels.load_channel_config(text)
    self.assertEqual(again.fusion.channels, ("u2u", "i2i", "u2i"))
    self.assertEqual(again, config)

  def test_missing_channel(self):
    with self.assertRaisesRegex(ValueError, "i2i"):
      _fuse(_lists([1], [2]), FusionConfig(), 2)

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, "mode"):
      FusionConfig(mode="vote")
    with self.assertRaisesRegex(ValueError, "unknown channel"):
      FusionConfig(weights={"u2x": 1.0})
    with self.assertRaisesRegex(ValueError, "> 0"):
      FusionConfig(weights={"u2i": -1.0})
    with self.assertRaisesRegex(ValueError, "empty"):
      FusionConfig(weights={"u2i": 0.0})


class RankFusionTest(tf.test.TestCase):

  def test_reciprocal_rank_fusion(self):
    lists = _lists([5, 1, 2], [1, 3, 2])
    config = FusionConfig(mode="rrf", weights={"u2i": 1.0, "u2u": 1.0},
                          rrf_k=0.0)
    ids, scores = _fuse(lists, config, 4)
    # 1: 1/2 + 1/1, 5: 1/1, 2: 1/3 + 1/3, 3: 1/2 (each over sum(w) = 2).
    self.assertAllEqual(ids, [[1, 5, 2, 3]])
    self.assertAllClose(scores, [[0.75, 0.5, 1 / 3, 0.25]])

  def test_one_channel_is_its_own_list(self):
    lists = _lists([5, 1, 2], [1, 3, 2])
    for mode in fusion.MODES:
      config = FusionConfig(mode=mode, weights={"u2u": 1.0, "u2i": 0.0})
      self.assertTrue(config.is_single)
      ids, _ = _fuse(lists, config, 3)
      self.assertAllEqual(ids, [[1, 3, 2]], msg=mode)
    self.assertEqual(config.describe(), "u2u alone")
    with self.assertRaisesRegex(ValueError, "rrf_k"):
      FusionConfig(mode="rrf", rrf_k=-1.0)


if __name__ == "__main__":
  tf.test.main()


def test_channel_config_reads_reports_written_before_the_rename():
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  config = channels.ChannelConfig(u2u=channels.U2UConfig(num_neighbours=20,
                                                         alpha=0.5))
  saved = config.to_dict()
  saved["u2u"]["num_neighbors"] = saved["u2u"].pop("num_neighbours")
  assert channels.ChannelConfig.from_dict(saved) == config
