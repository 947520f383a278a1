"""Tests of kNN search, the memory banks and their in-graph sampling."""

import mic_tf  # noqa: F401  (Keras-2 environment first)
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf.mining import bank as bank_lib
from mic_tf.mining import kmeans as km
from mic_tf.mining import knn
from mic_tf.mining.config import MiningConfig

NUM_USERS = 40
NUM_ITEMS = 31  # item ids 1..30


def _unit(rng, n, d):
  return km.normalize_rows(rng.normal(size=(n, d)))


def _numpy_knn(queries, database, k, exclude_self):
  scores = queries @ database.T
  if exclude_self:
    np.fill_diagonal(scores, -np.inf)
  return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _vectors(seed=0, dim=6):
  rng = np.random.default_rng(seed)
  user_ids = np.sort(rng.choice(60, NUM_USERS, replace=False)).astype(np.int32)
  return user_ids, {
      "user": _unit(rng, NUM_USERS, dim),
      "item": _unit(rng, NUM_ITEMS - 1, dim),
      "shared_user": _unit(rng, NUM_USERS, dim),
      "shared_item": _unit(rng, NUM_ITEMS - 1, dim),
  }


def _bank(user_ids, **overrides):
  kwargs = dict(num_neighbours=3, num_clusters=4, hard_negatives=2,
                index="exact", seed=0)
  kwargs.update(overrides)
  return bank_lib.MiningBank(MiningConfig(**kwargs), user_ids, NUM_ITEMS)


class NearestNeighboursTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters("exact", "auto")
  def test_self_search_matches_numpy_and_excludes_self(self, index):
    x = _unit(np.random.default_rng(1), 50, 8)
    got = knn.nearest_neighbours(x, x, 5, query_rows=np.arange(50),
                                 index=index)
    want = _numpy_knn(x, x, 5, exclude_self=True)
    self.assertAllEqual(got, want)
    self.assertFalse(np.any(got == np.arange(50)[:, None]))

  def test_self_is_excluded_even_when_a_duplicate_ranks_first(self):
    x = _unit(np.random.default_rng(2), 10, 4)
    x[3] = x[7]  # rows 3 and 7 identical: each is the other's best match
    got = knn.nearest_neighbours(x, x, 2, query_rows=np.arange(10))
    self.assertEqual(got[3, 0], 7)
    self.assertEqual(got[7, 0], 3)
    self.assertFalse(np.any(got == np.arange(10)[:, None]))

  def test_cross_search_matches_numpy(self):
    rng = np.random.default_rng(3)
    q, db = _unit(rng, 12, 5), _unit(rng, 30, 5)
    self.assertAllEqual(knn.nearest_neighbours(q, db, 4),
                        _numpy_knn(q, db, 4, exclude_self=False))

  def test_too_many_neighbours_names_the_fix(self):
    x = _unit(np.random.default_rng(0), 5, 3)
    with self.assertRaisesRegex(ValueError, "lower num_neighbours"):
      knn.nearest_neighbours(x, x, 5, query_rows=np.arange(5))

  def test_auto_mining_search_is_light_but_accurate_on_large_pools(self):
    small = knn.mining_scann_config(19_999, 11)
    self.assertIsNone(small.num_leaves)
    self.assertEqual(small.scoring, "brute_force")
    big = knn.mining_scann_config(367_306, 11)
    self.assertEqual(big.num_leaves, 606)  # about sqrt(n)
    self.assertEqual(big.num_leaves_to_search, 7)  # 1%
    self.assertEqual(big.scoring, "brute_force")
    # 25k clustered points: the tree path, nearly exact.
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(200, 16))
    x = centres[rng.integers(0, 200, 25_000)] + 0.3 * rng.normal(
        size=(25_000, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    got = knn.nearest_neighbours(x[:500], x, 10, query_rows=np.arange(500),
                                 index="auto")
    want = _numpy_knn(x[:500], x, 10, exclude_self=True)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want)])
    self.assertGreater(recall, 0.9)

  def test_first_valid_fills_missing_with_best(self):
    rows = np.array([[4, -1, -1], [2, 0, 1]])
    valid = rows != -1
    self.assertAllEqual(knn._first_valid(rows, valid, 2), [[4, 4], [2, 0]])


