"""Approximate dot-product search with ScaNN's numpy (pybind) searcher.

`ScannIndex` wraps `scann.scann_ops_pybind` behind the common `Index`
interface: external ids, (-1, -inf) padding, input checks and a save format
that `ScannIndex.load` restores bit-for-bit (same config, same trained tree
and codebooks, so identical search results).

For SavedModel export the same `ScannConfig` configures the TF-op builder:

  searcher = config.configure(
      scann.scann_ops.builder(embeddings, config.num_neighbours, "dot_product")
  ).build()

(`ScannIndex.to_tf_searcher(embeddings)` does exactly that). The TF searcher
is retrained from the embeddings, so it is equivalent in configuration, not
bit-identical to the pybind one; its results are row numbers, to be mapped
through `ScannIndex.ids`.
"""

import os
from typing import Any, Optional, Tuple

import numpy as np

from mic_tf.indexes import base
from mic_tf.indexes.config import ScannConfig

_SEARCHER_SUBDIR = "scann"


def _pybind():
  """Imports ScaNN's pybind module lazily (it is heavy and optional)."""
  try:
    from scann.scann_ops.py import scann_ops_pybind  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "ScannIndex needs the `scann` package: `pip install scann` (mic-tf "
        "pins scann 1.4.2), or use BruteForceIndex / make_index('exact')."
    ) from e
  return scann_ops_pybind


