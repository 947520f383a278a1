"""`ScannConfig`: every ScaNN knob mic-tf uses, with size-based defaults.

A ScaNN searcher runs up to three stages (see ScaNN's docs/algorithms.md):

1. Partitioning (optional): a k-means tree with `num_leaves` leaves; a query
   scores only the points in its `num_leaves_to_search` closest leaves.
2. Scoring: either exact float brute force, or asymmetric hashing (AH), a
   product quantiser with `dimensions_per_block` dims per 16-centre codebook,
   trained with the anisotropic loss above `anisotropic_quantization_threshold`.
3. Reordering (optional, recommended with AH): rescore the best
   `reorder_num_neighbours` AH candidates exactly and keep the top k.

With `target_recall` set (`auto` sets 0.995), `ScannIndex.build` then
calibrates the query-time knobs on the data itself: it searches a seeded
sample of the database's own vectors, compares with exact search, and
widens `num_leaves_to_search` or the reorder pool until recall@k reaches
the target (see `ScannIndex.calibrate`). The calibrated values replace the
config's, so they are saved with the index and used by both search paths.

The same config drives the numpy/pybind searcher (`ScannIndex`) and the TF-op
searcher used for SavedModel export: `config.configure(builder)` accepts a
builder from either `scann.scann_ops_pybind.builder(db, k, "dot_product")` or
`scann.scann_ops.builder(db, k, "dot_product")`.

Example:

  config = ScannConfig.auto(num_items, k=50)          # sized for the pool
  config = config.with_leaves(2000, search=100).with_reorder(500)
  config = config.with_target_recall(0.995)           # checked at build
  print(config.describe())
"""

import dataclasses
import math
import numbers
from typing import Any, Dict, Optional

from mic_tf import names

#: Below this many points `ScannConfig.auto` scores every point exactly.
BRUTE_FORCE_BELOW = 20_000
#: Below this many points (and above BRUTE_FORCE_BELOW) `auto` skips the tree.
TREE_FROM = 200_000

#: A tree search scores at least this many points (see `auto`).
MIN_POINTS_SCANNED = BRUTE_FORCE_BELOW

#: recall@k against exact search that `auto` configs are calibrated to. The
#: calibration queries are database rows, which read optimistic: at 250k
#: benchmark vectors, 0.9949 on them was 0.9866 on held-out queries. Half the
#: miss rate of 0.99 leaves held-out queries at or above 0.99.
DEFAULT_TARGET_RECALL = 0.995

_SCORING_MODES = ("ah", "brute_force")


