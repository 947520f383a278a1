"""Tests of k-means++ seeding and Lloyd's k-means (numpy, seeded)."""

import mic_tf  # noqa: F401  (Keras-2 environment first)
import numpy as np
import pytest

from mic_tf.mining import kmeans as km


def _blobs(num_blobs=4, per_blob=50, dim=8, spread=0.05, seed=0):
  """Blobs around orthonormal centres (pairwise distance sqrt(2)).

  Returns (x, labels). A row lies about ``spread * sqrt(dim)`` from its
  centre.
  """
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  centres = q[:num_blobs]
  labels = np.repeat(np.arange(num_blobs), per_blob)
  x = centres[labels] + spread * rng.normal(size=(len(labels), dim))
  return x.astype(np.float32), labels


def _purity(assignments, labels):
  """Fraction of rows whose cluster's majority label is their own label."""
  total = 0
  for c in np.unique(assignments):
    total += np.bincount(labels[assignments == c]).max()
  return total / len(labels)


# ------------------------------------------------------------------ seeding
def test_d2_probabilities_on_a_tiny_example():
  x = np.array([[0.0], [1.0], [3.0]], np.float32)
  p = km.d2_probabilities(x, chosen=[0])
  # D^2 = [0, 1, 9] -> probabilities 0, 0.1, 0.9.
  np.testing.assert_allclose(p, [0.0, 0.1, 0.9], atol=1e-12)
  p = km.d2_probabilities(x, chosen=[0, 2])
  np.testing.assert_allclose(p, [0.0, 1.0, 0.0], atol=1e-12)


def test_d2_probabilities_uniform_over_unchosen_when_all_duplicates():
  x = np.array([[0.0], [0.0], [1.0], [1.0]], np.float32)
  p = km.d2_probabilities(x, chosen=[0, 2])
  np.testing.assert_allclose(p, [0.0, 0.5, 0.0, 0.5])


def test_first_centre_is_uniform():
  x = np.arange(5, dtype=np.float32)[:, None]
  firsts = [km.kmeans_plus_plus_init(x, 1, np.random.default_rng(s),
                                     metric="euclidean")[0]
            for s in range(2000)]
  counts = np.bincount(firsts, minlength=5)
  # Expected 400 each; 5 sigma of a binomial(2000, 0.2) is about 90.
  assert counts.min() > 310 and counts.max() < 490, counts


def test_seeding_never_duplicates_a_point_while_distinct_points_remain():
  rng = np.random.default_rng(0)
  distinct = rng.normal(size=(4, 3)).astype(np.float32)
  x = np.repeat(distinct, 25, axis=0)  # each point 25 times
  for seed in range(50):
    idx = km.kmeans_plus_plus_init(x, 4, np.random.default_rng(seed),
                                   metric="euclidean")
    assert len(np.unique(x[idx], axis=0)) == 4
    assert len(set(idx.tolist())) == 4


def test_seeding_with_more_centres_than_distinct_points_uses_distinct_rows():
  x = np.repeat(np.eye(2, dtype=np.float32), 3, axis=0)  # 2 distinct points
  idx = km.kmeans_plus_plus_init(x, 5, np.random.default_rng(1),
                                 metric="euclidean")
  assert len(set(idx.tolist())) == 5
  assert len(np.unique(x[idx[:2]], axis=0)) == 2  # first two are distinct


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_seeding_hits_every_well_separated_blob(metric):
  x, labels = _blobs(num_blobs=5, per_blob=40, dim=16, spread=0.02)
  hits = 0
  for seed in range(40):
    idx = km.kmeans_plus_plus_init(x, 5, np.random.default_rng(seed), metric)
    hits += len(set(labels[idx].tolist())) == 5
  assert hits >= 36, hits


def test_seeding_is_deterministic_given_the_generator():
  x, _ = _blobs()
  a = km.kmeans_plus_plus_init(x, 4, np.random.default_rng(3))
  b = km.kmeans_plus_plus_init(x, 4, np.random.default_rng(3))
  np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("k", [0, 11, 2.5])
def test_seeding_rejects_bad_k(k):
  with pytest.raises(ValueError, match="k must be an integer"):
    km.kmeans_plus_plus_init(np.zeros((10, 2)), k, np.random.default_rng(0))


# ------------------------------------------------------------------- Lloyd
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_kmeans_recovers_known_clusters(metric):
  x, labels = _blobs(num_blobs=4, per_blob=60, dim=8, spread=0.15, seed=2)
  model = km.KMeans(4, iterations=30, seed=0, metric=metric)
  centroids, assignments = model.fit(x)
  assert centroids.shape == (4, 8)
  assert assignments.shape == (240,) and assignments.dtype == np.int32
  assert _purity(assignments, labels) >= 0.99
  assert len(np.unique(assignments)) == 4
  if metric == "cosine":
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0,
                               rtol=1e-5)
  np.testing.assert_array_equal(model.predict(x), assignments)


def test_kmeans_on_a_sample_assigns_every_row():
  x, labels = _blobs(num_blobs=3, per_blob=200, dim=6, spread=0.1, seed=4)
  model = km.KMeans(3, iterations=20, seed=1, sample_size=60)
  _, assignments = model.fit(x)
  assert assignments.shape == (600,)
  assert _purity(assignments, labels) >= 0.99


def test_kmeans_inertia_is_zero_with_one_cluster_per_point():
  x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
  model = km.KMeans(7, iterations=5, seed=0, metric="euclidean")
  _, assignments = model.fit(x)
  assert sorted(assignments.tolist()) == list(range(7))
  assert model.inertia == pytest.approx(0.0, abs=1e-6)


def test_kmeans_is_deterministic_and_lowers_inertia_vs_its_seeding():
  x, _ = _blobs(num_blobs=4, per_blob=50, spread=0.3, seed=5)
  a = km.KMeans(4, iterations=30, seed=9).fit(x)
  b = km.KMeans(4, iterations=30, seed=9).fit(x)
  np.testing.assert_array_equal(a[1], b[1])
  np.testing.assert_array_equal(a[0], b[0])
  one = km.KMeans(4, iterations=1, seed=9)
  one.fit(x)
  many = km.KMeans(4, iterations=30, seed=9)
  many.fit(x)
  assert many.inertia <= one.inertia + 1e-9


def test_kmeans_errors_name_the_fix():
  with pytest.raises(ValueError, match="lower num_clusters"):
    km.KMeans(5).fit(np.zeros((3, 2)))
  with pytest.raises(ValueError, match="NaN"):
    km.KMeans(2).fit(np.array([[0.0, np.nan], [1.0, 1.0]]))
  with pytest.raises(ValueError, match="metric"):
    km.KMeans(2, metric="manhattan")
  with pytest.raises(ValueError, match="2-D"):
    km.KMeans(2).fit(np.zeros(5))
  with pytest.raises(RuntimeError, match="before fit"):
    km.KMeans(2).predict(np.zeros((3, 2)))
