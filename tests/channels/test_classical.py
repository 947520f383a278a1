"""The classical channels (ItemKNN, UserKNN, EASE) against mic_tf.baselines.

Generated data: training users with skewed item choices; evaluated users
whose whole history (longer than the ``history`` feature) is passed as
``exclude``, as the offline protocol does. The channels' in-graph scores
must equal the reference models' dense scores, and their lists the
reference top-k (up to float near-ties).
"""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
import numpy as np
import tensorflow as tf

import channel_test_lib as lib
from mic_tf import baselines
from mic_tf import names
from mic_tf.channels import classical

_NUM_ITEMS = 40
_MAXLEN = 5
_K = 10


def _sequences(rng, n, low, high):
  p = 1.0 / np.arange(1, _NUM_ITEMS)  # skewed: low ids popular
  p /= p.sum()
  return [rng.choice(np.arange(1, _NUM_ITEMS), size=rng.integers(low, high),
                     p=p) for _ in range(n)]


def _data(seed=0):
  rng = np.random.default_rng(seed)
  train = _sequences(rng, 60, 3, 15)
  histories = _sequences(rng, 25, 1, 12)
  histories.append(np.zeros(0, np.int64))  # a user with no known item
  padded = np.zeros((len(histories), _MAXLEN), np.int64)
  for i, h in enumerate(histories):
    tail = h[-_MAXLEN:]
    padded[i, _MAXLEN - len(tail):] = tail
  enc = lib.encoder(np.zeros((len(histories), 2)), _NUM_ITEMS,
                    history=padded)
  return train, histories, enc


def _reference(name, config, train):
  if name == names.ITEMKNN:
    model = baselines.ItemKNN(_NUM_ITEMS, config.neighbourhood, config.shrink)
  elif name == names.USERKNN:
    model = baselines.UserKNN(_NUM_ITEMS, config.neighbours)
  else:
    model = baselines.EASE(_NUM_ITEMS, config.l2)
  return model.fit(train)


_CASES = [
    (names.ITEMKNN, classical.ItemKNNConfig(neighbourhood=None)),
    (names.ITEMKNN, classical.ItemKNNConfig(neighbourhood=5, shrink=2.0)),
    (names.USERKNN, classical.UserKNNConfig(neighbours=7)),
    (names.EASE, classical.EASEConfig(l2=20.0)),
]


class ClassicalChannelTest(tf.test.TestCase):

  def test_scores_and_lists_match_the_reference_models(self):
    train, histories, enc = _data()
    for name, config in _CASES:
      with self.subTest(name=name, config=config):
        channel = classical.CLASSES[name](enc, train, config, k=_K,
                                          exclude_history=True)
        ids, scores = lib.retrieve(channel, histories)
        ref = _reference(name, config, train)
        dense = ref.scores(histories)
        ref_ids = ref.retrieve(histories, _K, exclude_history=True)
        for u, h in enumerate(histories):
          got = ids[u][ids[u] > 0]
          self.assertLen(got, _K)
          self.assertEmpty(np.intersect1d(got, h))
          # Each returned score is the reference score of that item.
          self.assertAllClose(scores[u][:len(got)], dense[u, got],
                              atol=1e-5)
          # No allowed item left out scores above the k-th returned one.
          allowed = np.setdiff1d(np.arange(1, _NUM_ITEMS),
                                 np.concatenate([got, h]))
          self.assertLessEqual(dense[u, allowed].max(),
                               scores[u][_K - 1] + 1e-5)
        self.assertGreaterEqual(np.mean(ids == ref_ids), 0.99)

  def test_a_user_without_known_items_gets_popular_items(self):
    train, histories, enc = _data()
    for name, config in _CASES[::2]:
      channel = classical.CLASSES[name](enc, train, config, k=_K)
      ids, _ = lib.retrieve(channel, histories)
      # Every score is 0: ties go to the lower, more popular ids.
      self.assertAllEqual(ids[-1], np.arange(1, _K + 1))

  def test_serving_path_equals_the_offline_path(self):
    train, histories, enc = _data()
    feats = {k: tf.constant(v) for k, v in enc.features().items()}
    exclude = tf.ragged.constant([list(h) for h in histories],
                                 dtype=tf.int64)
    for name, config in _CASES:
      channel = classical.CLASSES[name](enc, train, config, k=_K)
      ids, _ = lib.retrieve(channel, histories)
      served, _ = channel.recommend(feats, exclude)
      self.assertAllEqual(served.numpy(), ids)

  def test_ease_above_its_item_limit_is_left_out(self):
    reasons = classical.unavailable(50, classical.EASEConfig(max_items=40))
    self.assertEqual(list(reasons), [names.EASE])
    self.assertIn("max_items=40", reasons[names.EASE])
    self.assertEmpty(classical.unavailable(
        40, classical.EASEConfig(max_items=40)))


if __name__ == "__main__":
  tf.test.main()
