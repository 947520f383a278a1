"""Memory banks: current representations, kNN lists and clusters of the pools.

A ``Pool`` is one set of rows (all training users, or all items) in one
representation space. It holds, as non-trainable ``tf.Variable`` s:

* ``vectors`` ``(n, d)``: L2-normalised representations (stop-gradient
  copies, refreshed from the towers);
* ``neighbours`` ``(n, k)``: for each row, the rows of its k nearest
  neighbours in its *neighbour pool* (itself for U2U / I2I, the other side for
  the interaction channel), best first, itself excluded;
* ``clusters`` ``(n,)``: k-means++ cluster of each row, and the membership
  index hard negatives are sampled from (rows sorted by cluster, the start and
  size of each cluster, and each cluster's nearest other non-empty cluster).

``MiningBank`` owns the pools of the mined channels:

=========  =================  ==================  ======================
channel    anchor pool        neighbour pool      clustering
=========  =================  ==================  ======================
``uu``     ``user``           ``user``            users (user space)
``ii``     ``item``           ``item``            items (item space)
``ui``     ``shared_user``    ``shared_item``     users + items jointly
           ``shared_item``    ``shared_user``     (shared space)
=========  =================  ==================  ======================

``MiningBank.update`` recomputes everything from new vectors (numpy k-means,
index-based kNN) and writes the variables; ``sample_positives`` and
``sample_hard_negatives`` read them inside the training graph.

The variables are deliberately *not* tracked by the model: they are derived
state, rebuilt by every refresh, so they stay out of checkpoints and
``get_weights``.
"""

import time
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from mic_tf import console
from mic_tf.mining import kmeans as km
from mic_tf.mining import knn
from mic_tf.mining import pool as pool_lib
from mic_tf.mining.config import MiningConfig

POOL_NAMES = ("user", "item", "shared_user", "shared_item")


