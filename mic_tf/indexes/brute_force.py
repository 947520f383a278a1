"""Exact dot-product search: a TensorFlow matmul followed by `tf.math.top_k`.

`exact_top_k` below is the one exact top-k of mic-tf: the ground truth for
ScaNN's recall, the default index of every channel, and the U2I evaluation
of training. The database lives in a `tf.Variable` (on the GPU when
TensorFlow sees one), so an index held by a `tf.Module` is saved with it.

The numpy path (`search`) runs the TF path (`tf_search`) batch by batch,
each batch small enough that its (batch, n) score matrix stays under
`max_score_bytes`; both therefore return the same lists.
"""

import functools
import os
from typing import Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from mic_tf.indexes import base

_EMBEDDINGS_FILENAME = "embeddings.npy"


def exact_top_k(queries: tf.Tensor, table: tf.Tensor,
                k: Union[int, tf.Tensor]):
  """The `k` rows of `table` with the highest dot product with each query.

  Args:
    queries: float32 `(q, d)`.
    table: float32 `(n, d)`.
    k: Rows per query, `<= n`.

  Returns:
    `tf.math.top_k`'s `(values, indices)`, `(q, k)`, best first; ties go to
    the lower row.
  """
  scores = tf.linalg.matmul(queries, table, transpose_b=True)
  return tf.math.top_k(scores, k=k, sorted=True)


def exact_top_k_streamed(queries: np.ndarray, database: np.ndarray, k: int,
                         block_rows: int = 65536) -> np.ndarray:
  """`exact_top_k` row ids over a database read in blocks of rows, numpy out.

  For a few thousand queries against a database too large to copy (ScaNN's
  calibration at millions of rows): each block of `block_rows` database
  rows is scored with `exact_top_k` and its best `k` merged into the
  running best, so no copy of the database and no (queries, n) score matrix
  is ever held. Ties go to the lower row, as in `exact_top_k`.

  Args:
    queries: float32 `(q, d)`.
    database: `(n, d)`; read one block at a time (a float32 array is never
      copied whole).
    k: Rows per query, `1 <= k <= n`.
    block_rows: Database rows per block.

  Returns:
    int64 `(q, k)` row ids, best first.
  """
  n = len(database)
  if not 1 <= k <= n:
    raise ValueError(f"k must be in [1, {n}], got {k}.")
  queries = tf.constant(np.asarray(queries, np.float32))
  best_scores = np.zeros((queries.shape[0], 0), np.float32)
  best_rows = np.zeros((queries.shape[0], 0), np.int64)
  for lo in range(0, n, block_rows):
    block = np.asarray(database[lo:lo + block_rows], np.float32)
    top = exact_top_k(queries, tf.constant(block), min(k, len(block)))
    scores = np.concatenate([best_scores, top.values.numpy()], axis=1)
    rows = np.concatenate([best_rows, top.indices.numpy() + lo], axis=1)
    # Best score first, lower row first among equal scores.
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    best_scores = np.take_along_axis(scores, order, axis=1)
    best_rows = np.take_along_axis(rows, order, axis=1)
  return best_rows


