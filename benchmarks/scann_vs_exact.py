r"""Queries/second and recall@k of ScaNN, exact TF brute force and faiss IVF.

Data: synthetic, *clustered* embeddings, not isotropic noise. Centres are
`--num_clusters` random unit vectors; each point is a centre (drawn uniformly)
plus Gaussian noise of RMS norm `--cluster_spread`, whose variance along the
i-th of a fixed set of random orthogonal directions decays as
i**-`--noise_decay` (learned embeddings concentrate variance in a few
directions; 0 gives isotropic noise). Points are then L2-normalised, so scores
are cosines as in MIC's towers. Queries are fresh draws from the same mixture
(they are not database rows). With the defaults, 1M points put ~1000 points
in each cluster; at 100k only ~100, so the shared noise directions pull many
true neighbours out of the query's cluster and partitioning is harder.

Methods, all timed through the `mic_tf.indexes` API, interleaved round by
round in one process (the best of `--rounds` is reported):

* exact / batched: `BruteForceIndex.search` on all queries; the index scores
  `batch` queries per TF matmul + `tf.math.top_k` (batch = min(1024, what
  keeps the batch x n float32 score matrix under `--exact_max_score_mib`)).
  TensorFlow uses all cores for the matmul.
* exact / 1 query: the same, one query per call, on the first
  `--unbatched_queries` queries.
* scann / batched-1 thread: `ScannIndex` with `search_batched` (one thread).
* scann / batched-parallel: `ScannIndex` with `search_batched_parallel`
  (ScaNN splits the batch over its thread pool; the `ScannIndex` default).
* scann / 1 query: one query per call.
* faiss IVF (a second ANN library, for reference): `faiss.IndexIVFFlat`
  with inner product, `2 * sqrt(n)` lists trained on a sample of
  `--faiss_train_size` points, searched batched on all cores. It is timed
  at each `--faiss_nprobe` value (lists probed per query); the table shows
  the smallest one reaching recall >= `--target_recall` (tuned on the same
  queries, so an optimistic setting for faiss) and the one before it.
  faiss is not a mic-tf dependency: `pip install faiss-cpu` to get these
  rows (they are skipped, with a note, without it).

Recall@k is the fraction of the exact top-k (from the exact index) that the
approximate search returns, averaged over queries. The speed-up column
divides each QPS by the exact batched QPS of the same size. After each size
the indexes are freed (5M x 128 float32 is 2.5 GB per copy).

Usage:

  TF_CPP_MIN_LOG_LEVEL=2 python benchmarks/scann_vs_exact.py \
      --sizes=20000,100000,1000000,5000000 --dim=128 --k=50 --num_queries=1000
"""

import dataclasses
import gc
import math
import os
import platform
import time
from typing import Callable, Dict, List, Optional, Sequence

from absl import app
from absl import flags
import numpy as np

import mic_tf  # pylint: disable=unused-import  (sets up TF/Keras env first)
from mic_tf import indexes
import tensorflow as tf

_SIZES = flags.DEFINE_list("sizes", ["100000", "1000000"],
                           "Database sizes to benchmark.")
_DIM = flags.DEFINE_integer("dim", 128, "Embedding dimension.")
_K = flags.DEFINE_integer("k", 50, "Neighbours per query.")
_NUM_QUERIES = flags.DEFINE_integer("num_queries", 1000,
                                    "Queries for the batched methods.")
_UNBATCHED_QUERIES = flags.DEFINE_integer(
    "unbatched_queries", 100, "Queries for the one-query-per-call methods.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the synthetic data (ScaNN training has its own randomness).")
_NUM_CLUSTERS = flags.DEFINE_integer("num_clusters", 1000,
                                     "Gaussian mixture components.")
_CLUSTER_SPREAD = flags.DEFINE_float(
    "cluster_spread", 1.0,
    "RMS norm of the within-cluster noise relative to the unit centres.")