def cluster_membership(labels: np.ndarray, num_clusters: int
                       ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Rows grouped by cluster.

  Args:
    labels: ``(n,)`` cluster of each row, in ``[0, num_clusters)``.
    num_clusters: Number of clusters C.

  Returns:
    ``(members, starts, sizes)``: ``(n,)`` rows sorted by cluster (stable),
    ``(C,)`` offset of each cluster in ``members`` and ``(C,)`` its size.
  """
  labels = np.asarray(labels, np.int64)
  members = np.argsort(labels, kind="stable").astype(np.int32)
  sizes = np.bincount(labels, minlength=num_clusters).astype(np.int32)
  starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32)
  return members, starts, sizes


def nearest_other_cluster(centroids: np.ndarray, sizes: np.ndarray,
                          metric: str = "cosine") -> np.ndarray:
  """For each cluster, the closest *other* cluster that has rows.

  Args:
    centroids: ``(C, d)`` centroids.
    sizes: ``(C,)`` rows of each cluster in the pool negatives come from.
    metric: ``"cosine"`` (highest cosine) or ``"euclidean"`` (smallest
      distance).

  Returns:
    ``(C,)`` int32 cluster ids; -1 where no other cluster has rows.
  """
  c = np.asarray(centroids, np.float64)
  if metric == "cosine":
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    score = c @ c.T
  else:
    sq = np.einsum("kd,kd->k", c, c)
    score = -(sq[:, None] + sq[None, :] - 2.0 * c @ c.T)
  score[np.eye(len(c), dtype=bool)] = -np.inf
  score[:, np.asarray(sizes) == 0] = -np.inf
  best = np.argmax(score, axis=1).astype(np.int32)
  best[~np.isfinite(score.max(axis=1))] = -1
  return best


class Pool:
  """One pool of rows (users or items) in one space; see the module doc.

  Args:
    name: Pool name (for variable names and messages).
    ids: ``(n,)`` distinct non-negative external ids of the rows (user ids
      or item ids).
    num_neighbours: k.
    num_clusters: C.
  """

  def __init__(self, name: str, ids: np.ndarray, num_neighbours: int,
               num_clusters: int):
    ids = np.asarray(ids, np.int64).reshape(-1)
    if ids.size == 0 or ids.min() < 0 or np.unique(ids).size != ids.size:
      raise ValueError(f"Pool {name!r} needs distinct non-negative ids, got "
                       f"{ids.size} ids.")
    self.name = name
    self.ids = ids.astype(np.int32)
    self.size = int(ids.size)
    self.num_neighbours = int(num_neighbours)
    self.num_clusters = int(num_clusters)
    lookup = np.full(int(ids.max()) + 1, -1, np.int32)
    lookup[ids] = np.arange(ids.size, dtype=np.int32)
    self._lookup_np = lookup
    self.row_ids = tf.constant(self.ids)
    self._id_to_row = tf.constant(lookup)
    self.dim: Optional[int] = None
    self.vectors: Optional[tf.Variable] = None

  # ------------------------------------------------------------- variables
  def build(self, dim: int) -> None:
    """Creates the variables (zeros) for ``dim``-wide vectors; idempotent.

    Raises:
      ValueError: If ``dim`` is unknown or differs from the built width.
    """
    if dim is None:
      raise ValueError(f"Pool {self.name!r}: the representation width must "
                       "be statically known to build the memory bank.")
    dim = int(dim)
    if self.dim is not None:
      if dim != self.dim:
        raise ValueError(f"Pool {self.name!r} holds {self.dim}-wide vectors "
                         f"but got {dim}-wide ones; the tower output width "
                         "must not change.")
      return
    n, k, c = self.size, self.num_neighbours, self.num_clusters
    with tf.init_scope():
      def var(value, name):
        return tf.Variable(value, trainable=False,
                           name=f"mining_{self.name}_{name}")
      self.vectors = var(tf.zeros([n, dim], tf.float32), "vectors")
      self.neighbours = var(tf.zeros([n, k], tf.int32), "neighbours")
      self.clusters = var(tf.zeros([n], tf.int32), "clusters")
      self.members = var(tf.range(n, dtype=tf.int32), "members")
      self.cluster_starts = var(tf.zeros([c], tf.int32), "cluster_starts")
      self.cluster_sizes = var(
          tf.one_hot(0, c, on_value=n, off_value=0, dtype=tf.int32),
          "cluster_sizes")
      self.nearest_cluster = var(tf.fill([c], -1), "nearest_cluster")
    self.dim = dim

  def assign(self, vectors: np.ndarray, neighbours: np.ndarray,
             labels: np.ndarray, nearest: np.ndarray) -> None:
    """Writes a refreshed state (numpy) into the variables."""
    vectors = np.asarray(vectors, np.float32)
    if vectors.shape[0] != self.size:
      raise ValueError(f"Pool {self.name!r} has {self.size} rows, got "
                       f"{vectors.shape[0]} vectors.")
    self.build(vectors.shape[1])
    members, starts, sizes = cluster_membership(labels, self.num_clusters)
    self.vectors.assign(vectors)
    self.neighbours.assign(np.asarray(neighbours, np.int32))
    self.clusters.assign(np.asarray(labels, np.int32))
    self.members.assign(members)
    self.cluster_starts.assign(starts)
    self.cluster_sizes.assign(sizes)
    self.nearest_cluster.assign(np.asarray(nearest, np.int32))

  # ------------------------------------------------------------- in-graph
  def rows_of(self, ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Rows of external ids; ``(rows, known)`` with unknown ids at row 0."""
    ids = tf.cast(tf.reshape(ids, [-1]), tf.int32)
    in_range = tf.logical_and(ids >= 0, ids < tf.shape(self._id_to_row)[0])
    rows = tf.gather(self._id_to_row, tf.where(in_range, ids, 0))
    known = tf.logical_and(in_range, rows >= 0)
    return tf.where(known, rows, 0), known

  def rows_for_ids_numpy(self, ids: np.ndarray) -> np.ndarray:
    """Rows of external ids (numpy; -1 for ids not in the pool)."""
    ids = np.asarray(ids, np.int64)
    out = np.full(ids.shape, -1, np.int32)
    ok = (ids >= 0) & (ids < self._lookup_np.size)
    out[ok] = self._lookup_np[ids[ok]]
    return out


class MiningBank:
  """The pools of the mined channels, their refresh and in-graph sampling.

  Args:
    config: The ``MiningConfig``.
    user_ids: Ids of the mined users (all training users); may be None when
      neither ``uu`` nor ``ui`` is mined.
    num_items: Item vocabulary size (items ``1 .. num_items - 1`` are mined).

  Raises:
    ValueError: If a pool is too small for ``num_neighbours`` or
      ``num_clusters``.
  """

  def __init__(self, config: MiningConfig, user_ids: Optional[np.ndarray],
               num_items: int):
    self.config = config
    item_ids = pool_lib.item_pool_ids(num_items)
    k, c = config.num_neighbours, config.num_clusters
    self.pools: Dict[str, Pool] = {}
    channels = config.channels
    if user_ids is None and ("uu" in channels or "ui" in channels):
      raise ValueError("Mining uu/ui needs the ids of the user pool (all "
                       "training users).")
    if "uu" in channels:
      self.pools["user"] = Pool("user", user_ids, k, c)
    if "ii" in channels:
      self.pools["item"] = Pool("item", item_ids, k, c)
    if "ui" in channels:
      self.pools["shared_user"] = Pool("shared_user", user_ids, k, c)
      self.pools["shared_item"] = Pool("shared_item", item_ids, k, c)
    self._check_sizes()
    self.neighbour_pool = {"user": "user", "item": "item",
                           "shared_user": "shared_item",
                           "shared_item": "shared_user"}
    with tf.init_scope():
      self.ready = tf.Variable(False, trainable=False, name="mining_ready")
      self.generator = tf.random.Generator.from_seed(config.seed)
    self.refreshes = 0

  def _check_sizes(self) -> None:
    c, k = self.config.num_clusters, self.config.num_neighbours
    for name, p in self.pools.items():
      self_search = name in ("user", "item")
      need = k + 1 if self_search else k
      if p.size < need:
        raise ValueError(
            f"The {name} pool has {p.size} rows, too few for num_neighbours="
            f"{k}{' (plus the row itself)' if self_search else ''}; lower "
            "num_neighbours.")
      if name in ("user", "item") and p.size < c:
        raise ValueError(f"The {name} pool has {p.size} rows, fewer than "
                         f"num_clusters={c}; lower num_clusters.")
    if "shared_user" in self.pools:
      joint = self.pools["shared_user"].size + self.pools["shared_item"].size
      if joint < c:
        raise ValueError(f"The shared space has {joint} rows, fewer than "
                         f"num_clusters={c}; lower num_clusters.")

  def pool(self, name: str) -> Pool:
    if name not in self.pools:
      raise KeyError(f"No {name!r} pool: the mined channels "
                     f"{self.config.channels} do not use it.")
    return self.pools[name]

  @property
  def is_ready(self) -> bool:
    """Whether the bank has been refreshed at least once."""
    return bool(self.ready.numpy())

  def required_vectors(self) -> Tuple[str, ...]:
    """Names of the vector sets ``update`` needs (its keyword arguments)."""
    return tuple(name for name in POOL_NAMES if name in self.pools)

  # --------------------------------------------------------------- refresh
  def update(self, **vectors: np.ndarray) -> Dict[str, float]:
    """Recomputes neighbours and clusters from new vectors and stores them.

    Args:
      **vectors: One ``(n_pool, d)`` array per pool in
        ``required_vectors()`` (``user``, ``item``, ``shared_user``,
        ``shared_item``), rows in the pool's id order. They are
        L2-normalised here.

    Returns:
      Seconds spent: ``{"knn_s", "kmeans_s"}``.

    Raises:
      ValueError: If a required vector set is missing or mis-shaped.
    """
    missing = [n for n in self.required_vectors() if n not in vectors]
    if missing:
      raise ValueError(f"MiningBank.update needs vectors for {missing} (the "
                       f"pools of channels {self.config.channels}).")
    cfg = self.config
    seed = cfg.seed + self.refreshes
    vecs = {}
    for name in self.required_vectors():
      v = np.asarray(vectors[name], np.float32)
      if v.ndim != 2 or v.shape[0] != self.pools[name].size:
        raise ValueError(f"vectors[{name!r}] must have shape "
                         f"({self.pools[name].size}, d), got {v.shape}.")
      vecs[name] = km.normalize_rows(v)
    t_knn = t_km = 0.0
    progress = console.Progress(
        "mining refresh", sum(n in self.pools for n in
                              ("user", "item", "shared_user")), "pools")
    for name in ("user", "item"):
      if name not in self.pools:
        continue
      v = vecs[name]
      t0 = time.perf_counter()
      nbrs = knn.nearest_neighbours(v, v, cfg.num_neighbours,
                                    query_rows=np.arange(len(v)),
                                    index=cfg.index)
      t1 = time.perf_counter()
      model = self._kmeans(seed)
      centroids, labels = model.fit(v)
      sizes = np.bincount(labels, minlength=cfg.num_clusters)
      nearest = nearest_other_cluster(centroids, sizes, cfg.kmeans_metric)
      t2 = time.perf_counter()
      self.pools[name].assign(v, nbrs, labels, nearest)
      t_knn += t1 - t0
      t_km += t2 - t1
      progress.update()
    if "shared_user" in self.pools:
      su, si = vecs["shared_user"], vecs["shared_item"]
      t0 = time.perf_counter()
      u2i = knn.nearest_neighbours(su, si, cfg.num_neighbours, index=cfg.index)
      i2u = knn.nearest_neighbours(si, su, cfg.num_neighbours, index=cfg.index)
      t1 = time.perf_counter()
      centroids, labels = self._kmeans(seed).fit(np.concatenate([su, si]))
      lu, li = labels[:len(su)], labels[len(su):]
      nu = nearest_other_cluster(
          centroids, np.bincount(lu, minlength=cfg.num_clusters),
          cfg.kmeans_metric)
      ni = nearest_other_cluster(
          centroids, np.bincount(li, minlength=cfg.num_clusters),
          cfg.kmeans_metric)
      t2 = time.perf_counter()
      # A pool's nearest-cluster table serves anchors drawing negatives FROM
      # it: a user anchor's hard items come from the nearest cluster that
      # has items (shared_item's table), and vice versa.
      self.pools["shared_user"].assign(su, u2i, lu, nu)
      self.pools["shared_item"].assign(si, i2u, li, ni)
      t_knn += t1 - t0
      t_km += t2 - t1
      progress.update()
    progress.close()
    self.ready.assign(True)
    self.refreshes += 1
    return {"knn_s": t_knn, "kmeans_s": t_km}

  def _kmeans(self, seed: int) -> km.KMeans:
    cfg = self.config
    return km.KMeans(cfg.num_clusters, iterations=cfg.kmeans_iterations,
                     seed=seed, metric=cfg.kmeans_metric,
                     sample_size=cfg.kmeans_sample_size)

  # -------------------------------------------------------------- in-graph
  def _uniform_index(self, count: tf.Tensor) -> tf.Tensor:
    """A uniform int in ``[0, count)`` per element (0 where count <= 0)."""
    u = self.generator.uniform(tf.shape(count), dtype=tf.float32)
    r = tf.cast(tf.floor(u * tf.cast(count, tf.float32)), tf.int32)
    return tf.clip_by_value(r, 0, tf.maximum(count - 1, 0))

  def sample_positives(self, anchor: Pool, anchor_rows: tf.Tensor
                       ) -> Tuple[tf.Tensor, tf.Tensor]:
    """One uniformly drawn kNN neighbour per anchor row.

    Args:
      anchor: The anchor pool.
      anchor_rows: ``(B,)`` rows in ``anchor``.

    Returns:
      ``(vectors, ids)`` of the neighbours, taken from ``anchor``'s
      neighbour pool: ``(B, d)`` (stop-gradient) and ``(B,)`` int32.
    """
    target = self.pools[self.neighbour_pool[anchor.name]]
    lists = tf.gather(anchor.neighbours, anchor_rows)  # (B, k)
    pick = self._uniform_index(
        tf.fill(tf.shape(anchor_rows), anchor.num_neighbours))
    rows = tf.gather(lists, pick[:, None], axis=1, batch_dims=1)[:, 0]
    vectors = tf.stop_gradient(tf.gather(target.vectors, rows))
    return vectors, tf.gather(target.row_ids, rows)

  def sample_hard_negatives(self, target: Pool, anchor_clusters: tf.Tensor,
                            num: int) -> Dict[str, tf.Tensor]:
    """``num`` rows of ``target`` outside each anchor's cluster.

    With ``hard_negative_pool="nearest_cluster"`` each is drawn uniformly
    from the other cluster whose centroid is nearest to the anchor's
    cluster (among clusters with rows in ``target``); with
    ``"other_clusters"``, uniformly from all rows of ``target`` whose
    cluster differs from the anchor's.

    Args:
      target: Pool the negatives come from.
      anchor_clusters: ``(B,)`` cluster of each anchor (same clustering as
        ``target``).
      num: Negatives per anchor.

    Returns:
      Dict with ``vectors`` ``(B*num, d)`` (stop-gradient), ``ids``,
      ``clusters`` and ``valid`` ``(B*num,)``, anchor-major (anchor i's
      negatives are rows ``i*num .. i*num+num-1``). ``valid`` is False where
      no row qualifies or the bank is not refreshed yet.
    """
    clusters = tf.repeat(tf.cast(anchor_clusters, tf.int32), num)
    c = tf.clip_by_value(clusters, 0, target.num_clusters - 1)
    starts = target.cluster_starts
    sizes = target.cluster_sizes
    if self.config.hard_negative_pool == "nearest_cluster":
      other = tf.gather(target.nearest_cluster, c)
      has_other = other >= 0
      other = tf.maximum(other, 0)
      count = tf.where(has_other, tf.gather(sizes, other), 0)
      index = tf.gather(starts, other) + self._uniform_index(count)
    else:
      own_size = tf.gather(sizes, c)
      count = target.size - own_size
      r = self._uniform_index(count)
      index = tf.where(r < tf.gather(starts, c), r, r + own_size)
    index = tf.clip_by_value(index, 0, target.size - 1)
    rows = tf.gather(target.members, index)
    valid = tf.logical_and(count > 0, self.ready)
    return {
        "vectors": tf.stop_gradient(tf.gather(target.vectors, rows)),
        "ids": tf.gather(target.row_ids, rows),
        "clusters": tf.gather(target.clusters, rows),
        "valid": valid,
    }
