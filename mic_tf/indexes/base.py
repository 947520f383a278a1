"""The nearest-neighbour `Index` contract shared by every retrieval channel.

MIC's inference (paper section 3.7) runs three maximum-inner-product searches:
user -> items (U2I), user -> similar users (U2U) and item -> similar items (I2I).
Each is served by an `Index` over one embedding table. An index maps row
numbers to *external* ids (item ids, user rows) given at build time, scores by
dot product and returns the best `k` per query, best first.

Every index has two search paths over one built state:

* `search(queries, k)`: numpy in, numpy out, for offline batch work
  (evaluation, tuning, mining, benchmarks).
* `tf_search(queries, k)`: TensorFlow ops, traceable inside a `tf.function`,
  so an index saved as part of a `tf.Module` serves from a SavedModel.

Both return the same lists (tests/indexes check it). An `Index` is a
`tf.Module`, so the state the TF path needs is saved with the module that
holds it.

This module holds the class, the input checks every implementation shares,
the on-disk metadata file and `recall_against_exact`.
"""

import json
import os
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from mic_tf import names

# Sentinels used when fewer than `k` results exist.
PAD_ID = names.PAD_ID
PAD_SCORE = names.NEG_INF

METADATA_FILENAME = "index_config.json"
IDS_FILENAME = "ids.npy"


