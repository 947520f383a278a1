"""Exact dot-product search: a TensorFlow matmul followed by `tf.math.top_k`.

This is the ground truth for ScaNN's recall and the default for small pools.
The database lives in one TF tensor (on the GPU when TensorFlow sees one);
queries are scored in batches by a `tf.function`, each batch small enough that
its (batch, n) score matrix stays under `max_score_bytes`.
"""

import os
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from mic_tf.indexes import base

_EMBEDDINGS_FILENAME = "embeddings.npy"


class BruteForceIndex(base.Index):
  """Exact maximum-inner-product search.

  Example:

    index = BruteForceIndex().build(item_embeddings, ids=item_ids)
    ids, scores = index.search(user_embeddings, k=50)

  Queries are processed `query_batch_size` at a time, lowered when needed so a
  batch's score matrix (batch x n float32) stays under `max_score_bytes`; for
  1M items and the default 512 MiB that is 128 queries per matmul. Ties are
  broken towards the lower row, as `tf.math.top_k` does.
  """

  KIND = "exact"

  def __init__(self,
               query_batch_size: int = 1024,
               max_score_bytes: int = 512 * 2**20):
    """Configures batching.

    Args:
      query_batch_size: Most queries scored by one matmul.
      max_score_bytes: Memory cap for one batch's (batch, n) float32 scores.

    Raises:
      ValueError: if either value is not positive.
    """
    super().__init__()
    if query_batch_size <= 0:
      raise ValueError(
          f"query_batch_size must be positive; got {query_batch_size}.")
    if max_score_bytes <= 0:
      raise ValueError(
          f"max_score_bytes must be positive; got {max_score_bytes}.")
    self._query_batch_size = int(query_batch_size)
    self._max_score_bytes = int(max_score_bytes)
    self._table: Optional[tf.Tensor] = None
    self._top_k_fn = None

  def build(self,
            embeddings: np.ndarray,
            ids: Optional[np.ndarray] = None) -> "BruteForceIndex":
    """See `base.Index.build`."""
    embeddings = base.validate_embeddings(embeddings)
    self._ids = base.validate_ids(ids, embeddings.shape[0])
    self._dim = embeddings.shape[1]
    # tf.identity places the copy on the default device (the GPU if present).
    self._table = tf.identity(tf.constant(embeddings))
    self._top_k_fn = self._make_top_k_fn(self._table)
    return self

  @staticmethod
  def _make_top_k_fn(table: tf.Tensor):
    """Returns a tf.function (queries, k) -> top_k over `table`."""

    @tf.function(input_signature=[
        tf.TensorSpec([None, table.shape[1]], tf.float32),
        tf.TensorSpec([], tf.int32),
    ])
    def top_k(queries, k):
      scores = tf.linalg.matmul(queries, table, transpose_b=True)
      return tf.math.top_k(scores, k=k, sorted=True)

    return top_k

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

  def search(self, queries: np.ndarray,
             k: int) -> Tuple[np.ndarray, np.ndarray]:
    """See `base.Index.search`."""
    self._check_built()
    queries = base.validate_queries(queries, self.dim, k)
    k_found = min(int(k), self.size)
    batch = self.batch_size
    rows, scores = [], []
    for start in range(0, queries.shape[0], batch):
      result = self._top_k_fn(queries[start:start + batch],
                              tf.constant(k_found, tf.int32))
      scores.append(result.values.numpy())
      rows.append(result.indices.numpy())
    if not rows:
      rows = [np.zeros((0, k_found), np.int32)]
      scores = [np.zeros((0, k_found), np.float32)]
    ids = self._ids[np.concatenate(rows, axis=0)]
    return base.pad_results(ids, np.concatenate(scores, axis=0), int(k))

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