_NOISE_DECAY = flags.DEFINE_float(
    "noise_decay", 1.0,
    "Within-cluster noise variance along the i-th of `dim` random "
    "orthogonal directions is proportional to i**-noise_decay; 0 gives "
    "isotropic noise.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds.")
_EXACT_MAX_SCORE_MIB = flags.DEFINE_integer(
    "exact_max_score_mib", 512,
    "Memory cap of the exact index's per-batch score matrix (MiB).")
_FAISS_NPROBE = flags.DEFINE_list(
    "faiss_nprobe", ["auto"],
    "faiss IVF lists probed per query, timed in turn (ascending); 'auto': "
    "1, 2, 4, ... and finally every list.")
_FAISS_TRAIN_SIZE = flags.DEFINE_integer(
    "faiss_train_size", 200_000, "Points sampled to train faiss IVF's lists.")
_TARGET_RECALL = flags.DEFINE_float(
    "target_recall", 0.99, "Recall the faiss setting shown must reach.")
_SWEEP_LEAVES = flags.DEFINE_list(
    "sweep_leaves", [],
    "num_leaves_to_search values to time at query time (tuning); crossed "
    "with --sweep_candidates.")
_SWEEP_CANDIDATES = flags.DEFINE_list(
    "sweep_candidates", [],
    "Reorder pool sizes to time at query time (tuning).")


@dataclasses.dataclass
class Row:
  size: int
  method: str
  batching: str
  qps: float
  recall: Optional[float]


def noise_basis(rng: np.random.Generator, dim: int, spread: float,
                decay: float) -> np.ndarray:
  """A (dim, dim) map from white noise to the within-cluster noise.

  Rows are random orthonormal directions scaled so the variance along
  direction i is proportional to (i + 1)**-decay and the total variance is
  spread**2.

  Args:
    rng: Random generator.
    dim: Embedding dimension.
    spread: RMS norm of the noise.
    decay: Power-law exponent of the variance spectrum (0 = isotropic).

  Returns:
    Matrix M such that `white @ M` has the wanted covariance.
  """
  rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
  variances = np.arange(1, dim + 1, dtype=np.float64)**-decay
  variances *= spread**2 / variances.sum()
  return (np.sqrt(variances)[:, None] * rotation.T).astype(np.float32)


def clustered_embeddings(rng: np.random.Generator, centres: np.ndarray,
                         basis: np.ndarray, num_points: int) -> np.ndarray:
  """Draws `num_points` unit vectors from the Gaussian mixture `centres`."""
  num_clusters, dim = centres.shape
  out = np.empty((num_points, dim), np.float32)
  chunk = 100_000  # Bounds temporary memory for 1M+ points.
  for start in range(0, num_points, chunk):
    rows = min(chunk, num_points - start)
    assignment = rng.integers(num_clusters, size=rows)
    noise = rng.standard_normal((rows, dim), dtype=np.float32)
    points = centres[assignment] + noise @ basis
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    out[start:start + rows] = points
  return out


def unit_centres(rng: np.random.Generator, num_clusters: int,
                 dim: int) -> np.ndarray:
  centres = rng.standard_normal((num_clusters, dim), dtype=np.float32)
  return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def best_seconds(timers: Dict[str, Callable[[], None]],
                 rounds: int) -> Dict[str, float]:
  """Runs every timer once per round, interleaved; returns the best time."""
  best = {name: float("inf") for name in timers}
  for _ in range(rounds):
    for name, fn in timers.items():
      start = time.perf_counter()
      fn()
      best[name] = min(best[name], time.perf_counter() - start)
  return best


def one_at_a_time(index: indexes.Index, queries: np.ndarray,
                  k: int) -> Callable[[], None]:
  def run():
    for i in range(queries.shape[0]):
      index.search(queries[i:i + 1], k)
  return run


