"""No-training reference recommenders: MostPopular, ItemKNN, UserKNN, EASE.

All follow the project's id conventions (items ``1 .. num_items - 1``, ``0``
is padding and is never recommended) and return ``(U, k)`` int64 id arrays
that ``mic_tf.metrics`` scores directly. Ties are broken towards the lower
item id, which is the more popular item under the dataset's id order.

``ItemKNN`` and ``UserKNN`` keep sparse (``scipy.sparse``) matrices, score
users in chunks of bounded size and take the top-k from the sparse scores
(no dense ``users x items`` array), so they run at Amazon Books size (about
314k items). ``EASE`` is inherently dense (a ``num_items x num_items``
inverse) and refuses vocabularies above ``EASE_ITEM_LIMIT`` items.

Each model's hyper-parameter (``UserKNN.neighbours``, ``EASE.l2``) is a
constructor argument; ``run_baseline`` picks it on validation users
(``BASELINE_GRIDS``). ``run_with_baselines`` runs the reference rows and
then trains the model (``mic_tf.training.run_experiment``), and
``results_table`` prints them; both are what ``experiments/train.py``
runs.
"""

import time
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Sequence, Tuple)

from absl import logging
import numpy as np
import scipy.sparse as sp

from mic_tf import console
from mic_tf import metrics as metric_lib
from mic_tf import names as names_lib
from mic_tf.config import ExperimentConfig
from mic_tf.features import Prepared
from mic_tf.features import prepare_data

EASE_ITEM_LIMIT = 20_000
# Elements of temporary dense (users x items) work arrays, and nonzeros of
# the sparse co-occurrence blocks and score chunks built at a time.
_CHUNK_ELEMENTS = 1 << 24


def _check_num_items(num_items: int) -> int:
  if isinstance(num_items, bool) or not isinstance(
      num_items, (int, np.integer)) or num_items < 2:
    raise ValueError(
        f"num_items must be an integer >= 2 (padding id 0 plus at least one "
        f"item), got {num_items!r}; pass ProcessedDataset.num_items.")
  return int(num_items)


def _check_k(k: int, num_items: int) -> int:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}.")
  if k > num_items - 1:
    raise ValueError(
        f"k={k} exceeds the {num_items - 1} real items (ids 1 .. "
        f"{num_items - 1}); lower k or the metric cutoffs.")
  return int(k)


def _user_item_pairs(sequences: Sequence[np.ndarray], num_items: int,
                     what: str):
  """Distinct ``(user, item)`` pairs, padding dropped, sorted by user, item.

  Returns:
    ``(users, items, num_users)`` with int64 arrays.
  """
  arrays = [np.asarray(s).reshape(-1) for s in sequences]
  lengths = np.array([a.size for a in arrays], dtype=np.int64)
  items = (np.concatenate(arrays) if arrays else np.zeros(0)).astype(np.int64)
  if items.size and (items.min() < 0 or items.max() >= num_items):
    raise ValueError(
        f"{what} hold item ids outside [0, {num_items}); pass sequences that "
        f"use the same ids as num_items={num_items}.")
  users = np.repeat(np.arange(len(arrays), dtype=np.int64), lengths)
  keep = items > 0
  keys = np.unique(users[keep] * num_items + items[keep])
  return keys // num_items, keys % num_items, len(arrays)


def _exclusion_keys(histories: Sequence[np.ndarray], num_items: int,
                    exclude_history: bool) -> np.ndarray:
  """Sorted ``user * num_items + item`` keys of items to exclude per user."""
  if not exclude_history:
    return np.zeros(0, np.int64)
  users, items, _ = _user_item_pairs(histories, num_items, "histories")
  return users * num_items + items


def top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
  """Row-wise top-k column ids, best first, ties towards the lower id.

  Args:
    scores: ``(n, num_items)`` float scores; ``-inf`` marks forbidden items.
    k: Number of ids per row (``<= num_items``).

  Returns:
    int64 ``(n, k)``; slots whose score is ``-inf`` hold ``-1``.
  """
  n, width = scores.shape
  if k >= width:
    cols = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  else:
    # k-th largest value per row, then exactly k columns: everything above
    # it plus the lowest ids among the ties at it.
    kth = np.partition(scores, width - k, axis=1)[:, width - k][:, None]
    above = scores > kth
    at = scores == kth
    need = k - above.sum(axis=1)
    # Rows with more ties at the k-th value than slots keep the lowest ids.
    ties = np.flatnonzero(at.sum(axis=1) > need)
    if ties.size:
      tied = at[ties]
      at[ties] = tied & (np.cumsum(tied, axis=1) <= need[ties, None])
    chosen = above | at
    cols = np.nonzero(chosen)[1].reshape(n, k)  # Ascending ids per row.
    order = np.argsort(-np.take_along_axis(scores, cols, axis=1), axis=1,
                       kind="stable")
    cols = np.take_along_axis(cols, order, axis=1)
  picked = np.take_along_axis(scores, cols, axis=1)
  return np.where(picked > -np.inf, cols, -1).astype(np.int64)