class Index(tf.Module):
  """A dot-product nearest-neighbour index over `(n, d)` embeddings.

  Usage:

    index = SomeIndex(...).build(item_embeddings, ids=item_ids)
    ids, scores = index.search(user_embeddings, k=50)        # numpy path
    ids, scores = index.tf_search(tf.constant(users), k=50)  # TF path
    index.save("/tmp/items")
    same = SomeIndex.load("/tmp/items")

  Both searches return `(ids, scores)` with shapes `(q, k)`, dtypes int64 and
  float32, sorted by descending dot product. When the index holds fewer than
  `k` rows (or an approximate index finds fewer), the tail is padded with id
  `PAD_ID` (-1) and score `-inf`.
  """

  #: Value written under "kind" in the metadata file; set by subclasses.
  KIND: str = ""

  def __init__(self, name: Optional[str] = None):
    super().__init__(name=name)
    self._ids: Optional[np.ndarray] = None
    self._dim: Optional[int] = None
    self._id_table: Optional[tf.Variable] = None

  def build(self,
            embeddings: np.ndarray,
            ids: Optional[np.ndarray] = None) -> "Index":
    """Indexes `embeddings` (n, d); row i is returned as `ids[i]`.

    Args:
      embeddings: Float array of shape (n, d), n >= 1, all values finite.
      ids: Optional int array of shape (n,) with unique non-negative external
        ids. Defaults to `np.arange(n)`.

    Returns:
      `self`, so that `Index(...).build(x)` can be chained.

    Raises:
      ValueError: on empty, non-2-D or non-finite embeddings, or bad ids.
    """
    raise NotImplementedError

  def search(self, queries: np.ndarray,
             k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Returns the `k` highest dot-product rows for each query (numpy path).

    Args:
      queries: Float array of shape (q, d) with the index's `d`.
      k: Number of neighbours, >= 1.

    Returns:
      `(ids, scores)`: int64 and float32 arrays of shape (q, k), best first,
      padded with (-1, -inf) where fewer than `k` results exist.

    Raises:
      RuntimeError: if the index was not built or loaded.
      ValueError: on bad `k`, wrong dimension or non-finite queries.
    """
    raise NotImplementedError

  def tf_search(self, queries: tf.Tensor,
                k: Union[int, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """The same search in TensorFlow ops (inside a `tf.function` too).

    Args:
      queries: float32 `(q, d)` tensor.
      k: Number of neighbours: a positive Python int or an int32 scalar.

    Returns:
      `(ids, scores)`: int64 / float32 `(q, k)` tensors, as `search`.
    """
    raise NotImplementedError

  def search_op(self, queries: tf.Tensor, k: Union[int, tf.Tensor],
                numpy: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """`tf_search`, or the numpy path wrapped as an op (`numpy=True`).

    The numpy path runs through `tf.numpy_function`, so code written once
    in TensorFlow (the channels) searches with either path; the numpy one
    cannot be saved in a SavedModel. The numpy path must not run
    TensorFlow itself (see `BruteForceIndex.search_op`).
    """
    if not numpy:
      return self.tf_search(queries, k)
    ids, scores = tf.numpy_function(
        lambda q, n: self.search(q, int(n)),
        [tf.cast(queries, tf.float32), tf.cast(k, tf.int32)],
        [tf.int64, tf.float32], stateful=False)
    width = k if isinstance(k, int) else None
    ids.set_shape([queries.shape[0], width])
    scores.set_shape([queries.shape[0], width])
    return ids, scores

  def save(self, directory: str) -> None:
    """Writes the index to `directory` (created if missing)."""
    raise NotImplementedError

  @classmethod
  def load(cls, directory: str) -> "Index":
    """Reads an index written by `save`."""
    raise NotImplementedError

  @property
  def is_built(self) -> bool:
    """Whether `build` or `load` has run."""
    return self._ids is not None

  @property
  def size(self) -> int:
    """Number of indexed rows."""
    self._check_built()
    return int(self._ids.shape[0])

  @property
  def dim(self) -> int:
    """Embedding dimension."""
    self._check_built()
    return int(self._dim)

  @property
  def ids(self) -> np.ndarray:
    """External ids, one per indexed row (int64, shape (n,))."""
    self._check_built()
    return self._ids

  def _set_ids(self, ids: np.ndarray, dim: int) -> None:
    self._ids = ids
    self._dim = int(dim)
    self._id_table = tf.Variable(ids, trainable=False, name="ids")

  def _rows_to_ids(self, rows: tf.Tensor, found: tf.Tensor) -> tf.Tensor:
    """External ids of row numbers; `PAD_ID` where `found` is False."""
    rows = tf.cast(rows, tf.int64)
    ids = tf.gather(self._id_table, tf.where(found, rows, 0))
    return tf.where(found, ids, tf.constant(PAD_ID, tf.int64))

  def _check_built(self) -> None:
    if self._ids is None:
      raise RuntimeError(
          f"{type(self).__name__} is empty: call build(embeddings) or "
          f"{type(self).__name__}.load(directory) before using it.")


class Untracked:
  """A plain holder: what it holds (e.g. a `tf.function` of the numpy path)
  is not tracked by the `tf.Module` that holds it, so it is not saved."""


def pad_to_k(ids: tf.Tensor, scores: tf.Tensor,
             k: Union[int, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
  """Right-pads `(q, m)` results, `m <= k`, to `(q, k)` with (-1, -inf)."""
  missing = k - tf.shape(ids)[1]
  ids = tf.pad(tf.cast(ids, tf.int64), [[0, 0], [0, missing]],
               constant_values=PAD_ID)
  scores = tf.pad(tf.cast(scores, tf.float32), [[0, 0], [0, missing]],
                  constant_values=PAD_SCORE)
  rows = tf.shape(ids)[0]
  return tf.reshape(ids, [rows, k]), tf.reshape(scores, [rows, k])


def check_k(k: Any) -> int:
  """`k` as an int; raises a clear error unless it is a positive integer."""
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
    raise ValueError(f"k must be a positive integer; got {k!r}.")
  return int(k)


def validate_embeddings(embeddings: Any) -> np.ndarray:
  """Checks a database matrix and returns it as C-contiguous float32.

  Args:
    embeddings: Array-like of shape (n, d).

  Returns:
    A float32 C-contiguous copy or view of `embeddings`.

  Raises:
    ValueError: if it is not 2-D, has no rows or columns, or has NaN/inf.
  """
  array = np.asarray(embeddings)
  if array.ndim != 2:
    raise ValueError(
        f"embeddings must be a 2-D array (num_rows, dim); got shape "
        f"{array.shape}. Stack the vectors into one matrix.")
  if array.shape[0] == 0:
    raise ValueError(
        "Cannot build an index over an empty database (0 rows): pass at "
        "least one embedding.")
  if array.shape[1] == 0:
    raise ValueError("embeddings have dimension 0: pass vectors with d >= 1.")
  array = np.ascontiguousarray(array, dtype=np.float32)
  _check_finite(array, "embeddings")
  return array


def validate_ids(ids: Optional[Any], num_rows: int) -> np.ndarray:
  """Checks the row -> external id map and returns it as int64.

  Args:
    ids: None (meaning `arange(num_rows)`) or an integer array (num_rows,).
    num_rows: Number of database rows.

  Returns:
    An int64 array of shape (num_rows,).

  Raises:
    ValueError: on wrong shape, non-integer dtype, negative or duplicate ids.
  """
  if ids is None:
    return np.arange(num_rows, dtype=np.int64)
  array = np.asarray(ids)
  if array.shape != (num_rows,):
    raise ValueError(
        f"ids must have shape ({num_rows},), one id per embedding row; got "
        f"{array.shape}.")
  if not np.issubdtype(array.dtype, np.integer):
    raise ValueError(
        f"ids must be integers; got dtype {array.dtype}. Cast them with "
        f"ids.astype(np.int64).")
  array = array.astype(np.int64)
  if num_rows and array.min() < 0:
    raise ValueError(
        f"ids must be non-negative (-1 marks padding in search results); got "
        f"min id {array.min()}.")
  if np.unique(array).shape[0] != num_rows:
    raise ValueError(
        "ids must be unique: two rows share an external id. Deduplicate the "
        "embedding table before building the index.")
  return array


def validate_queries(queries: Any, dim: int, k: int) -> np.ndarray:
  """Checks a query batch and `k`; returns the queries as float32.

  Args:
    queries: Array-like of shape (q, dim).
    dim: The index's embedding dimension.
    k: Requested number of neighbours.

  Returns:
    A float32 C-contiguous array of shape (q, dim).

  Raises:
    ValueError: on bad `k`, wrong rank or dimension, or NaN/inf values.
  """
  check_k(k)
  array = np.asarray(queries)
  if array.ndim != 2:
    raise ValueError(
        f"queries must be a 2-D array (num_queries, dim); got shape "
        f"{array.shape}. For one query use queries[None, :].")
  if array.shape[1] != dim:
    raise ValueError(
        f"Query dimension {array.shape[1]} does not match the index "
        f"dimension {dim}: queries and the indexed embeddings must come from "
        f"towers with the same output size.")
  array = np.ascontiguousarray(array, dtype=np.float32)
  _check_finite(array, "queries")
  return array


def _check_finite(array: np.ndarray, name: str) -> None:
  finite = np.isfinite(array)
  if not finite.all():
    bad_row = int(np.argwhere(~finite.all(axis=1))[0, 0])
    raise ValueError(
        f"{name} contain NaN or inf (first bad row: {bad_row}). Check the "
        f"tower outputs (e.g. a zero vector normalised) before indexing.")


def pad_results(ids: np.ndarray, scores: np.ndarray,
                k: int) -> Tuple[np.ndarray, np.ndarray]:
  """Right-pads (q, m) results to (q, k) with (PAD_ID, PAD_SCORE).

  Args:
    ids: int array of shape (q, m), m <= k.
    scores: float array of shape (q, m).
    k: Target width.

  Returns:
    `(ids, scores)` as int64 / float32 arrays of shape (q, k).
  """
  ids = np.asarray(ids, dtype=np.int64)
  scores = np.asarray(scores, dtype=np.float32)
  missing = k - ids.shape[1]
  if missing <= 0:
    return ids, scores
  num_queries = ids.shape[0]
  ids = np.concatenate(
      [ids, np.full((num_queries, missing), PAD_ID, np.int64)], axis=1)
  scores = np.concatenate(
      [scores, np.full((num_queries, missing), PAD_SCORE, np.float32)], axis=1)
  return ids, scores


def write_metadata(directory: str, metadata: Dict[str, Any]) -> None:
  """Writes `metadata` (must include "kind") as JSON into `directory`."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, METADATA_FILENAME), "w") as f:
    json.dump(metadata, f, indent=2, sort_keys=True)


def read_metadata(directory: str,
                  expected_kind: Optional[str] = None) -> Dict[str, Any]:
  """Reads the metadata JSON written by `write_metadata`.

  Args:
    directory: An index directory.
    expected_kind: If given, the "kind" the file must declare.

  Returns:
    The decoded metadata dict.

  Raises:
    FileNotFoundError: if `directory` holds no metadata file.
    ValueError: if the stored kind differs from `expected_kind`.
  """
  path = os.path.join(directory, METADATA_FILENAME)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"No {METADATA_FILENAME} in {directory!r}: it is not a saved mic_tf "
        f"index. Pass the directory given to Index.save().")
  with open(path) as f:
    metadata = json.load(f)
  kind = metadata.get("kind")
  if expected_kind is not None and kind != expected_kind:
    raise ValueError(
        f"{directory!r} holds a {kind!r} index, not {expected_kind!r}: load "
        f"it with mic_tf.indexes.load_index(directory) instead.")
  return metadata


