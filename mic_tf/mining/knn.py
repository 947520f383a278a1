"""k nearest neighbours of every row of a pool, through ``mic_tf.indexes``.

Vectors are L2-normalised, so the indexes' dot product is cosine similarity.
Results are *row numbers* of the database (the memory banks store rows and
map them to user / item ids themselves).
"""

from typing import Optional

import numpy as np

from mic_tf import indexes
from mic_tf import names


def nearest_neighbours(queries: np.ndarray, database: np.ndarray, k: int,
                       query_rows: Optional[np.ndarray] = None,
                       index: str = "exact") -> np.ndarray:
  """The ``k`` database rows of highest dot product with each query.

  Args:
    queries: ``(q, d)`` float vectors.
    database: ``(n, d)`` float vectors.
    k: Neighbours per query.
    query_rows: For a self-search (queries are database rows), the database
      row of each query; that row is never returned as its own neighbour
      (nor is any padding). None: nothing is excluded.
    index: ``"exact"``, ``"scann"`` or ``"auto"`` (see
      ``mic_tf.indexes.make_index``).

  Returns:
    ``(q, k)`` int32 database rows, best first. If an approximate index
    finds fewer than ``k`` valid rows for a query, the row is completed by
    repeating its best neighbour.

  Raises:
    ValueError: If the database has too few rows for ``k`` neighbours, or on
      an unknown index kind.
    RuntimeError: If the index returns no valid neighbour for some query.
  """
  if index not in names.INDEX_CHOICES:
    raise ValueError(f"index must be one of {names.INDEX_CHOICES}, got {index!r}.")
  database = np.asarray(database, np.float32)
  queries = np.asarray(queries, np.float32)
  n = database.shape[0]
  extra = 0 if query_rows is None else 1
  if k + extra > n:
    raise ValueError(
        f"Asked for {k} neighbours in a pool of {n} rows"
        f"{' (excluding each row itself)' if extra else ''}: lower "
        "num_neighbours to at most "
        f"{n - extra}.")
  searcher = indexes.make_index(index, database, k=k + extra)
  rows, _ = searcher.search(queries, k + extra)
  valid = rows != indexes.PAD_ID
  if query_rows is not None:
    query_rows = np.asarray(query_rows, np.int64).reshape(-1, 1)
    valid &= rows != query_rows
  return _first_valid(rows, valid, k)


def _first_valid(rows: np.ndarray, valid: np.ndarray, k: int) -> np.ndarray:
  """The first ``k`` valid entries of each row, order kept, padded."""
  if not valid.any(axis=1).all():
    bad = int(np.nonzero(~valid.any(axis=1))[0][0])
    raise RuntimeError(
        f"The index found no neighbour for query {bad}; use index='exact' or "
        "a ScannConfig with more leaves searched.")
  # Stable sort puts valid entries first, in their original (best-first) order.
  order = np.argsort(~valid, axis=1, kind="stable")[:, :k]
  picked = np.take_along_axis(rows, order, axis=1)
  ok = np.take_along_axis(valid, order, axis=1)
  picked = np.where(ok, picked, picked[:, :1])
  return picked.astype(np.int32)
