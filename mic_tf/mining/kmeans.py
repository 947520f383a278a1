"""k-means++ seeding and Lloyd's k-means, in numpy.

Used to cluster the users (and the items, and the joint user-item space) so
that hard negatives can be drawn from clusters other than the anchor's
(paper 3.3.2).

Two metrics, both for L2-normalised representations:

* ``"euclidean"``: squared Euclidean distance, centroids are cluster means.
* ``"cosine"``: spherical k-means. Rows are L2-normalised, centroids are
  normalised cluster means and a row joins the centroid of highest cosine
  similarity. On unit vectors ``||x - c||^2 = 2 - 2 cos(x, c)``, so the
  k-means++ D^2 weights are the same squared distances.

Seeding (Arthur & Vassilvitskii, 2007): the first centre is a uniformly drawn
row; every next centre is row ``i`` with probability ``D(i)^2 / sum_j D(j)^2``,
``D(i)`` being the distance of row ``i`` to its closest chosen centre. A chosen
row (and any exact duplicate of it) has ``D = 0`` and is never drawn again
while distinct rows remain; when every remaining row duplicates a centre the
next centre is drawn uniformly among the rows not chosen yet.
"""

from typing import Optional, Tuple

import numpy as np

METRICS = ("cosine", "euclidean")
# Rows per block when scoring rows against centres (bounds the memory of the
# (block, k) score matrix and of the (block, d) difference).
_BLOCK_ROWS = 65536


def _check_metric(metric: str) -> None:
  if metric not in METRICS:
    raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")


def _as_matrix(x: np.ndarray, name: str = "x") -> np.ndarray:
  """Checks ``x`` is a finite non-empty (n, d) float matrix; returns float32."""
  x = np.asarray(x)
  if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
    raise ValueError(f"{name} must be a non-empty 2-D array (rows, dim), got "
                     f"shape {x.shape}.")
  if not np.issubdtype(x.dtype, np.number):
    raise ValueError(f"{name} must be numeric, got dtype {x.dtype}.")
  x = np.ascontiguousarray(x, dtype=np.float32)
  if not np.isfinite(x).all():
    raise ValueError(f"{name} contains NaN or inf; check the encoder output "
                     "before clustering.")
  return x


def normalize_rows(x: np.ndarray) -> np.ndarray:
  """L2-normalises rows; all-zero rows stay zero."""
  norms = np.linalg.norm(x, axis=1, keepdims=True)
  return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _prepare(x: np.ndarray, metric: str) -> np.ndarray:
  _check_metric(metric)
  x = _as_matrix(x)
  return normalize_rows(x) if metric == "cosine" else x


