"""Approximate dot-product search with ScaNN: a pybind path and a TF-op path.

`ScannIndex` trains one ScaNN searcher with the numpy (pybind) builder and
serves it two ways:

* `search` (numpy path): ScaNN's pybind searcher, for offline batch work.
* `tf_search` (TF path): ScaNN's TensorFlow ops over the *same* trained
  state (tree, codebooks, hashed database), read from the pybind searcher's
  serialised assets into `tf.Variable`s, so a `tf.Module` holding the index
  saves it in its SavedModel. Both paths run the same C++ search on the same
  state, so they return the same lists.

External ids, (-1, -inf) padding and the input checks are `base.Index`'s;
`ScannIndex.save` / `load` restore the pybind searcher bit for bit.
SavedModels holding the TF path need `import scann` before
`tf.saved_model.load` (it registers the ops).
"""

import dataclasses
import os
import tempfile
import uuid
from typing import Any, Dict, Optional, Tuple, Union

from absl import logging
import numpy as np
import tensorflow as tf

from mic_tf.indexes import base
from mic_tf.indexes.brute_force import exact_top_k_streamed
from mic_tf.indexes.config import ScannConfig

#: Database vectors searched as queries by `ScannIndex.calibrate`.
CALIBRATION_QUERIES = 1000

_SEARCHER_SUBDIR = "scann"
#: The TF op's inputs, in its order: (asset file, dtype, 1-element string).
_TF_ASSETS = (
    ("dataset.npy", np.float32, False),
    ("scann_config.pb", None, True),
    ("serialized_partitioner.pb", None, True),
    ("datapoint_to_token.npy", np.int32, False),
    ("ah_codebook.pb", None, True),
    ("hashed_dataset.npy", np.uint8, False),
    ("int8_dataset.npy", np.int8, False),
    ("int8_multipliers.npy", np.float32, False),
    ("dp_norms.npy", np.float32, False),
)


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


def _tf_ops():
  """Imports ScaNN's TensorFlow ops (registers them with TensorFlow)."""
  try:
    from scann.scann_ops.py import scann_ops  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "ScaNN's TF ops need the `scann` package: `pip install scann==1.4.2`, "
        "or use an exact index.") from e
  return scann_ops