def load_ids(directory: str, size: int) -> np.ndarray:
  """Loads and checks the saved row -> external id map."""
  ids = np.load(os.path.join(directory, IDS_FILENAME))
  if ids.shape != (size,):
    raise ValueError(
        f"{IDS_FILENAME} in {directory!r} has shape {ids.shape} but the "
        f"metadata says {size} rows: the directory is corrupt; save again.")
  return ids.astype(np.int64)


def recall_against_exact(approx_ids: np.ndarray,
                         exact_ids: np.ndarray) -> float:
  """Fraction of the exact top-k that the approximate search also returned.

  Averaged over queries: for each row, |approx ∩ exact| / |exact|, ignoring
  padding ids (-1) in `exact_ids`. Rows whose exact list is all padding are
  skipped. This is ScaNN's usual "recall@k" with k = exact_ids.shape[1].

  Args:
    approx_ids: int array (q, k_approx) of approximate results.
    exact_ids: int array (q, k) of exact results for the same queries.

  Returns:
    Mean recall in [0, 1]; 1.0 if no query has any exact result.

  Raises:
    ValueError: if the arrays are not 2-D or have different numbers of rows.
  """
  approx_ids = np.asarray(approx_ids)
  exact_ids = np.asarray(exact_ids)
  if approx_ids.ndim != 2 or exact_ids.ndim != 2:
    raise ValueError(
        f"approx_ids and exact_ids must be 2-D (num_queries, k); got shapes "
        f"{approx_ids.shape} and {exact_ids.shape}.")
  if approx_ids.shape[0] != exact_ids.shape[0]:
    raise ValueError(
        f"approx_ids has {approx_ids.shape[0]} queries but exact_ids has "
        f"{exact_ids.shape[0]}: pass results for the same query batch.")
  recalls = []
  for approx_row, exact_row in zip(approx_ids, exact_ids):
    truth = exact_row[exact_row != PAD_ID]
    if truth.size == 0:
      continue
    found = np.isin(truth, approx_row[approx_row != PAD_ID])
    recalls.append(found.mean())
  if not recalls:
    return 1.0
  return float(np.mean(recalls))