def squared_distances_to(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
  """``||x_i - centre||^2`` for every row, computed from the differences.

  Computing the differences (not ``|x|^2 + |c|^2 - 2 x.c``) gives exactly 0
  for rows identical to the centre, which the D^2 seeding relies on.

  Args:
    x: ``(n, d)`` rows.
    centre: ``(d,)`` point.

  Returns:
    ``(n,)`` float64 squared distances.
  """
  out = np.empty(x.shape[0], np.float64)
  for start in range(0, x.shape[0], _BLOCK_ROWS):
    diff = x[start:start + _BLOCK_ROWS] - centre[None, :]
    out[start:start + _BLOCK_ROWS] = np.einsum("nd,nd->n", diff, diff)
  return out


def d2_probabilities(x: np.ndarray, chosen: np.ndarray) -> np.ndarray:
  """k-means++ probabilities of drawing each row as the next centre.

  Args:
    x: ``(n, d)`` rows (already normalised for the cosine metric).
    chosen: Indices of the centres chosen so far (at least one).

  Returns:
    ``(n,)`` probabilities ``D^2 / sum D^2``; uniform over the rows not in
    ``chosen`` when every ``D`` is 0.

  Raises:
    ValueError: If ``chosen`` is empty.
  """
  chosen = np.asarray(chosen, np.int64).reshape(-1)
  if chosen.size == 0:
    raise ValueError("d2_probabilities needs at least one chosen centre; the "
                     "first centre is drawn uniformly.")
  d2 = np.full(x.shape[0], np.inf)
  for c in chosen:
    d2 = np.minimum(d2, squared_distances_to(x, x[c]))
  return _d2_to_probabilities(d2, chosen)


def _d2_to_probabilities(d2: np.ndarray, chosen: np.ndarray) -> np.ndarray:
  d2 = d2.copy()
  d2[chosen] = 0.0
  total = d2.sum()
  if total > 0:
    return d2 / total
  p = np.ones_like(d2)
  p[chosen] = 0.0
  return p / p.sum()


def kmeans_plus_plus_init(x: np.ndarray, k: int,
                          rng: np.random.Generator,
                          metric: str = "cosine") -> np.ndarray:
  """k-means++ (D^2) seeding.

  Args:
    x: ``(n, d)`` rows.
    k: Number of centres, ``1 <= k <= n``.
    rng: Numpy random generator (the only source of randomness).
    metric: ``"cosine"`` (rows are L2-normalised first) or ``"euclidean"``.

  Returns:
    ``(k,)`` int64 indices of the rows chosen as centres, in the order drawn;
    all distinct.

  Raises:
    ValueError: On bad ``x``, ``k`` or ``metric``.
  """
  x = _prepare(x, metric)
  n = x.shape[0]
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not (
      1 <= k <= n):
    raise ValueError(f"k must be an integer in [1, {n}] (the number of rows), "
                     f"got {k!r}.")
  chosen = [int(rng.integers(n))]
  d2 = squared_distances_to(x, x[chosen[0]])
  for _ in range(1, k):
    p = _d2_to_probabilities(d2, np.asarray(chosen))
    nxt = int(rng.choice(n, p=p))
    chosen.append(nxt)
    d2 = np.minimum(d2, squared_distances_to(x, x[nxt]))
  return np.asarray(chosen, np.int64)


def assign(x: np.ndarray, centroids: np.ndarray,
           metric: str = "cosine") -> Tuple[np.ndarray, np.ndarray]:
  """Nearest centroid of every row.

  Args:
    x: ``(n, d)`` rows (normalised for the cosine metric).
    centroids: ``(k, d)`` centroids.
    metric: ``"cosine"`` or ``"euclidean"``.

  Returns:
    ``(assignments, squared_distances)``: ``(n,)`` int32 cluster of each row
    and ``(n,)`` float64 squared distance to it (``2 - 2 cos`` for cosine).
  """
  _check_metric(metric)
  n = x.shape[0]
  labels = np.empty(n, np.int32)
  dist = np.empty(n, np.float64)
  c_sq = np.einsum("kd,kd->k", centroids, centroids)
  for start in range(0, n, _BLOCK_ROWS):
    block = x[start:start + _BLOCK_ROWS]
    dots = block @ centroids.T
    if metric == "cosine":
      best = np.argmax(dots, axis=1)
      d = 2.0 - 2.0 * dots[np.arange(len(block)), best]
    else:
      scores = c_sq[None, :] - 2.0 * dots
      best = np.argmin(scores, axis=1)
      d = scores[np.arange(len(block)), best] + np.einsum(
          "nd,nd->n", block, block)
    labels[start:start + len(block)] = best
    dist[start:start + len(block)] = np.maximum(d, 0.0)
  return labels, dist


class KMeans:
  """Lloyd's k-means with k-means++ seeding.

  Example::

    centroids, assignments = KMeans(20, iterations=20, seed=0).fit(vectors)

  After ``fit``: ``centroids`` ``(k, d)``, ``assignments`` ``(n,)`` int32,
  ``inertia`` (sum of squared distances to the assigned centroid) and
  ``iterations`` (Lloyd iterations run) are attributes as well.

  Empty clusters are re-seeded with the row farthest from its centroid, so
  every cluster keeps at least one row of the fitted sample.

  Args:
    num_clusters: k.
    iterations: Maximum Lloyd iterations (stops early once no row changes
      cluster).
    seed: Seed of the seeding and of the fitting sample.
    metric: ``"cosine"`` (spherical) or ``"euclidean"``.
    sample_size: Fit on at most this many rows (a seeded sample), then assign
      every row to the fitted centroids; None fits on all rows.
  """

  def __init__(self, num_clusters: int, iterations: int = 20, seed: int = 0,
               metric: str = "cosine", sample_size: Optional[int] = None):
    _check_metric(metric)
    if num_clusters < 1:
      raise ValueError(f"num_clusters must be >= 1, got {num_clusters}.")
    if iterations < 1:
      raise ValueError(f"iterations must be >= 1, got {iterations}.")
    if sample_size is not None and sample_size < num_clusters:
      raise ValueError(f"sample_size ({sample_size}) must be at least "
                       f"num_clusters ({num_clusters}).")
    self.num_clusters = int(num_clusters)
    self.max_iterations = int(iterations)
    self.seed = seed
    self.metric = metric
    self.sample_size = sample_size
    self.centroids: Optional[np.ndarray] = None
    self.assignments: Optional[np.ndarray] = None
    self.inertia: Optional[float] = None
    self.iterations = 0

  def fit(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Clusters the rows of ``x``.

    Args:
      x: ``(n, d)`` rows, ``n >= num_clusters``.

    Returns:
      ``(centroids, assignments)``: ``(k, d)`` float32 and ``(n,)`` int32.

    Raises:
      ValueError: If ``x`` is not a finite (n, d) matrix or has fewer rows
        than clusters.
    """
    x = _prepare(x, self.metric)
    n, k = x.shape[0], self.num_clusters
    if n < k:
      raise ValueError(f"Cannot make {k} clusters of {n} rows: lower "
                       "num_clusters or cluster more rows.")
    rng = np.random.default_rng(self.seed)
    sample = x
    if self.sample_size is not None and n > self.sample_size:
      sample = x[np.sort(rng.choice(n, self.sample_size, replace=False))]
    centroids = sample[kmeans_plus_plus_init(sample, k, rng, self.metric)]
    labels = None
    self.iterations = 0
    for _ in range(self.max_iterations):
      new_labels, dist = assign(sample, centroids, self.metric)
      self.iterations += 1
      if labels is not None and np.array_equal(new_labels, labels):
        break
      labels = new_labels
      centroids = self._update(sample, labels, dist, centroids)
    self.centroids = centroids.astype(np.float32)
    self.assignments, dist = assign(x, self.centroids, self.metric)
    self.inertia = float(dist.sum())
    return self.centroids, self.assignments

  def predict(self, x: np.ndarray) -> np.ndarray:
    """Cluster of each row of ``x`` under the fitted centroids."""
    if self.centroids is None:
      raise RuntimeError("KMeans.predict called before fit(x).")
    return assign(_prepare(x, self.metric), self.centroids, self.metric)[0]

  def _update(self, x: np.ndarray, labels: np.ndarray, dist: np.ndarray,
              old: np.ndarray) -> np.ndarray:
    """Means of each cluster; empty (or zero-mean) clusters are re-seeded."""
    k, d = old.shape
    counts = np.bincount(labels, minlength=k)
    sums = np.zeros((k, d), np.float64)
    # Sum each cluster's rows with one sort + reduceat (np.add.at is slow).
    order = np.argsort(labels, kind="stable")
    present = np.nonzero(counts)[0]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
    sums[present] = np.add.reduceat(x[order].astype(np.float64), starts,
                                    axis=0)
    centroids = sums / np.maximum(counts, 1)[:, None]
    if self.metric == "cosine":
      norms = np.linalg.norm(centroids, axis=1)
      empty = (counts == 0) | (norms < 1e-12)
      centroids = centroids / np.maximum(norms, 1e-12)[:, None]
    else:
      empty = counts == 0
    if empty.any():
      # The rows worst served by the current centroids become new centres.
      far = np.argsort(-dist, kind="stable")
      taken = set()
      for c in np.nonzero(empty)[0]:
        for i in far:
          key = x[i].tobytes()
          if key not in taken:
            taken.add(key)
            centroids[c] = x[i]
            break
    return centroids.astype(np.float32)