class MiningBankTest(tf.test.TestCase, parameterized.TestCase):

  def test_update_stores_true_neighbours_and_kmeans_clusters(self):
    user_ids, vecs = _vectors()
    bank = _bank(user_ids)
    self.assertFalse(bank.is_ready)
    timings = bank.update(**vecs)
    self.assertTrue(bank.is_ready)
    self.assertCountEqual(timings, ["knn_s", "kmeans_s"])
    k = 3
    self.assertAllEqual(bank.pool("user").neighbours.numpy(),
                        _numpy_knn(vecs["user"], vecs["user"], k, True))
    self.assertAllEqual(bank.pool("item").neighbours.numpy(),
                        _numpy_knn(vecs["item"], vecs["item"], k, True))
    # Cross mining: users retrieve items, items retrieve users.
    self.assertAllEqual(
        bank.pool("shared_user").neighbours.numpy(),
        _numpy_knn(vecs["shared_user"], vecs["shared_item"], k, False))
    self.assertAllEqual(
        bank.pool("shared_item").neighbours.numpy(),
        _numpy_knn(vecs["shared_item"], vecs["shared_user"], k, False))
    self.assertAllClose(bank.pool("user").vectors.numpy(), vecs["user"])
    _, labels = km.KMeans(4, iterations=20, seed=0,
                          sample_size=50_000).fit(vecs["user"])
    self.assertAllEqual(bank.pool("user").clusters.numpy(), labels)
    # The membership index lists each cluster's rows contiguously.
    pool = bank.pool("user")
    members = pool.members.numpy()
    for c in range(4):
      start = pool.cluster_starts.numpy()[c]
      size = pool.cluster_sizes.numpy()[c]
      self.assertAllEqual(np.sort(members[start:start + size]),
                          np.nonzero(labels == c)[0])

  def test_joint_clustering_spans_users_and_items(self):
    user_ids, vecs = _vectors()
    bank = _bank(user_ids, channels=("ui",))
    bank.update(shared_user=vecs["shared_user"],
                shared_item=vecs["shared_item"])
    _, labels = km.KMeans(4, iterations=20, seed=0).fit(
        np.concatenate([vecs["shared_user"], vecs["shared_item"]]))
    self.assertAllEqual(bank.pool("shared_user").clusters.numpy(),
                        labels[:NUM_USERS])
    self.assertAllEqual(bank.pool("shared_item").clusters.numpy(),
                        labels[NUM_USERS:])

  def test_rows_of_maps_ids_and_flags_unknown(self):
    user_ids, _ = _vectors()
    pool = _bank(user_ids).pool("user")
    outside = np.setdiff1d(np.arange(70), user_ids)[:2]
    ids = np.concatenate([user_ids[[5, 0]], outside, [-3]]).astype(np.int32)
    rows, known = pool.rows_of(tf.constant(ids))
    self.assertAllEqual(known, [True, True, False, False, False])
    self.assertAllEqual(rows, [5, 0, 0, 0, 0])

  def test_sampled_positives_are_knn_neighbours_and_cover_them(self):
    user_ids, vecs = _vectors()
    bank = _bank(user_ids)
    bank.update(**vecs)
    pool = bank.pool("user")
    anchor_rows = np.arange(NUM_USERS)
    rows = tf.constant(np.tile(anchor_rows, 50), tf.int32)
    vectors, ids = bank.sample_positives(pool, rows)
    ids = ids.numpy().reshape(50, NUM_USERS)
    truth = _numpy_knn(vecs["user"], vecs["user"], 3, True)
    for a in anchor_rows:
      self.assertCountEqual(set(ids[:, a]), set(user_ids[truth[a]]))
      self.assertNotIn(user_ids[a], ids[:, a])
    self.assertAllClose(vectors.numpy()[:NUM_USERS],
                        vecs["user"][pool.rows_for_ids_numpy(ids[0])])

  def test_cross_positives_come_from_the_other_side(self):
    user_ids, vecs = _vectors()
    bank = _bank(user_ids, channels=("ui",))
    bank.update(shared_user=vecs["shared_user"],
                shared_item=vecs["shared_item"])
    rows = tf.range(NUM_USERS)
    _, item_ids = bank.sample_positives(bank.pool("shared_user"), rows)
    truth = _numpy_knn(vecs["shared_user"], vecs["shared_item"], 3, False)
    for a, item in enumerate(item_ids.numpy()):
      self.assertIn(item, truth[a] + 1)  # item ids = rows + 1
    _, users = bank.sample_positives(bank.pool("shared_item"), tf.range(30))
    self.assertTrue(np.isin(users.numpy(), user_ids).all())

  @parameterized.parameters("nearest_cluster", "other_clusters")
  def test_hard_negatives_come_from_other_clusters(self, strategy):
    user_ids, vecs = _vectors()
    bank = _bank(user_ids, hard_negative_pool=strategy)
    bank.update(**vecs)
    for name in ("user", "item"):
      pool = bank.pool(name)
      clusters = pool.clusters.numpy()
      anchor_clusters = np.tile(clusters, 20)
      out = bank.sample_hard_negatives(pool, tf.constant(anchor_clusters), 3)
      self.assertTrue(out["valid"].numpy().all())
      got = out["clusters"].numpy()
      anchors = np.repeat(anchor_clusters, 3)
      self.assertFalse(np.any(got == anchors))
      rows = pool.rows_for_ids_numpy(out["ids"].numpy())
      self.assertAllEqual(clusters[rows], got)
      self.assertAllClose(out["vectors"].numpy(), vecs[name][rows])
      if strategy == "nearest_cluster":
        nearest = pool.nearest_cluster.numpy()
        self.assertAllEqual(got, nearest[anchors])
      else:
        # Every row outside some anchor's cluster is reachable.
        self.assertGreater(len(np.unique(rows)), 0.8 * pool.size)

  def test_nearest_cluster_is_the_closest_other_nonempty_centroid(self):
    centroids = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05]])
    sizes = np.array([3, 2, 4, 0])  # cluster 3 has no rows
    self.assertAllEqual(bank_lib.nearest_other_cluster(centroids, sizes),
                        [1, 0, 1, 0])
    self.assertAllEqual(
        bank_lib.nearest_other_cluster(centroids, np.array([1, 0, 0, 0])),
        [-1, 0, 0, 0])

  def test_cross_hard_negatives_are_items_from_other_joint_clusters(self):
    user_ids, vecs = _vectors()
    bank = _bank(user_ids, channels=("ui",),
                 hard_negative_pool="other_clusters")
    bank.update(shared_user=vecs["shared_user"],
                shared_item=vecs["shared_item"])
    users, items = bank.pool("shared_user"), bank.pool("shared_item")
    anchor = users.clusters.numpy()
    out = bank.sample_hard_negatives(items, tf.constant(anchor), 4)
    self.assertTrue(np.isin(out["ids"].numpy(), np.arange(1, NUM_ITEMS)).all())
    self.assertFalse(np.any(out["clusters"].numpy() == np.repeat(anchor, 4)))

  def test_nothing_is_valid_before_the_first_refresh(self):
    user_ids, _ = _vectors()
    bank = _bank(user_ids)
    pool = bank.pool("user")
    pool.build(6)
    out = bank.sample_hard_negatives(pool, tf.zeros([5], tf.int32), 2)
    self.assertFalse(out["valid"].numpy().any())

  def test_errors_name_the_fix(self):
    user_ids, vecs = _vectors()
    with self.assertRaisesRegex(ValueError, "lower num_neighbours"):
      _bank(user_ids, num_neighbours=40)
    with self.assertRaisesRegex(ValueError, "lower num_clusters"):
      _bank(user_ids, num_clusters=35, channels=("ii",))
    bank = _bank(user_ids)
    with self.assertRaisesRegex(ValueError, "needs vectors for"):
      bank.update(user=vecs["user"])
    with self.assertRaisesRegex(ValueError, "must not change"):
      bank.pool("user").build(6)
      bank.pool("user").build(7)


if __name__ == "__main__":
  tf.test.main()