class _TFState(tf.Module):
  """The trained searcher as variables: the inputs of ScaNN's TF op."""

  def __init__(self, assets_dir: str):
    super().__init__(name="scann_state")
    self.tensors = []
    for filename, dtype, is_proto in _TF_ASSETS:
      path = os.path.join(assets_dir, filename)
      if is_proto:
        value = b""
        if os.path.isfile(path):
          with open(path, "rb") as f:
            value = f.read()
        value = np.array([value], dtype=object)
      else:
        value = np.load(path) if os.path.isfile(path) else np.zeros((), dtype)
      self.tensors.append(tf.Variable(value, trainable=False,
                                      name=filename.split(".")[0]))
    # ScaNN's own TF searchers get an empty shared_name after loading, so two
    # of them in one SavedModel would share one resource. A unique name keeps
    # them apart (and lets the kernel build each searcher once per process).
    self.shared_name = f"mic_tf_scann_{uuid.uuid4().hex}"

  def handle(self) -> tf.Tensor:
    return _tf_ops().tensors_to_scann(*self.tensors,
                                      shared_name=self.shared_name)


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
               default_k: int = 10, name: Optional[str] = None):
    """Stores the config; nothing is trained until `build`.

    Args:
      config: How to partition/score/reorder; None = `ScannConfig.auto`.
      default_k: k passed to `ScannConfig.auto` when `config` is None.
      name: Module name.
    """
    super().__init__(name=name)
    if config is not None and not isinstance(config, ScannConfig):
      raise TypeError(
          f"config must be a ScannConfig, got {type(config).__name__}; build "
          f"one with ScannConfig.auto(n, k).")
    self._config = config
    self._default_k = default_k
    self._pybind = base.Untracked()
    self._pybind.searcher = None
    self._pybind.calibration = None
    self._tf_state: Optional[_TFState] = None

  @property
  def config(self) -> ScannConfig:
    """The config in use (resolved by `auto` after `build` if it was None)."""
    if self._config is None:
      raise RuntimeError(
          "ScannIndex(config=None) picks its config when build() sees the "
          "database size; call build() first.")
    return self._config

  @property
  def calibration(self) -> Optional[Dict[str, Any]]:
    """What `calibrate` measured and chose (None if it has not run)."""
    return self._pybind.calibration

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
    self._pybind.searcher = self._config.configure(builder).build()
    self._set_ids(ids, embeddings.shape[1])
    self._tf_state = None
    self._pybind.calibration = None
    if self._config.target_recall is not None:
      self.calibrate(embeddings, self._config.target_recall)
    return self

  def calibrate(self, embeddings: np.ndarray, target_recall: float,
                num_queries: int = CALIBRATION_QUERIES,
                seed: int = 0) -> Dict[str, Any]:
    """Widens the query-time search until recall@k reaches `target_recall`.

    Queries are `num_queries` rows of the database drawn with `seed`; each
    query's own row is dropped from both lists, so recall counts its `k`
    nearest *other* points (k = `config.num_neighbours`). Each round tries
    doubling the leaves searched and doubling the reorder pool and keeps
    the one with the higher recall, until the target is met or both are
    exhausted (every leaf, a pool of every point); a target that cannot be
    met is logged, never hidden. The chosen knobs replace the config's
    (`num_leaves_to_search`, `reorder_num_neighbours`), so `save` keeps
    them and both search paths use them.

    Args:
      embeddings: The database given to `build` (same rows).
      target_recall: In (0, 1].
      num_queries: Sample size (clipped to the database size).
      seed: Sample seed.

    Returns:
      `self.calibration`: the recall before and after, the knobs chosen and
      the sample size.
    """
    config = self.config
    n = self.size
    k = min(config.num_neighbours, n - 1)
    leaves, pool = config.num_leaves_to_search, config.reorder_num_neighbours
    if k < 1 or config.is_exact:
      self._pybind.calibration = {"target": target_recall, "recall": 1.0,
                                  "initial_recall": 1.0, "queries": 0}
      return self.calibration
    rows = np.sort(np.random.default_rng(seed).choice(
        n, size=min(num_queries, n), replace=False))
    queries = np.asarray(embeddings, np.float32)[rows]
    # Streams the database in blocks: no second copy of millions of rows.
    truth = _without_self(
        exact_top_k_streamed(queries, base.validate_embeddings(embeddings),
                             k + 1), rows, k)

    def recall(num_leaves, num_candidates):
      found, _ = self._pybind.searcher.search_batched(
          queries, final_num_neighbors=k + 1,
          pre_reorder_num_neighbors=(None if num_candidates is None else
                                     max(num_candidates, k + 1)),
          leaves_to_search=num_leaves)
      found = _without_self(np.asarray(found, np.int64), rows, k)
      hits = [np.intersect1d(a, t).size for a, t in zip(found, truth)]
      return float(np.sum(hits)) / truth.size

    initial = best = recall(leaves, pool)
    while best < target_recall:
      options = []
      if leaves is not None and leaves < config.num_leaves:
        wider = min(config.num_leaves, 2 * leaves)
        options.append((recall(wider, pool), wider, pool))
      if pool is not None and pool < n:
        larger = min(n, 2 * pool)
        options.append((recall(leaves, larger), leaves, larger))
      if not options:
        logging.warning(
            "ScaNN calibration: recall@%d %.4f < target %.4f with every leaf "
            "and the largest reorder pool this config allows (reordering "
            "must be built in: with_reorder); use an exact index for this "
            "database.", k, best, target_recall)
        break
      best, leaves, pool = max(options, key=lambda o: o[0])
    self._config = dataclasses.replace(
        config, num_leaves_to_search=leaves, reorder_num_neighbours=pool)
    self._pybind.calibration = {"target": target_recall, "recall": best,
                                "initial_recall": initial,
                                "queries": len(rows),
                                "num_leaves_to_search": leaves,
                                "reorder_num_neighbours": pool}
    return self.calibration

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
    searcher = self._pybind.searcher
    search_fn = (searcher.search_batched_parallel if parallel else
                 searcher.search_batched)
    rows, scores = search_fn(
        queries,
        final_num_neighbors=k_found,
        pre_reorder_num_neighbors=pre_reorder,
        leaves_to_search=leaves)
    return self._to_external(rows, scores, int(k))

  def _leaves_to_search(self, override: Optional[int]) -> Optional[int]:
    if override is None:
      # Explicit, so a calibrated value wins over the one built in.
      return self.config.num_leaves_to_search
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

  def prepare_tf(self) -> "ScannIndex":
    """Creates the TF path's state (call it eagerly, before any tracing).

    The trained searcher is serialised and read back into variables; this
    doubles its memory, so the numpy path alone never pays for it.
    """
    self._check_built()
    if self._tf_state is None:
      with tempfile.TemporaryDirectory() as directory:
        self._pybind.searcher.serialize(directory, relative_path=True)
        self._tf_state = _TFState(directory)
    return self

  def tf_search(self, queries: tf.Tensor,
                k: Union[int, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """See `base.Index.tf_search`; ScaNN's TF op on the shared state.

    Raises:
      RuntimeError: if called while tracing before `prepare_tf`.
    """
    self._check_built()
    if self._tf_state is None:
      if not tf.executing_eagerly():
        raise RuntimeError(
            "ScannIndex.tf_search was traced before its TF state existed: "
            "call index.prepare_tf() eagerly first (channels do it).")
      self.prepare_tf()
    k_found = tf.minimum(k, self.size)
    pre = -1
    if self.config.reorder_num_neighbours is not None:
      pre = tf.maximum(self.config.reorder_num_neighbours, k_found)
    leaves = self.config.num_leaves_to_search
    rows, scores = _tf_ops().scann_search_batched(
        self._tf_state.handle(), tf.cast(queries, tf.float32), k_found, pre,
        -1 if leaves is None else leaves, self.config.parallel_search)
    found = (rows >= 0) & (rows < self.size) & ~tf.math.is_nan(scores)
    ids = self._rows_to_ids(rows, found)
    scores = tf.where(found, scores, base.PAD_SCORE)
    return base.pad_to_k(ids, scores, k)

  def save(self, directory: str) -> None:
    """Writes the ScaNN assets, ids.npy and index_config.json.

    The ScaNN assets use relative paths, so the directory can be moved.
    """
    self._check_built()
    searcher_dir = os.path.join(directory, _SEARCHER_SUBDIR)
    os.makedirs(searcher_dir, exist_ok=True)
    self._pybind.searcher.serialize(searcher_dir, relative_path=True)
    np.save(os.path.join(directory, base.IDS_FILENAME), self._ids)
    base.write_metadata(
        directory, {
            "kind": self.KIND,
            "size": self.size,
            "dim": self.dim,
            "config": self.config.to_dict(),
            "calibration": self.calibration,
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
    index._pybind.calibration = metadata.get("calibration")  # pylint: disable=protected-access
    return index

  def _restore(self, searcher: Any, ids: np.ndarray, dim: int) -> None:
    """Installs a loaded searcher after checking it matches `ids`."""
    if searcher.size() != ids.shape[0]:
      raise ValueError(
          f"The saved ScaNN searcher holds {searcher.size()} points but "
          f"ids.npy has {ids.shape[0]}: the directory is corrupt; save again.")
    self._pybind.searcher = searcher
    self._set_ids(ids, dim)
    self._tf_state = None
    self._pybind.calibration = None


def _without_self(found: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
  """Each row's first `k` results other than the query's own row."""
  keep = found != rows[:, np.newaxis]
  order = np.argsort(~keep, axis=1, kind="stable")
  return np.take_along_axis(found, order, axis=1)[:, :k]