@dataclasses.dataclass(frozen=True)
class ScannConfig:
  """How a ScaNN searcher partitions, scores and reorders.

  Attributes:
    num_neighbours: Default k the searcher is built for (search may ask for
      another k; reordering then widens to at least that k).
    num_leaves: Number of k-means partitions, or None for no partitioning.
    num_leaves_to_search: Partitions scored per query (<= num_leaves);
      required iff num_leaves is set. The main speed/recall knob.
    training_sample_size: Points sampled to train the tree and the AH
      codebooks (clipped to the database size at build time).
    training_iterations: k-means iterations when training the tree.
    spherical: Train the tree with spherical k-means (unit-norm centres);
      suits normalised embeddings.
    scoring: "ah" (asymmetric hashing) or "brute_force" (exact float32).
    dimensions_per_block: AH dimensions per codebook block (ScaNN advises 2).
    anisotropic_quantization_threshold: AH anisotropic-loss threshold (ScaNN
      uses 0.2 for unit-norm data); None trains plain (isotropic) AH.
    reorder_num_neighbours: AH candidates rescored exactly, or None for no
      reordering. Should exceed num_neighbours.
    training_threads: Threads for training; 0 lets ScaNN use all cores.
    parallel_search: Split large query batches over ScaNN's thread pool
      (`search_batched_parallel`) instead of one thread (`search_batched`).
    target_recall: If set, `ScannIndex.build` widens the leaves searched
      and the reorder pool until recall@num_neighbours against exact search,
      on a seeded sample of the database's vectors used as queries, reaches
      it (None: use the knobs as given).
  """

  num_neighbours: int = 10
  num_leaves: Optional[int] = None
  num_leaves_to_search: Optional[int] = None
  training_sample_size: int = 100_000
  training_iterations: int = 12
  spherical: bool = False
  scoring: str = "brute_force"
  dimensions_per_block: int = 2
  anisotropic_quantization_threshold: Optional[float] = 0.2
  reorder_num_neighbours: Optional[int] = None
  training_threads: int = 0
  parallel_search: bool = True
  target_recall: Optional[float] = None

  def __post_init__(self):
    _check_positive("num_neighbours", self.num_neighbours)
    if (self.num_leaves is None) != (self.num_leaves_to_search is None):
      raise ValueError(
          "num_leaves and num_leaves_to_search go together: set both (tree "
          "partitioning) or neither (no tree); got num_leaves="
          f"{self.num_leaves}, num_leaves_to_search="
          f"{self.num_leaves_to_search}. Use with_leaves(n, search=m).")
    if self.num_leaves is not None:
      _check_positive("num_leaves", self.num_leaves)
      _check_positive("num_leaves_to_search", self.num_leaves_to_search)
      if self.num_leaves_to_search > self.num_leaves:
        raise ValueError(
            f"num_leaves_to_search ({self.num_leaves_to_search}) cannot exceed "
            f"num_leaves ({self.num_leaves}).")
    _check_positive("training_sample_size", self.training_sample_size)
    _check_positive("training_iterations", self.training_iterations)
    if self.scoring not in _SCORING_MODES:
      raise ValueError(
          f"scoring must be one of {_SCORING_MODES}; got {self.scoring!r}.")
    _check_positive("dimensions_per_block", self.dimensions_per_block)
    threshold = self.anisotropic_quantization_threshold
    if threshold is not None and not math.isfinite(threshold):
      raise ValueError(
          "anisotropic_quantization_threshold must be a finite float, or None "
          f"to disable the anisotropic loss; got {threshold}.")
    if self.reorder_num_neighbours is not None:
      _check_positive("reorder_num_neighbours", self.reorder_num_neighbours)
      if self.scoring == "brute_force":
        raise ValueError(
            "reorder_num_neighbours is only meaningful with scoring='ah': "
            "float brute force is already exact. Use without_reorder().")
    if self.target_recall is not None and not (
        isinstance(self.target_recall, numbers.Real)
        and 0.0 < self.target_recall <= 1.0):
      raise ValueError(
          f"target_recall must be in (0, 1] (e.g. 0.99), or None to skip "
          f"calibration; got {self.target_recall!r}.")
    if self.training_threads < 0:
      raise ValueError(
          f"training_threads must be >= 0 (0 = all cores); got "
          f"{self.training_threads}.")
    self._coerce_numpy_scalars()

  def _coerce_numpy_scalars(self) -> None:
    """Stores numpy integers/floats as Python ones so to_dict is JSON-safe."""
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        object.__setattr__(self, field.name, int(value))
      elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        object.__setattr__(self, field.name, float(value))

  # --------------------------------------------------------------------------
  # Size-based defaults.

  @classmethod
  def auto(cls,
           num_points: int,
           k: int = 10,
           normalized: bool = True) -> "ScannConfig":
    """Picks a config for a database of `num_points` and searches of `k`.

    Follows ScaNN's rules of thumb (docs/algorithms.md), then tuned with
    benchmarks/scann_vs_exact.py on L2-normalised, clustered 128-d data:

    * Fewer than 20k points: ScaNN's float brute force, i.e. exact. A 20k x
      128 float32 table is 10 MB, so a batched scan costs ~2.6 MFLOP per
      query (tens of microseconds) and an approximate index would buy little
      speed for a real recall loss plus training time. 20k is also the
      threshold ScaNN's docs give.
    * 20k to 200k points: AH scoring (2 dims/block, anisotropic threshold
      0.2) of every point, then exact reordering of the best
      max(10 k, 250); a tree over so few points prunes too much (below).
    * 200k points and more: a k-means tree with 2 * sqrt(n) leaves ("same
      order of magnitude as sqrt(n)"; finer leaves also make the residual AH
      codes more precise), then AH, then the same reordering. A query
      searches enough leaves to score max(2% of the points, 20k points):
      never fewer points than the brute-force tier scans.
    * Both tiers with AH are then calibrated on the data (`target_recall`
      0.995, see DEFAULT_TARGET_RECALL): these rules are tuned on clustered benchmark vectors, and
      trained embeddings can be less clustered (a one-epoch Books-size
      model's U2U index gave 0.982 with the uncalibrated rule).

    Tuning notes (benchmark data, k=50, recall@50 against exact search):
    * The tree's training sample must hold well over 50 points per leaf
      (ScaNN's minimum partition size): at 1M, 2000 leaves trained on 100k
      points gave recall 0.57, trained on 250k points 0.997 at the same
      speed. Hence 128 sampled points per leaf (and at least 100k).
    * Spherical k-means (unit-norm data) raised recall at 1M, 1000 leaves,
      40 searched, from 0.972 to 0.991 at equal speed.
    * At 1M with 40 of 2000 leaves, a reorder pool of 2k/4k/6k candidates
      gave 0.973/0.999/0.9997; at a 4k pool, searching 1%/2%/4% of the
      leaves gave 0.9987/0.9990/0.9990, at 95/71/48x exact batched QPS.
    * Smaller pools need a larger fraction of the leaves: at 300k, 2% of
      them gave 0.994; at 100k (only 100 points per synthetic cluster, so
      neighbours straddle clusters) 3%/13%/20% gave 0.85/0.93/0.95, hence
      no tree below 200k. Without a tree, AH + reordering 200 candidates
      gave 0.985 at 20k and 0.999 at 100k; 500 candidates gave 0.9995 and
      0.9999 (k = 50), hence max(10 k, 250).

    Args:
      num_points: Database size (> 0).
      k: Expected number of neighbours per query (> 0).
      normalized: Whether the embeddings are L2-normalised (MIC's are: all
        its spaces score by cosine). Enables spherical k-means in the tree.

    Returns:
      A `ScannConfig`.

    Raises:
      ValueError: if `num_points` or `k` is not positive.
    """
    _check_positive("num_points", num_points)
    _check_positive("k", k)
    config = cls(num_neighbours=k)
    if num_points < BRUTE_FORCE_BELOW:
      return config
    config = config.with_target_recall(DEFAULT_TARGET_RECALL).with_ah().with_reorder(max(10 * k, 250))
    if num_points < TREE_FROM:
      return config
    num_leaves = int(round(2 * math.sqrt(num_points)))
    fraction = max(0.02, MIN_POINTS_SCANNED / num_points)
    search = min(num_leaves, int(math.ceil(fraction * num_leaves)))
    sample_size = min(num_points, max(100_000, 128 * num_leaves))
    return (config.with_leaves(num_leaves, search=search)
            .with_training(sample_size=sample_size)
            .with_spherical(normalized))

  # --------------------------------------------------------------------------
  # Fluent modifiers: each returns a new, validated config.

  def with_num_neighbours(self, k: int) -> "ScannConfig":
    """Returns a copy built for `k` neighbours by default."""
    return dataclasses.replace(self, num_neighbours=k)

  def with_leaves(self, num_leaves: int, search: int) -> "ScannConfig":
    """Returns a copy that partitions into `num_leaves`, searching `search`."""
    return dataclasses.replace(
        self, num_leaves=num_leaves, num_leaves_to_search=search)

  def without_tree(self) -> "ScannConfig":
    """Returns a copy that scores the whole database (no partitioning)."""
    return dataclasses.replace(
        self, num_leaves=None, num_leaves_to_search=None)

  def with_ah(self,
              dimensions_per_block: int = 2,
              anisotropic_quantization_threshold: Optional[float] = 0.2
             ) -> "ScannConfig":
    """Returns a copy that scores with asymmetric hashing."""
    return dataclasses.replace(
        self,
        scoring="ah",
        dimensions_per_block=dimensions_per_block,
        anisotropic_quantization_threshold=anisotropic_quantization_threshold)

  def with_brute_force(self) -> "ScannConfig":
    """Returns a copy that scores exactly (and so drops reordering)."""
    return dataclasses.replace(
        self, scoring="brute_force", reorder_num_neighbours=None)

  def with_reorder(self, num_candidates: int) -> "ScannConfig":
    """Returns a copy that rescores the best `num_candidates` exactly."""
    return dataclasses.replace(self, reorder_num_neighbours=num_candidates)

  def without_reorder(self) -> "ScannConfig":
    """Returns a copy without exact reordering."""
    return dataclasses.replace(self, reorder_num_neighbours=None)

  def with_training(self,
                    sample_size: Optional[int] = None,
                    iterations: Optional[int] = None,
                    threads: Optional[int] = None) -> "ScannConfig":
    """Returns a copy with other training sample size/iterations/threads."""
    changes = {}
    if sample_size is not None:
      changes["training_sample_size"] = sample_size
    if iterations is not None:
      changes["training_iterations"] = iterations
    if threads is not None:
      changes["training_threads"] = threads
    return dataclasses.replace(self, **changes)

  def with_spherical(self, spherical: bool = True) -> "ScannConfig":
    """Returns a copy whose tree uses (or not) spherical k-means."""
    return dataclasses.replace(self, spherical=spherical)

  def with_target_recall(self, recall: Optional[float]) -> "ScannConfig":
    """Returns a copy calibrated at build time to `recall` (None: never)."""
    return dataclasses.replace(self, target_recall=recall)

  def with_parallel_search(self, parallel: bool = True) -> "ScannConfig":
    """Returns a copy that does (or not) split batches over threads."""
    return dataclasses.replace(self, parallel_search=parallel)

  # --------------------------------------------------------------------------
  # Introspection and serialisation.

  @property
  def is_exact(self) -> bool:
    """True when every point is scored in float32 (no tree, no AH)."""
    return self.num_leaves is None and self.scoring == "brute_force"

  def describe(self) -> str:
    """One sentence describing the search, e.g. for logs and reports."""
    if self.num_leaves is None:
      stage1 = "Score every point"
    else:
      stage1 = (f"Search the {self.num_leaves_to_search} nearest of "
                f"{self.num_leaves} {'spherical ' if self.spherical else ''}"
                f"k-means leaves")
    if self.scoring == "brute_force":
      stage2 = "with exact float32 dot products"
    else:
      threshold = self.anisotropic_quantization_threshold
      loss = ("isotropic" if threshold is None else
              f"anisotropic threshold {threshold:g}")
      stage2 = (f"with asymmetric hashing ({self.dimensions_per_block} "
                f"dims/block, {loss})")
    stage3 = ("" if self.reorder_num_neighbours is None else
              f", then rescore the best {self.reorder_num_neighbours} exactly")
    stage4 = ("" if self.target_recall is None else
              f" Widen the search at build time until recall@"
              f"{self.num_neighbours} against exact search is at least "
              f"{self.target_recall:g}.")
    return (f"{stage1} {stage2}{stage3}; return the top "
            f"{self.num_neighbours} by dot product.{stage4}")

  def to_dict(self) -> Dict[str, Any]:
    """A JSON-serialisable dict; inverse of `from_dict`."""
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Dict[str, Any]) -> "ScannConfig":
    """Rebuilds a config from `to_dict` output.

    Raises:
      ValueError: if `values` has keys that are not config fields.
    """
    values = names.upgrade_fields(values)  # indexes saved before a rename
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(
          f"Unknown ScannConfig fields {unknown}; expected a subset of "
          f"{sorted(known)}.")
    return cls(**values)

  # --------------------------------------------------------------------------
  # Mapping onto ScaNN's builders.

  def configure(self, builder: Any, num_points: Optional[int] = None) -> Any:
    """Applies this config to a ScaNN builder and returns it.

    Works with both `scann.scann_ops_pybind.builder(db, k, "dot_product")`
    (numpy searcher) and `scann.scann_ops.builder(db, k, "dot_product")` (TF
    resource searcher, for SavedModels), so both serve the same index.

    Args:
      builder: A fresh `scann.ScannBuilder` (nothing configured yet).
      num_points: Database size, used to clip the training sample; defaults
        to `builder.db.shape[0]`.

    Returns:
      The configured builder; call `.build()` on it.

    Raises:
      ValueError: if the tree has more leaves than the database has points.
    """
    if num_points is None:
      num_points = int(builder.db.shape[0])
    sample_size = min(self.training_sample_size, num_points)
    threshold = self.anisotropic_quantization_threshold
    threshold = float("nan") if threshold is None else threshold
    builder.set_n_training_threads(self.training_threads)
    if self.num_leaves is not None:
      if self.num_leaves > num_points:
        raise ValueError(
            f"num_leaves ({self.num_leaves}) exceeds the database size "
            f"({num_points}): use fewer leaves (about sqrt(n)) or "
            f"ScannConfig.auto(n).")
      builder = builder.tree(
          num_leaves=self.num_leaves,
          num_leaves_to_search=self.num_leaves_to_search,
          training_sample_size=sample_size,
          training_iterations=self.training_iterations,
          spherical=self.spherical)
    if self.scoring == "brute_force":
      return builder.score_brute_force()
    builder = builder.score_ah(
        self.dimensions_per_block,
        anisotropic_quantization_threshold=threshold,
        training_sample_size=sample_size)
    if self.reorder_num_neighbours is not None:
      builder = builder.reorder(self.reorder_num_neighbours)
    return builder


def _check_positive(name: str, value: Any) -> None:
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral) or
      value <= 0):
    raise ValueError(f"{name} must be a positive integer; got {value!r}.")