def benchmark_size(size: int, rng: np.random.Generator, centres: np.ndarray,
                   basis: np.ndarray) -> List[Row]:
  """Builds both indexes over `size` points and times them."""
  k = _K.value
  items = clustered_embeddings(rng, centres, basis, size)
  queries = clustered_embeddings(rng, centres, basis, _NUM_QUERIES.value)
  single = queries[:_UNBATCHED_QUERIES.value]

  start = time.perf_counter()
  exact = indexes.BruteForceIndex(
      max_score_bytes=_EXACT_MAX_SCORE_MIB.value * 2**20).build(items)
  exact_build = time.perf_counter() - start
  config = indexes.ScannConfig.auto(size, k)
  start = time.perf_counter()
  scann = indexes.ScannIndex(config).build(items)
  scann_build = time.perf_counter() - start
  config = scann.config  # After calibration.
  print(f"\n== n={size:,}: exact build {exact_build:.1f}s (batch "
        f"{exact.batch_size}); ScaNN build {scann_build:.1f}s (calibration "
        f"included: {scann.calibration})\n   {config.describe()}", flush=True)

  exact_ids, _ = exact.search(queries, k)  # Also warms up the tf.function.
  scann.search(queries[:10], k)
  timers = {
      "exact_batched": lambda: exact.search(queries, k),
      "scann_parallel": lambda: scann.search(queries, k),
      "scann_1thread": lambda: scann.search(queries, k, parallel=False),
      "exact_single": one_at_a_time(exact, single, k),
      "scann_single": one_at_a_time(scann, single, k),
  }
  seconds = best_seconds(timers, _ROUNDS.value)
  recall = indexes.recall_against_exact(scann.search(queries, k)[0],
                                        exact_ids)
  num_batched, num_single = queries.shape[0], single.shape[0]
  rows = [
      Row(size, "exact TF matmul+top_k", f"batched ({exact.batch_size}/call)",
          num_batched / seconds["exact_batched"], None),
      Row(size, "exact TF matmul+top_k", "1 query/call",
          num_single / seconds["exact_single"], None),
      Row(size, "ScaNN auto", "batched, parallel",
          num_batched / seconds["scann_parallel"], recall),
      Row(size, "ScaNN auto", "batched, 1 thread",
          num_batched / seconds["scann_1thread"], recall),
      Row(size, "ScaNN auto", "1 query/call",
          num_single / seconds["scann_single"], recall),
  ]
  rows.extend(sweep(size, scann, queries, exact_ids, config))
  del scann, exact
  gc.collect()
  rows.extend(faiss_rows(size, items, queries, exact_ids))
  return rows


def faiss_rows(size: int, items: np.ndarray, queries: np.ndarray,
               exact_ids: np.ndarray) -> List[Row]:
  """faiss IVFFlat at the smallest nprobe reaching the target recall."""
  try:
    import faiss  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("   faiss not installed (pip install faiss-cpu): no faiss rows.")
    return []
  k = _K.value
  nlist = max(1, int(round(2 * math.sqrt(size))))
  start = time.perf_counter()
  quantizer = faiss.IndexFlatIP(items.shape[1])
  index = faiss.IndexIVFFlat(quantizer, items.shape[1], nlist,
                             faiss.METRIC_INNER_PRODUCT)
  sample = np.random.default_rng(0).choice(
      size, min(size, _FAISS_TRAIN_SIZE.value), replace=False)
  index.train(items[np.sort(sample)])
  index.add(items)
  build = time.perf_counter() - start
  print(f"   faiss IVFFlat: {nlist} lists, build {build:.1f}s", flush=True)
  if _FAISS_NPROBE.value == ["auto"]:
    values = [2**i for i in range(int(math.log2(nlist)) + 1)] + [nlist]
  else:
    values = [int(v) for v in _FAISS_NPROBE.value]
  found = []
  for nprobe in sorted(set(v for v in values if v <= nlist)):
    index.nprobe = nprobe
    index.search(queries[:10], k)
    search = lambda: index.search(queries, k)  # pylint: disable=cell-var-from-loop
    seconds = best_seconds({"s": search}, _ROUNDS.value)["s"]
    recall = indexes.recall_against_exact(search()[1], exact_ids)
    print(f"   faiss nprobe={nprobe}: recall {recall:.4f}, "
          f"{queries.shape[0] / seconds:,.0f} QPS", flush=True)
    found.append(Row(size, f"faiss IVFFlat nprobe={nprobe}/{nlist}",
                     "batched, parallel", queries.shape[0] / seconds, recall))
    if recall >= _TARGET_RECALL.value:
      break
  del index
  gc.collect()
  return found[-2:]