class MostPopular:
  """Recommends the items with the most training interactions.

  Popularity counts every interaction (a repeated click counts again), as in
  ComiRec's ``src/mostpop.py``. Items never seen in training rank last.
  """

  def __init__(self, num_items: int):
    """Creates an unfitted recommender.

    Args:
      num_items: Item vocabulary size including padding id 0.
    """
    self.num_items = _check_num_items(num_items)
    self.counts_: Optional[np.ndarray] = None
    self.ranking_: Optional[np.ndarray] = None

  def fit(self, train_sequences: Sequence[np.ndarray]) -> "MostPopular":
    """Counts interactions per item.

    Args:
      train_sequences: Item id arrays of the training users (0 = padding,
        ignored).

    Returns:
      ``self``.

    Raises:
      ValueError: If an id is outside ``[0, num_items)``.
    """
    arrays = [np.asarray(s).reshape(-1) for s in train_sequences]
    items = (np.concatenate(arrays) if arrays else np.zeros(0)).astype(
        np.int64)
    if items.size and (items.min() < 0 or items.max() >= self.num_items):
      raise ValueError(
          f"train_sequences hold item ids outside [0, {self.num_items}); pass "
          "sequences that use the same ids as num_items.")
    counts = np.bincount(items, minlength=self.num_items)
    counts[0] = 0
    self.counts_ = counts
    # Descending count, ties towards the lower id; padding removed.
    ranking = np.argsort(-counts, kind="stable")
    self.ranking_ = ranking[ranking != 0]
    return self

  def retrieve(self, histories: Sequence[np.ndarray], k: int,
               exclude_history: bool = True) -> np.ndarray:
    """The ``k`` most popular items per user.

    Args:
      histories: One item id array per user (0 = padding, ignored).
      k: Items per user.
      exclude_history: Skip items in the user's history.

    Returns:
      int64 ``(U, k)`` ids, best first; ``-1`` where fewer than ``k`` items
      remain after exclusion.

    Raises:
      ValueError: If not fitted, ``k`` is out of range, or a history id is
        outside ``[0, num_items)``.
    """
    if self.ranking_ is None:
      raise ValueError("MostPopular is not fitted; call fit() first.")
    k = _check_k(k, self.num_items)
    excluded = _exclusion_keys(histories, self.num_items, exclude_history)
    num_users = len(histories)
    longest = int(np.bincount(excluded // self.num_items,
                              minlength=num_users).max(initial=0))
    # At most `longest` candidates are excluded, so k + longest suffice.
    candidates = self.ranking_[:k + longest]
    chunk = max(1, _CHUNK_ELEMENTS // max(candidates.size, 1))
    out = np.empty((num_users, k), np.int64)
    for start in range(0, num_users, chunk):
      users = np.arange(start, min(start + chunk, num_users), dtype=np.int64)
      keys = users[:, None] * self.num_items + candidates[None, :]
      blocked = np.isin(keys, excluded)
      order = np.argsort(blocked, axis=1, kind="stable")[:, :k]
      ids = candidates[order]
      out[users] = np.where(np.take_along_axis(blocked, order, axis=1), -1,
                            ids)
    return out


def _binary_matrix(sequences: Sequence[np.ndarray], num_items: int,
                   what: str) -> sp.csr_matrix:
  """Binary ``(len(sequences), num_items)`` float32 CSR user-item matrix.

  Padding is dropped and repeats count once.
  """
  users, items, num_users = _user_item_pairs(sequences, num_items, what)
  return sp.csr_matrix(
      (np.ones(users.size, np.float32), (users, items)),
      shape=(num_users, num_items))


def _check_positive_int(value, name: str) -> int:
  if isinstance(value, bool) or not isinstance(
      value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive integer, got {value!r}.")
  return int(value)


def _retrieve_scored(histories: Sequence[np.ndarray], num_items: int, k: int,
                     exclude_history: bool,
                     score: Callable[[sp.csr_matrix], np.ndarray],
                     width: int = 0) -> np.ndarray:
  """Top-k of ``score(binary history chunk)`` for users in chunks.

  Args:
    histories: One item id array per user.
    num_items: Item vocabulary size.
    k: Items per user (checked).
    exclude_history: Forbid each user's history items.
    score: Maps a binary CSR ``(n, num_items)`` history chunk to dense float
      ``(n, num_items)`` scores.
    width: Widest other temporary (per user) that ``score`` builds, to size
      the chunks.

  Returns:
    int64 ``(U, k)`` ids, best first; ``-1`` where fewer than ``k`` remain.
  """
  k = _check_k(k, num_items)
  binary = _binary_matrix(histories, num_items, "histories")
  num_users = binary.shape[0]
  chunk = max(1, _CHUNK_ELEMENTS // max(num_items, width))
  out = np.empty((num_users, k), np.int64)
  for start in range(0, num_users, chunk):
    stop = min(start + chunk, num_users)
    block = binary[start:stop]
    scores = np.asarray(score(block), dtype=np.float32)
    scores[:, 0] = -np.inf
    if exclude_history:
      rows, cols = block.nonzero()
      scores[rows, cols] = -np.inf
    out[start:stop] = top_k_rows(scores, k)
  return out


def _top_n_per_column(rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                      n: int) -> np.ndarray:
  """Boolean mask keeping, per column, the ``n`` largest values.

  Ties go to the lower row id (as ``top_k_rows`` does on a dense column).
  """
  order = np.lexsort((rows, -values, cols))
  sorted_cols = cols[order]
  first = np.searchsorted(sorted_cols, sorted_cols, side="left")
  rank = np.arange(order.size) - first
  keep = np.zeros(order.size, dtype=bool)
  keep[order[rank < n]] = True
  return keep


def _chunks(bounds: np.ndarray, budget: int):
  """Consecutive ``[lo, hi)`` ranges whose summed ``bounds`` stay near budget.

  A range ends once its sum reaches ``budget`` (a single entry may exceed
  it); every index is covered once.
  """
  bounds = np.asarray(bounds, dtype=np.float64)
  if bounds.size == 0:
    return []
  before = np.cumsum(bounds) - bounds
  block = (before // max(budget, 1)).astype(np.int64)
  edges = np.concatenate([[0], np.flatnonzero(np.diff(block)) + 1,
                          [bounds.size]])
  return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _row_top_k(cols: np.ndarray, vals: np.ndarray, k: int):
  """Top-k ``(cols, vals)`` of one sparse row: best first, ties to lower col."""
  if cols.size > k:
    kth = np.partition(vals, cols.size - k)[cols.size - k]
    above = np.flatnonzero(vals > kth)
    at = np.flatnonzero(vals == kth)
    at = at[np.argsort(cols[at], kind="stable")[:k - above.size]]
    keep = np.concatenate([above, at])
    cols, vals = cols[keep], vals[keep]
  order = np.lexsort((cols, -vals))
  return cols[order], vals[order]


def _sparse_top_k(matrix: sp.csr_matrix, k: int,
                  forbidden: Optional[sp.csr_matrix] = None,
                  fill_zeros: bool = False, first_id: int = 0):
  """Row-wise top-k of a non-negative sparse matrix, as ``top_k_rows`` would.

  Entries absent from ``matrix`` score 0. Positive entries come first (best
  first, ties towards the lower column); with ``fill_zeros`` the remaining
  slots take the lowest zero-score columns, as a dense top-k would. Each row
  costs a partition of its own nonzeros, never of the full width.

  Args:
    matrix: CSR ``(n, width)`` with non-negative values and no duplicate
      entries (as sparse matrix products give).
    k: Columns per row.
    forbidden: Optional CSR ``(n, width)``: nonzero entries are never
      returned (scored ``-inf``).
    fill_zeros: Fill rows with fewer than ``k`` positive entries with the
      lowest allowed zero-score columns.
    first_id: Columns below it are never returned (``1``: padding item 0).

  Returns:
    ``(ids, values)``: int64 and float32 ``(n, k)``; unfilled slots hold
    ``-1`` and ``0``.
  """
  n, width = matrix.shape
  matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
  if forbidden is not None:
    forbidden = sp.csr_matrix(forbidden)
    matrix = sp.csr_matrix(matrix - matrix.multiply(forbidden > 0))
  matrix.data[matrix.indices < first_id] = 0.0
  matrix.data[matrix.data < 0] = 0.0
  matrix.eliminate_zeros()
  ids = np.full((n, k), -1, np.int64)
  values = np.zeros((n, k), np.float32)
  indptr, indices, data = matrix.indptr, matrix.indices, matrix.data
  for r in range(n):
    lo, hi = indptr[r], indptr[r + 1]
    cols, vals = _row_top_k(indices[lo:hi].astype(np.int64), data[lo:hi], k)
    ids[r, :cols.size] = cols
    values[r, :cols.size] = vals
    if fill_zeros and cols.size < k:
      used = cols
      if forbidden is not None:
        used = np.concatenate([used, forbidden.indices[
            forbidden.indptr[r]:forbidden.indptr[r + 1]]])
      need = k - cols.size
      candidates = np.arange(first_id, min(width, first_id + need + used.size))
      candidates = candidates[~np.isin(candidates, used)][:need]
      ids[r, cols.size:cols.size + candidates.size] = candidates
  return ids, values


def _retrieve_sparse(histories: Sequence[np.ndarray], num_items: int, k: int,
                     exclude_history: bool,
                     score: Callable[[sp.csr_matrix], sp.csr_matrix],
                     row_bound: Callable[[sp.csr_matrix], np.ndarray]
                     ) -> np.ndarray:
  """Top-k of non-negative sparse ``score(history chunk)``, chunk by chunk.

  Same answer as ``_retrieve_scored`` on the dense scores (zero scores tie
  towards the lower id). ``row_bound(binary)`` bounds the nonzeros of each
  user's work rows (scores, similarities), so a chunk never holds much more
  than ``_CHUNK_ELEMENTS`` of them.
  """
  k = _check_k(k, num_items)
  binary = _binary_matrix(histories, num_items, "histories")
  out = np.empty((binary.shape[0], k), np.int64)
  for lo, hi in _chunks(row_bound(binary) + 1, _CHUNK_ELEMENTS):
    block = binary[lo:hi]
    out[lo:hi] = _sparse_top_k(sp.csr_matrix(score(block)), k,
                               forbidden=block if exclude_history else None,
                               fill_zeros=True, first_id=1)[0]
  return out


class _HistoryScorer:
  """What the history-scoring recommenders share: ``retrieve`` and ``scores``.

  A subclass sets ``num_items``, names the attribute that ``fit`` fills in
  ``_FITTED``, scores a binary ``(U, num_items)`` history block in
  ``_score_block`` and picks the top ``k`` in ``_retrieve``.
  """

  _FITTED = ""
  num_items: int

  def _check_fitted(self) -> None:
    if getattr(self, self._FITTED) is None:
      raise ValueError(f"{type(self).__name__} is not fitted; call fit() "
                       "first.")

  def retrieve(self, histories: Sequence[np.ndarray], k: int,
               exclude_history: bool = True) -> np.ndarray:
    """The ``k`` best-scored items per user.

    Args:
      histories: One item id array per user (0 = padding, ignored; repeats
        count once).
      k: Items per user.
      exclude_history: Skip items in the user's history.

    Returns:
      int64 ``(U, k)`` ids, best first (ties, e.g. zero scores, towards the
      lower id, which the ComiRec protocol gives the more popular item);
      ``-1`` where fewer than ``k`` items remain.

    Raises:
      ValueError: If not fitted, ``k`` is out of range, or a history id is
        outside ``[0, num_items)``.
    """
    self._check_fitted()
    return self._retrieve(histories, k, exclude_history)

  def scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Dense float32 ``(U, num_items)`` scores, nothing excluded (small U)."""
    self._check_fitted()
    block = self._score_block(
        _binary_matrix(histories, self.num_items, "histories"))
    return block.toarray() if sp.issparse(block) else block

  def _retrieve(self, histories: Sequence[np.ndarray], k: int,
                exclude_history: bool) -> np.ndarray:
    raise NotImplementedError

  def _score_block(self, block: sp.csr_matrix):
    raise NotImplementedError


class ItemKNN(_HistoryScorer):
  """Item-based collaborative filtering with cosine similarity.

  ``sim(i, j) = c(i, j) / (sqrt(c(i)) * sqrt(c(j)) + shrink)`` where ``c(i)``
  is the number of training users who interacted with ``i`` and ``c(i, j)``
  the number who interacted with both (binary user-item matrix of the
  sequences passed to ``fit``, which must be the training users only).
  ``sim(j, j) = 0``. With ``neighbourhood = n`` each candidate item ``j`` keeps
  only its ``n`` most similar items ``h`` (``sim(h, j)`` is zeroed for the
  others). A user's score for ``j`` is ``sum over distinct history items h of
  sim(h, j)``.

  The similarity is a ``scipy.sparse`` CSR matrix built in column blocks of
  bounded size (each block is pruned to ``neighbourhood`` before the next),
  so memory is ``O(nonzero similarities)``; pass a ``neighbourhood`` (e.g.
  100-200) on large catalogues to bound it by ``num_items * neighbourhood``.
  """

  _FITTED = "similarity_"

  def __init__(self, num_items: int, neighbourhood: Optional[int] = None,
               shrink: float = 0.0):
    """Creates an unfitted recommender.

    Args:
      num_items: Item vocabulary size including padding id 0.
      neighbourhood: Neighbours kept per candidate item, or ``None`` for all.
      shrink: Non-negative constant added to the cosine denominator.

    Raises:
      ValueError: On invalid arguments.
    """
    self.num_items = _check_num_items(num_items)
    if neighbourhood is not None:
      neighbourhood = _check_positive_int(neighbourhood, "neighbourhood")
    if not np.isfinite(shrink) or shrink < 0:
      raise ValueError(f"shrink must be a finite number >= 0, got {shrink!r}.")
    self.neighbourhood = neighbourhood
    self.shrink = float(shrink)
    self.similarity_: Optional[sp.csr_matrix] = None

  def _column_blocks(self, binary: sp.csr_matrix):
    """Column ranges whose co-occurrence blocks hold ~_CHUNK_ELEMENTS values.

    ``sum over users u who have j of |u|`` bounds the nonzeros of column
    ``j`` of ``X^T X``; a block ends once its bound reaches the budget.
    """
    lengths = np.asarray(binary.sum(axis=1), dtype=np.float64).ravel()
    return _chunks(binary.T.dot(lengths), _CHUNK_ELEMENTS)

  def fit(self, train_sequences: Sequence[np.ndarray]) -> "ItemKNN":
    """Builds the sparse item-item similarity matrix.

    Args:
      train_sequences: Item id arrays of the training users only (0 =
        padding, ignored; repeats within a user count once).

    Returns:
      ``self``.

    Raises:
      ValueError: If an id is outside ``[0, num_items)``.
    """
    binary = _binary_matrix(train_sequences, self.num_items,
                            "train_sequences")
    norms = np.sqrt(np.asarray(binary.sum(axis=0),
                               dtype=np.float32).ravel())
    items_by_user = binary.T.tocsr()
    by_column = binary.tocsc()
    shrink = np.float32(self.shrink)
    parts_rows, parts_cols, parts_vals = [], [], []
    for lo, hi in self._column_blocks(binary):
      block = (items_by_user @ by_column[:, lo:hi]).tocoo()
      rows = block.row.astype(np.int64)
      cols = block.col.astype(np.int64) + lo
      off_diagonal = rows != cols
      rows, cols = rows[off_diagonal], cols[off_diagonal]
      # c(i, j) > 0 implies c(i), c(j) > 0: the denominator is positive.
      vals = (block.data[off_diagonal].astype(np.float32) /
              (norms[rows] * norms[cols] + shrink))
      if self.neighbourhood is not None:
        keep = _top_n_per_column(rows, cols, vals, self.neighbourhood)
        rows, cols, vals = rows[keep], cols[keep], vals[keep]
      parts_rows.append(rows)
      parts_cols.append(cols)
      parts_vals.append(vals)
    self.similarity_ = sp.csr_matrix(
        (np.concatenate(parts_vals).astype(np.float32),
         (np.concatenate(parts_rows), np.concatenate(parts_cols))),
        shape=(self.num_items, self.num_items))
    return self

  def most_similar(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Each item's ``k`` most similar items (positive similarity only).

    Column ``j`` of ``similarity_`` holds the items kept for ``j`` (all of
    them, or its ``neighbourhood`` most similar); they are read best first,
    ties towards the lower id (as ``neighbourhood`` prunes). Fit with
    ``neighbourhood >= k`` (or ``None``) for the true top ``k``.

    Args:
      k: Items per item.

    Returns:
      ``(ids, values)``: int64 and float32 ``(num_items, k)``, row ``j`` the
      items most similar to ``j`` (never ``j``, never padding 0); ``-1`` and
      ``0`` where ``j`` has fewer than ``k`` items of positive similarity.

    Raises:
      ValueError: If not fitted or ``k`` is not a positive integer.
    """
    self._check_fitted()
    k = _check_positive_int(k, "k")
    return _sparse_top_k(self.similarity_.T.tocsr(), k, first_id=1)

  def _retrieve(self, histories: Sequence[np.ndarray], k: int,
                exclude_history: bool) -> np.ndarray:
    per_item = np.diff(self.similarity_.indptr).astype(np.float64)
    return _retrieve_sparse(
        histories, self.num_items, k, exclude_history, self._score_block,
        lambda binary: np.minimum(binary @ per_item, self.num_items))

  def _score_block(self, block: sp.csr_matrix) -> sp.csr_matrix:
    return block @ self.similarity_


class UserKNN(_HistoryScorer):
  """User-based collaborative filtering with cosine similarity.

  ``sim(u, v) = |H(u) & I(v)| / sqrt(|H(u)| * |I(v)|)`` between a scored
  user's distinct history items ``H(u)`` and a training user's distinct
  items ``I(v)`` (binary cosine). The ``neighbours`` most similar training
  users ``N(u)`` are kept (ties towards the lower training-user index), and
  item ``j`` scores ``sum over v in N(u) with j in I(v) of sim(u, v)``.
  """

  _FITTED = "train_"

  def __init__(self, num_items: int, neighbours: int = 50):
    """Creates an unfitted recommender.

    Args:
      num_items: Item vocabulary size including padding id 0.
      neighbours: Training users kept per scored user (``k`` of kNN).

    Raises:
      ValueError: On invalid arguments.
    """
    self.num_items = _check_num_items(num_items)
    self.neighbours = _check_positive_int(neighbours, "neighbours")
    self.train_: Optional[sp.csr_matrix] = None
    self.normalised_t_: Optional[sp.csr_matrix] = None

  def fit(self, train_sequences: Sequence[np.ndarray]) -> "UserKNN":
    """Stores the training users' binary item sets.

    Args:
      train_sequences: Item id arrays of the training users only (0 =
        padding, ignored; repeats within a user count once).

    Returns:
      ``self``.

    Raises:
      ValueError: If an id is outside ``[0, num_items)`` or ``neighbours``
        exceeds the number of training users.
    """
    binary = _binary_matrix(train_sequences, self.num_items,
                            "train_sequences")
    if self.neighbours > binary.shape[0]:
      raise ValueError(
          f"neighbours={self.neighbours} exceeds the {binary.shape[0]} "
          "training users; lower neighbours.")
    self.train_ = binary
    self.normalised_t_ = _normalise_rows(binary).T.tocsr()
    return self

  def _retrieve(self, histories: Sequence[np.ndarray], k: int,
                exclude_history: bool) -> np.ndarray:
    # Bounds of a user's nonzero similarities (users sharing an item) and
    # of their nonzero scores (items of the neighbours).
    item_users = np.asarray(self.train_.sum(axis=0),
                            dtype=np.float64).ravel()
    num_train = self.train_.shape[0]
    longest = float(np.diff(self.train_.indptr).max(initial=0))
    scores_bound = min(self.neighbours * longest, self.num_items)
    return _retrieve_sparse(
        histories, self.num_items, k, exclude_history, self._score_block,
        lambda binary: np.maximum(
            np.minimum(binary @ item_users, num_train), scores_bound))

  def _score_block(self, block: sp.csr_matrix) -> sp.csr_matrix:
    sims = sp.csr_matrix(_normalise_rows(block) @ self.normalised_t_)
    nearest, weights = _sparse_top_k(sims, self.neighbours)
    found = nearest >= 0  # zero-similarity neighbours add nothing
    rows = np.nonzero(found)[0]
    kept = sp.csr_matrix((weights[found], (rows, nearest[found])),
                         shape=(block.shape[0], self.train_.shape[0]))
    return kept @ self.train_


def _normalise_rows(binary: sp.csr_matrix) -> sp.csr_matrix:
  """Rows scaled to unit L2 norm; empty rows stay 0."""
  norms = np.sqrt(np.asarray(binary.multiply(binary).sum(axis=1),
                             dtype=np.float32).ravel())
  inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
  return sp.csr_matrix(sp.diags(inverse) @ binary, dtype=np.float32)


def item_gram(train_sequences: Sequence[np.ndarray],
              num_items: int) -> np.ndarray:
  """``X^T X`` of the binary user-item matrix ``X``, dense float64.

  Entry ``(i, j)``: how many training users hold both items (``(i, i)``:
  item ``i``'s users). Padding is dropped and repeats count once.
  """
  binary = _binary_matrix(train_sequences, num_items,
                          "train_sequences").astype(np.float64)
  return (binary.T @ binary).toarray()


class EASE(_HistoryScorer):
  """Embarrassingly Shallow Autoencoder (Steck, WWW 2019).

  With the binary training matrix ``X`` (users x items) and
  ``P = (X^T X + l2 * I)^-1``, the item-item weights are
  ``B = I - P diag(1 / diag(P))``, i.e. ``B[i, j] = -P[i, j] / P[j, j]`` and
  ``diag(B) = 0``; a user's scores are ``x_u B``. ``B`` is dense, so memory
  is ``8 * num_items**2`` bytes (float64 inverse), and vocabularies above
  ``max_items`` are refused: use ``ItemKNN`` or ``UserKNN`` there.
  """

  _FITTED = "weights_"

  def __init__(self, num_items: int, l2: float = 500.0,
               max_items: int = EASE_ITEM_LIMIT):
    """Creates an unfitted recommender.

    Args:
      num_items: Item vocabulary size including padding id 0.
      l2: The L2 weight ``lambda`` (> 0).
      max_items: Largest ``num_items`` allowed for the dense inverse.

    Raises:
      ValueError: On invalid arguments or ``num_items > max_items``.
    """
    self.num_items = _check_num_items(num_items)
    if self.num_items > max_items:
      raise ValueError(
          f"EASE inverts a dense {self.num_items} x {self.num_items} item "
          f"matrix ({8 * self.num_items ** 2 / 2 ** 30:.1f} GiB), above "
          f"max_items={max_items}; use ItemKNN or UserKNN (sparse) for this "
          "catalogue, or raise max_items if memory allows.")
    if isinstance(l2, bool) or not np.isfinite(l2) or l2 <= 0:
      raise ValueError(f"l2 must be a finite number > 0, got {l2!r}.")
    self.l2 = float(l2)
    self.weights_: Optional[np.ndarray] = None

  def fit(self, train_sequences: Sequence[np.ndarray]) -> "EASE":
    """Computes the closed-form item-item weights ``B``.

    Args:
      train_sequences: Item id arrays of the training users only (0 =
        padding, ignored; repeats within a user count once).

    Returns:
      ``self``.

    Raises:
      ValueError: If an id is outside ``[0, num_items)``.
    """
    return self._fit_gram(item_gram(train_sequences, self.num_items))

  @classmethod
  def fit_grid(cls, num_items: int, train_sequences: Sequence[np.ndarray],
               l2: Sequence[float], **kwargs) -> Iterator["EASE"]:
    """One fitted EASE per ``l2`` value, in order, each as ``fit`` makes it.

    The item Gram matrix ``X^T X`` is computed once for the whole grid
    (it does not depend on ``l2``); each value then costs one inverse.

    Args:
      num_items: Item vocabulary size including padding id 0.
      train_sequences: As in ``fit``.
      l2: The L2 weights to fit.
      **kwargs: Other constructor arguments.

    Yields:
      The fitted models (one at a time: each holds a dense weight matrix).
    """
    models = [cls(num_items, l2=value, **kwargs) for value in l2]  # check all
    gram = item_gram(train_sequences, models[0].num_items) if models else None
    for model in models:
      yield model._fit_gram(gram)  # pylint: disable=protected-access

  def _fit_gram(self, gram: np.ndarray) -> "EASE":
    regularised = gram.copy()
    regularised[np.diag_indices_from(regularised)] += self.l2
    inverse = np.linalg.inv(regularised)
    del regularised
    weights = inverse / (-np.diag(inverse))[None, :]
    np.fill_diagonal(weights, 0.0)
    self.weights_ = weights.astype(np.float32)
    return self

  def _retrieve(self, histories: Sequence[np.ndarray], k: int,
                exclude_history: bool) -> np.ndarray:
    return _retrieve_scored(histories, self.num_items, k, exclude_history,
                            self._score_block)

  def _score_block(self, block: sp.csr_matrix) -> np.ndarray:
    return np.asarray(block @ self.weights_, dtype=np.float32)


# The reference rows of experiments/train.py --baselines and
# experiments/baselines.py, by flag name.
BASELINES = ("mostpop", "itemknn", "userknn", "ease")
BASELINE_NAMES = {"mostpop": "MostPopular", "itemknn": "ItemKNN",
                  "userknn": "UserKNN", "ease": "EASE"}
# The hyper-parameter each reference row picks on validation users, and the
# values tried (UserKNN: neighbours k; EASE: L2 weight lambda).
BASELINE_GRIDS = {
    "userknn": ("neighbours", (10, 20, 50, 100, 200)),
    "ease": ("l2", (10.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0)),
}


def make_baseline(name: str, num_items: int, **params):
  """An unfitted reference recommender by its ``--baselines`` name."""
  if name not in BASELINES:
    raise ValueError(f"Unknown baseline {name!r}; choose from {BASELINES}.")
  cls = {"mostpop": MostPopular, "itemknn": ItemKNN, "userknn": UserKNN,
         "ease": EASE}[name]
  return cls(num_items, **params)


def _fitted_grid(name: str, num_items: int, param: str,
                 values: Sequence[Any], train: Sequence[Any]):
  """One fitted reference model per grid value, in order; a class with a
  ``fit_grid`` (EASE) shares the work that every value repeats."""
  cls = type(make_baseline(name, num_items, **{param: values[0]}))
  fit_grid = getattr(cls, "fit_grid", None)
  if fit_grid is not None:
    yield from fit_grid(num_items, train, **{param: values})
    return
  for value in values:
    yield make_baseline(name, num_items, **{param: value}).fit(train)


def run_baseline(name: str, prepared: Prepared,
                 cutoffs: Sequence[int] = (20, 50),
                 exclude_history: bool = True,
                 grid: Optional[Tuple[str, Sequence[Any]]] = None
                 ) -> Dict[str, Any]:
  """Fits a reference row on training users; scores valid and test users.

  UserKNN and EASE pick their hyper-parameter (``BASELINE_GRIDS``, or
  ``grid``) by ``recall@{max cutoff}`` on the valid users only (the first
  value wins ties); the test users are evaluated once, with the chosen value.

  Returns:
    ``{"name", "valid", "test", "seconds"}`` plus, for tuned rows,
    ``"params"`` (the chosen value) and ``"selection"`` (valid metrics of
    every value tried).
  """
  ds = prepared.dataset
  train = [ds.sequences[u] for u in ds.train_users]
  k = max(cutoffs)
  metric = f"recall@{k}"

  def evaluate(model, users):
    ids = model.retrieve(users.histories, k, exclude_history=exclude_history)
    return metric_lib.retrieval_metrics(ids, users.targets, cutoffs)

  out: Dict[str, Any] = {"name": BASELINE_NAMES.get(name, name)}
  start = time.perf_counter()
  param, values = grid if grid is not None else BASELINE_GRIDS.get(
      name, (None, ()))
  if param is None:
    model = make_baseline(name, ds.num_items).fit(train)
    out["valid"] = evaluate(model, prepared.valid)
  else:
    if not values:
      raise ValueError(f"The {name} grid of {param} values is empty; pass "
                       "at least one value.")
    rows, model, best = [], None, None
    for value, candidate in zip(values, _fitted_grid(name, ds.num_items,
                                                     param, values, train)):
      rows.append({param: value, **evaluate(candidate, prepared.valid)})
      logging.info("%s %s=%s valid %s=%.3f", out["name"], param, value,
                   metric, rows[-1][metric])
      if best is None or rows[-1][metric] > best[metric]:
        best, model = rows[-1], candidate
      del candidate
    out["params"] = {param: best[param]}
    out["selection"] = {"metric": metric, "users": "valid", "rows": rows}
    out["valid"] = {m: v for m, v in best.items() if m != param}
  out["test"] = evaluate(model, prepared.test)
  out["seconds"] = time.perf_counter() - start
  return out


def run_with_baselines(config: ExperimentConfig, names: Sequence[str],
                       verbose: int = 1) -> List[Dict[str, Any]]:
  """Runs the requested reference rows, then trains and evaluates the model.

  What ``experiments/train.py`` runs: the rows share the model's prepared
  data; the model's row is named by ``mic_tf.names.model_label``.
  """
  # The training loop loads TensorFlow; the reference rows alone need not.
  from mic_tf import training  # pylint: disable=g-import-not-at-top

  prepared = prepare_data(config)
  rows = []
  evaluation = config.evaluation
  for name in console.track(names, "reference rows", unit="rows"):
    row = run_baseline(name, prepared, evaluation.cutoffs,
                       evaluation.exclude_history)
    logging.info("%s test %s", row["name"], row["test"])
    rows.append(row)
  results = training.run_experiment(config, prepared, verbose=verbose)
  results.pop("model")
  label = names_lib.model_label(config.model.tower, config.mic.terms,
                                config.mining.enabled)
  rows.append({"name": label, "valid": results["valid"],
               "test": results["test"],
               "train_seconds": results["train_seconds"]})
  return rows


METRIC_ORDER = ("recall@20", "ndcg@20", "ndcg_gt@20", "hr@20",
                "recall@50", "ndcg@50", "ndcg_gt@50", "hr@50")


def row_label(row: Mapping[str, Any]) -> str:
  """A row's name with the value it chose on valid users, if any, e.g.
  ``EASE (l2=1000)``."""
  name = row["name"]
  if row.get("params"):
    name += " (" + ", ".join(f"{p}={v:g}" for p, v in
                             row["params"].items()) + ")"
  return name


def results_table(rows: Sequence[Dict[str, Any]], split: str = "test",
                  metrics: Sequence[str] = METRIC_ORDER) -> str:
  """A Markdown table of metrics (percent) for each row.

  A reference row tuned on valid users shows its chosen value in the name,
  e.g. ``EASE (l2=1000)``.
  """
  header = "| model | " + " | ".join(metrics) + " |"
  lines = [header, "|" + "---|" * (len(metrics) + 1)]
  for row in rows:
    m = row[split]
    lines.append(f"| {row_label(row)} | " +
                 " | ".join(f"{m[k]:.3f}" for k in metrics) + " |")
  return "\n".join(lines)