def _chunked_top_k(queries: tf.Tensor, table: tf.Tensor,
                   k: Union[int, tf.Tensor],
                   rows: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """`exact_top_k` over blocks of at most `rows` queries, one at a time.

  Keeps the (queries, n) score matrix of a large query batch (e.g. I2I's
  sources of hundreds of users) within the index's memory cap, in the graph
  as well, so a SavedModel is bounded too. A batch of at most `rows`
  queries (serving) is scored in one matmul, unpadded.
  """
  count = tf.shape(queries)[0]

  def one_block(block):
    top = exact_top_k(block, table, k)
    return top.values, top.indices

  def blocks():
    num_blocks = (count + rows - 1) // rows
    padded = tf.pad(queries, [[0, num_blocks * rows - count], [0, 0]])
    values, indices = tf.map_fn(
        one_block, tf.reshape(padded, [num_blocks, rows, -1]),
        fn_output_signature=(tf.float32, tf.int32), parallel_iterations=1)
    return (tf.reshape(values, [num_blocks * rows, -1])[:count],
            tf.reshape(indices, [num_blocks * rows, -1])[:count])

  return tf.cond(count <= rows, lambda: one_block(queries), blocks)


class BruteForceIndex(base.Index):
  """Exact maximum-inner-product search.

  Example:

    index = BruteForceIndex().build(item_embeddings, ids=item_ids)
    ids, scores = index.search(user_embeddings, k=50)

  Queries are processed `query_batch_size` at a time, lowered when needed so a
  batch's score matrix (batch x n float32) stays under `max_score_bytes`; for
  1M items and the default 512 MiB that is 128 queries per matmul. The TF
  path (`tf_search`, hence SavedModels) keeps the same cap: a larger query
  batch is scored block by block in the graph. Ties are
  broken towards the lower row, as `tf.math.top_k` does.
  """

  KIND = "exact"

  def __init__(self,
               query_batch_size: int = 4096,
               max_score_bytes: int = 512 * 2**20,
               name: Optional[str] = None):
    """Configures batching.

    Args:
      query_batch_size: Most queries scored by one matmul (numpy path).
      max_score_bytes: Memory cap for one batch's (batch, n) float32 scores.
      name: Module name.

    Raises:
      ValueError: if either value is not positive.
    """
    super().__init__(name=name)
    if query_batch_size <= 0:
      raise ValueError(
          f"query_batch_size must be positive; got {query_batch_size}.")
    if max_score_bytes <= 0:
      raise ValueError(
          f"max_score_bytes must be positive; got {max_score_bytes}.")
    self._query_batch_size = int(query_batch_size)
    self._max_score_bytes = int(max_score_bytes)
    self._table: Optional[tf.Variable] = None
    self._numpy_path = base.Untracked()

  def build(self,
            embeddings: np.ndarray,
            ids: Optional[np.ndarray] = None) -> "BruteForceIndex":
    """See `base.Index.build`."""
    embeddings = base.validate_embeddings(embeddings)
    ids = base.validate_ids(ids, embeddings.shape[0])
    self._table = tf.Variable(embeddings, trainable=False, name="vectors")
    self._set_ids(ids, embeddings.shape[1])
    # A partial: TF's retracing warning would count every index's trace.
    self._numpy_path.search = tf.function(
        functools.partial(self.tf_search), autograph=False,
        input_signature=[tf.TensorSpec([None, self.dim], tf.float32),
                         tf.TensorSpec([], tf.int32)])
    return self

  @property
  def batch_size(self) -> int:
    """Queries per matmul for this index's size (after the memory cap)."""
    self._check_built()
    by_memory = self._max_score_bytes // (4 * self.size)
    return int(max(1, min(self._query_batch_size, by_memory)))

  @property
  def embeddings(self) -> np.ndarray:
    """The indexed (n, d) float32 matrix (a host copy)."""
    self._check_built()
    return self._table.numpy()

  def tf_search(self, queries: tf.Tensor,
                k: Union[int, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor]:
    """See `base.Index.tf_search`."""
    self._check_built()
    k_found = tf.minimum(k, self.size)
    values, rows = _chunked_top_k(tf.cast(queries, tf.float32), self._table,
                                  k_found, self.batch_size)
    ids = self._rows_to_ids(rows, tf.ones_like(rows, tf.bool))
    return base.pad_to_k(ids, values, k)

  def search_op(self, queries: tf.Tensor, k: Union[int, tf.Tensor],
                numpy: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
    """`tf_search`, whatever `numpy` says: the numpy path runs these very
    ops batch by batch, and running them in the graph avoids calling
    TensorFlow from inside a `tf.numpy_function` (which can deadlock when
    several such calls wait for the same few inter-op threads)."""
    del numpy
    return self.tf_search(queries, k)

  def search(self, queries: np.ndarray,
             k: int) -> Tuple[np.ndarray, np.ndarray]:
    """See `base.Index.search`: `tf_search` over batches of queries."""
    self._check_built()
    queries = base.validate_queries(queries, self.dim, k)
    batch = self.batch_size
    ids, scores = [], []
    for start in range(0, queries.shape[0], batch):
      out = self._numpy_path.search(queries[start:start + batch],
                            tf.constant(int(k), tf.int32))
      ids.append(out[0].numpy())
      scores.append(out[1].numpy())
    if not ids:
      return (np.zeros((0, int(k)), np.int64),
              np.zeros((0, int(k)), np.float32))
    return np.concatenate(ids), np.concatenate(scores)

  def save(self, directory: str) -> None:
    """Writes embeddings.npy, ids.npy and index_config.json to `directory`."""
    self._check_built()
    base.write_metadata(
        directory, {
            "kind": self.KIND,
            "size": self.size,
            "dim": self.dim,
            "query_batch_size": self._query_batch_size,
            "max_score_bytes": self._max_score_bytes,
        })
    np.save(os.path.join(directory, _EMBEDDINGS_FILENAME), self.embeddings)
    np.save(os.path.join(directory, base.IDS_FILENAME), self._ids)

  @classmethod
  def load(cls, directory: str) -> "BruteForceIndex":
    """Reads an index written by `save`.

    Args:
      directory: The directory given to `save`.

    Returns:
      A built `BruteForceIndex` with the saved batching settings.

    Raises:
      FileNotFoundError: if `directory` is not a saved index.
      ValueError: if it holds another kind of index or is inconsistent.
    """
    metadata = base.read_metadata(directory, expected_kind=cls.KIND)
    embeddings = np.load(os.path.join(directory, _EMBEDDINGS_FILENAME))
    if embeddings.shape != (metadata["size"], metadata["dim"]):
      raise ValueError(
          f"{_EMBEDDINGS_FILENAME} in {directory!r} has shape "
          f"{embeddings.shape}, metadata says ({metadata['size']}, "
          f"{metadata['dim']}): the directory is corrupt; save again.")
    ids = base.load_ids(directory, metadata["size"])
    index = cls(query_batch_size=metadata["query_batch_size"],
                max_score_bytes=metadata["max_score_bytes"])
    return index.build(embeddings, ids=ids)