def sweep(size: int, scann: indexes.ScannIndex, queries: np.ndarray,
          exact_ids: np.ndarray, config: indexes.ScannConfig) -> List[Row]:
  """Times query-time overrides of leaves searched / reorder pool."""
  k = _K.value
  leaves_values = [None]
  if config.num_leaves is not None and _SWEEP_LEAVES.value:
    leaves_values = [int(v) for v in _SWEEP_LEAVES.value]
  candidate_values = [None]
  if config.reorder_num_neighbours is not None and _SWEEP_CANDIDATES.value:
    candidate_values = [int(v) for v in _SWEEP_CANDIDATES.value]
  settings = [(leaves, candidates) for leaves in leaves_values
              for candidates in candidate_values
              if (leaves, candidates) != (None, None)]
  rows = []
  for leaves, candidates in settings:
    search = lambda: scann.search(  # pylint: disable=cell-var-from-loop
        queries, k, num_leaves_to_search=leaves, num_candidates=candidates)
    seconds = best_seconds({"s": search}, _ROUNDS.value)["s"]
    recall = indexes.recall_against_exact(search()[0], exact_ids)
    shown_leaves = config.num_leaves_to_search if leaves is None else leaves
    shown_leaves = "all" if shown_leaves is None else shown_leaves
    shown_candidates = (config.reorder_num_neighbours
                        if candidates is None else candidates)
    label = f"leaves={shown_leaves},reorder={shown_candidates}"
    rows.append(Row(size, f"ScaNN {label}", "batched, parallel",
                    queries.shape[0] / seconds, recall))
  return rows


def print_table(rows: Sequence[Row]) -> None:
  baseline = {r.size: r.qps for r in rows if r.batching.startswith("batched (")}
  header = (f"{'items':>9} | {'method':<30} | {'batching':<22} | "
            f"{'QPS':>9} | {'recall@' + str(_K.value):>9} | "
            f"{'vs exact batched':>16}")
  print("\n" + header)
  print("-" * len(header))
  for r in rows:
    recall = "exact" if r.recall is None else f"{r.recall:.4f}"
    print(f"{r.size:>9,} | {r.method:<30} | {r.batching:<22} | "
          f"{r.qps:>9,.0f} | {recall:>9} | "
          f"{r.qps / baseline[r.size]:>15.2f}x")


def cpu_name() -> str:
  """The CPU model from /proc/cpuinfo (Linux), else platform's guess."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown CPU"


def main(argv: Sequence[str]) -> None:
  del argv
  print(f"CPU: {cpu_name()} x {os.cpu_count()} logical cores")
  print(f"python {platform.python_version()}, TF {tf.__version__}, "
        f"GPUs visible to TF: {len(tf.config.list_physical_devices('GPU'))}")
  print(f"dim={_DIM.value} k={_K.value} queries={_NUM_QUERIES.value} "
        f"(1-query methods: {_UNBATCHED_QUERIES.value}) "
        f"clusters={_NUM_CLUSTERS.value} spread={_CLUSTER_SPREAD.value} "
        f"noise_decay={_NOISE_DECAY.value} "
        f"seed={_SEED.value} rounds={_ROUNDS.value}")
  rng = np.random.default_rng(_SEED.value)
  centres = unit_centres(rng, _NUM_CLUSTERS.value, _DIM.value)
  basis = noise_basis(rng, _DIM.value, _CLUSTER_SPREAD.value,
                      _NOISE_DECAY.value)
  rows = []
  for size in _SIZES.value:
    rows.extend(benchmark_size(int(size), rng, centres, basis))
    print_table(rows)  # so far: a long run shows its results as it goes


if __name__ == "__main__":
  app.run(main)