class ScannIndex(base.Index):
  """Approximate maximum-inner-product search with ScaNN.

  Example:

    index = ScannIndex(ScannConfig.auto(len(items), k=50)).build(items, ids)
    ids, scores = index.search(users, k=50)

  With `config=None` the config is chosen at build time by
  `ScannConfig.auto(n, default_k)`. `search(queries, k)` may ask for any k:
  when reordering is on, the candidate pool is widened to at least k.
  Scores are ScaNN's (exact after reordering, AH estimates otherwise).
  """

  KIND = "scann"

  def __init__(self, config: Optional[ScannConfig] = None,
               default_k: int = 10):
    """Stores the config; nothing is trained until `build`.

    Args:
      config: How to partition/score/reorder; None = `ScannConfig.auto`.
      default_k: k passed to `ScannConfig.auto` when `config` is None.
    """
    super().__init__()
    if config is not None and not isinstance(config, ScannConfig):
      raise TypeError(
          f"config must be a ScannConfig, got {type(config).__name__}; build "
          f"one with ScannConfig.auto(n, k).")
    self._config = config
    self._default_k = default_k
    self._searcher = None

  @property
  def config(self) -> ScannConfig:
    """The config in use (resolved by `auto` after `build` if it was None)."""
    if self._config is None:
      raise RuntimeError(
          "ScannIndex(config=None) picks its config when build() sees the "
          "database size; call build() first.")
    return self._config

  def build(self,
            embeddings: np.ndarray,
            ids: Optional[np.ndarray] = None) -> "ScannIndex":
    """See `base.Index.build`; also trains ScaNN's tree/codebooks.

    Raises:
      ValueError: on bad embeddings/ids, or a config whose tree has more
        leaves than there are embeddings.
    """
    embeddings = base.validate_embeddings(embeddings)
    ids = base.validate_ids(ids, embeddings.shape[0])
    if self._config is None:
      self._config = ScannConfig.auto(embeddings.shape[0], self._default_k)
    builder = _pybind().builder(embeddings, self._config.num_neighbours,
                                "dot_product")
    self._searcher = self._config.configure(builder).build()
    self._ids = ids
    self._dim = embeddings.shape[1]
    return self

  def search(self,
             queries: np.ndarray,
             k: int,
             num_leaves_to_search: Optional[int] = None,
             num_candidates: Optional[int] = None,
             parallel: Optional[bool] = None
            ) -> Tuple[np.ndarray, np.ndarray]:
    """See `base.Index.search`; optionally overrides query-time knobs.

    Args:
      queries: Float array (q, d).
      k: Number of neighbours, >= 1.
      num_leaves_to_search: Override the config's leaves searched per query
        (tree configs only).
      num_candidates: Override the reorder pool (AH + reorder configs only);
        it is raised to k when smaller.
      parallel: Override `config.parallel_search` (split the batch over
        ScaNN's thread pool, or search it on the calling thread).

    Returns:
      `(ids, scores)` of shape (q, k); see `base.Index.search`.
    """
    self._check_built()
    queries = base.validate_queries(queries, self.dim, k)
    k_found = min(int(k), self.size)
    leaves = self._leaves_to_search(num_leaves_to_search)
    pre_reorder = self._pre_reorder(num_candidates, k_found)
    if queries.shape[0] == 0:
      return base.pad_results(
          np.zeros((0, 0), np.int64), np.zeros((0, 0), np.float32), int(k))
    if parallel is None:
      parallel = self.config.parallel_search
    search_fn = (self._searcher.search_batched_parallel if parallel else
                 self._searcher.search_batched)
    rows, scores = search_fn(
        queries,
        final_num_neighbors=k_found,
        pre_reorder_num_neighbors=pre_reorder,
        leaves_to_search=leaves)
    return self._to_external(rows, scores, int(k))

  def _leaves_to_search(self, override: Optional[int]) -> Optional[int]:
    if override is None:
      return None
    if self.config.num_leaves is None:
      raise ValueError(
          "num_leaves_to_search only applies to tree configs; this index has "
          "no tree (config.num_leaves is None).")
    if not 1 <= override <= self.config.num_leaves:
      raise ValueError(
          f"num_leaves_to_search must be in [1, {self.config.num_leaves}]; "
          f"got {override}.")
    return int(override)

  def _pre_reorder(self, override: Optional[int], k: int) -> Optional[int]:
    if self.config.reorder_num_neighbours is None:
      if override is not None:
        raise ValueError(
            "num_candidates only applies to configs with reordering; this "
            "index has reorder_num_neighbours=None.")
      return None
    pool = self.config.reorder_num_neighbours if override is None else override
    if pool <= 0:
      raise ValueError(f"num_candidates must be positive; got {pool}.")
    return int(max(pool, k))

  def _to_external(self, rows: np.ndarray, scores: np.ndarray,
                   k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Maps ScaNN rows to ids; ScaNN marks missing results with NaN scores."""
    rows = np.asarray(rows).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float32)
    missing = np.isnan(scores)
    ids = self._ids[np.where(missing, 0, rows)]
    ids[missing] = base.PAD_ID
    scores = np.where(missing, base.PAD_SCORE, scores).astype(np.float32)
    return base.pad_results(ids, scores, k)

  def to_tf_searcher(self, embeddings: np.ndarray) -> Any:
    """Builds the TF-op ScaNN searcher with this index's config.

    Args:
      embeddings: The same (n, d) rows, in the same order, given to `build`.

    Returns:
      A `scann.scann_ops.ScannSearcher` (a TF resource); its results are row
      numbers: map them with `self.ids`.

    Raises:
      ValueError: if `embeddings` does not match the index's shape.
    """
    self._check_built()
    embeddings = base.validate_embeddings(embeddings)
    if embeddings.shape != (self.size, self.dim):
      raise ValueError(
          f"embeddings have shape {embeddings.shape} but the index holds "
          f"({self.size}, {self.dim}): pass the rows given to build().")
    from scann.scann_ops.py import scann_ops  # pylint: disable=g-import-not-at-top
    builder = scann_ops.builder(embeddings, self.config.num_neighbours,
                                "dot_product")
    return self.config.configure(builder).build()

  def save(self, directory: str) -> None:
    """Writes the ScaNN assets, ids.npy and index_config.json.

    The ScaNN assets use relative paths, so the directory can be moved.
    """
    self._check_built()
    searcher_dir = os.path.join(directory, _SEARCHER_SUBDIR)
    os.makedirs(searcher_dir, exist_ok=True)
    self._searcher.serialize(searcher_dir, relative_path=True)
    np.save(os.path.join(directory, base.IDS_FILENAME), self._ids)
    base.write_metadata(
        directory, {
            "kind": self.KIND,
            "size": self.size,
            "dim": self.dim,
            "config": self.config.to_dict(),
        })

  @classmethod
  def load(cls, directory: str) -> "ScannIndex":
    """Restores an index written by `save`.

    Args:
      directory: The directory given to `save`.

    Returns:
      A built `ScannIndex` giving the same results as the saved one.

    Raises:
      FileNotFoundError: if `directory` is not a saved ScannIndex.
      ValueError: if it holds another kind of index or is inconsistent.
    """
    metadata = base.read_metadata(directory, expected_kind=cls.KIND)
    searcher_dir = os.path.join(directory, _SEARCHER_SUBDIR)
    if not os.path.isdir(searcher_dir):
      raise FileNotFoundError(
          f"{directory!r} has no {_SEARCHER_SUBDIR}/ folder of ScaNN assets: "
          f"the save was interrupted; save the index again.")
    index = cls(ScannConfig.from_dict(metadata["config"]))
    index._restore(  # pylint: disable=protected-access
        searcher=_pybind().load_searcher(searcher_dir),
        ids=base.load_ids(directory, metadata["size"]),
        dim=int(metadata["dim"]))
    return index

  def _restore(self, searcher: Any, ids: np.ndarray, dim: int) -> None:
    """Installs a loaded searcher after checking it matches `ids`."""
    if searcher.size() != ids.shape[0]:
      raise ValueError(
          f"The saved ScaNN searcher holds {searcher.size()} points but "
          f"ids.npy has {ids.shape[0]}: the directory is corrupt; save again.")
    self._searcher = searcher
    self._ids = ids
    self._dim = dim
