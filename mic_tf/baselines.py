"""No-training reference recommenders: most popular items and item-KNN.

Both follow the project's id conventions (items ``1 .. num_items - 1``, ``0``
is padding and is never recommended) and return ``(U, k)`` int64 id arrays
that ``mic_tf.metrics`` scores directly. Ties are broken towards the lower
item id, which is the more popular item under the dataset's id order.

``ItemKNN`` keeps a dense ``num_items x num_items`` similarity matrix (numpy
only; ``scipy.sparse`` is not a dependency), so it refuses vocabularies above
``DENSE_ITEM_LIMIT`` items.
"""

from typing import Optional, Sequence

import numpy as np

DENSE_ITEM_LIMIT = 20_000
# Elements of temporary (users x items) or (users x length^2) work arrays.
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
    need = k - above.sum(axis=1, keepdims=True)
    chosen = above | (at & (np.cumsum(at, axis=1) <= need))
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


class ItemKNN:
  """Item-based collaborative filtering with cosine similarity.

  ``sim(i, j) = c(i, j) / (sqrt(c(i)) * sqrt(c(j)) + shrink)`` where ``c(i)``
  is the number of training users who interacted with ``i`` and ``c(i, j)``
  the number who interacted with both (binary user-item matrix of the
  sequences passed to ``fit``, which must be the training users only).
  ``sim(j, j) = 0``. With ``neighbourhood = n`` each candidate item ``j`` keeps
  only its ``n`` most similar items ``h`` (``sim(h, j)`` is zeroed for the
  others). A user's score for ``j`` is ``sum over distinct history items h of
  sim(h, j)``.
  """

  def __init__(self, num_items: int, neighbourhood: Optional[int] = None,
               shrink: float = 0.0, max_items: int = DENSE_ITEM_LIMIT):
    """Creates an unfitted recommender.

    Args:
      num_items: Item vocabulary size including padding id 0.
      neighbourhood: Neighbours kept per candidate item, or ``None`` for all.
      shrink: Non-negative constant added to the cosine denominator.
      max_items: Largest ``num_items`` allowed for the dense similarity
        matrix (``4 * num_items**2`` bytes, twice during ``fit``).

    Raises:
      ValueError: On invalid arguments or ``num_items > max_items``.
    """
    self.num_items = _check_num_items(num_items)
    if self.num_items > max_items:
      raise ValueError(
          f"ItemKNN keeps a dense {self.num_items} x {self.num_items} "
          f"similarity matrix, above the limit of {max_items} items "
          f"(DENSE_ITEM_LIMIT={DENSE_ITEM_LIMIT}). Use a smaller item "
          "vocabulary, raise max_items if memory allows, or add scipy.sparse "
          "for a sparse implementation.")
    if neighbourhood is not None and (
        isinstance(neighbourhood, bool) or
        not isinstance(neighbourhood, (int, np.integer)) or neighbourhood < 1):
      raise ValueError(
          f"neighbourhood must be None or a positive integer, got "
          f"{neighbourhood!r}.")
    if not np.isfinite(shrink) or shrink < 0:
      raise ValueError(f"shrink must be a finite number >= 0, got {shrink!r}.")
    self.neighbourhood = neighbourhood
    self.shrink = float(shrink)
    self.similarity_: Optional[np.ndarray] = None

  def _cooccurrence(self, train_sequences: Sequence[np.ndarray],
                    method: Optional[str] = None) -> np.ndarray:
    """``c(i, j)`` as float32 ``(num_items, num_items)``; diagonal ``c(i)``.

    Args:
      train_sequences: Training users' item id arrays.
      method: ``"dense"`` (binary user blocks times their transpose, BLAS),
        ``"pairs"`` (counts each user's item pairs) or ``None`` to pick the
        cheaper one: dense costs ``users * items^2`` multiply-adds, pairs cost
        ``sum(length^2)`` sort work (roughly 1000 times dearer per unit).
    """
    users, items, num_users = _user_item_pairs(
        train_sequences, self.num_items, "train_sequences")
    lengths = np.bincount(users, minlength=num_users)
    if method is None:
      dense_cost = float(num_users) * self.num_items ** 2
      pair_cost = float(np.sum(lengths.astype(np.float64) ** 2))
      method = "dense" if dense_cost <= 1000.0 * pair_cost else "pairs"
    if method == "dense":
      return self._dense_cooccurrence(users, items, num_users)
    return self._pair_cooccurrence(users, items, lengths)

  def _dense_cooccurrence(self, users: np.ndarray, items: np.ndarray,
                          num_users: int) -> np.ndarray:
    counts = np.zeros((self.num_items, self.num_items), np.float32)
    chunk = max(1, _CHUNK_ELEMENTS // self.num_items)
    for start in range(0, num_users, chunk):
      stop = min(start + chunk, num_users)
      lo, hi = np.searchsorted(users, [start, stop])
      binary = np.zeros((stop - start, self.num_items), np.float32)
      binary[users[lo:hi] - start, items[lo:hi]] = 1.0
      counts += binary.T @ binary
    return counts

  def _pair_cooccurrence(self, users: np.ndarray, items: np.ndarray,
                         lengths: np.ndarray) -> np.ndarray:
    counts = np.zeros((self.num_items, self.num_items), np.float32)
    flat = counts.reshape(-1)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    # Users are grouped by length bucket (1, 2, 3-4, 5-8, ...) so that the
    # padded (users x width x width) pair blocks waste little space.
    bucket = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    for level in np.unique(bucket[lengths > 0]):
      members = np.flatnonzero((bucket == level) & (lengths > 0))
      width = int(lengths[members].max())
      per_block = max(1, _CHUNK_ELEMENTS // (width * width))
      for first in range(0, members.size, per_block):
        block = members[first:first + per_block]
        col = np.arange(width)[None, :]
        valid = col < lengths[block][:, None]
        padded = items[np.where(valid, starts[block][:, None] + col, 0)]
        pairs = valid[:, :, None] & valid[:, None, :]
        keys = padded[:, :, None] * self.num_items + padded[:, None, :]
        uniq, freq = np.unique(keys[pairs], return_counts=True)
        flat[uniq] += freq
    return counts

  def _prune(self, sim: np.ndarray) -> None:
    """Keeps, in each column j, only the `neighbourhood` largest sim(h, j)."""
    chunk = max(1, _CHUNK_ELEMENTS // self.num_items)
    for start in range(0, self.num_items, chunk):
      columns = sim[:, start:start + chunk].T  # (columns, rows h), a view.
      keep_rows = top_k_rows(columns, self.neighbourhood)
      keep = np.zeros(columns.shape, dtype=bool)
      np.put_along_axis(keep, keep_rows, True, axis=1)
      columns[~keep] = 0.0

  def fit(self, train_sequences: Sequence[np.ndarray]) -> "ItemKNN":
    """Builds the item-item similarity matrix.

    Args:
      train_sequences: Item id arrays of the training users only (0 =
        padding, ignored; repeats within a user count once).

    Returns:
      ``self``.

    Raises:
      ValueError: If an id is outside ``[0, num_items)``.
    """
    sim = self._cooccurrence(train_sequences)
    norms = np.sqrt(np.diag(sim).copy())
    denominator = np.outer(norms, norms) + np.float32(self.shrink)
    # c(i, j) = 0 wherever the denominator is 0, so those entries stay 0.
    np.divide(sim, denominator, out=sim, where=denominator > 0)
    del denominator
    np.fill_diagonal(sim, 0.0)
    if (self.neighbourhood is not None and
        self.neighbourhood < self.num_items):
      self._prune(sim)
    self.similarity_ = sim
    return self

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
      lower, more popular id); ``-1`` where fewer than ``k`` items remain.

    Raises:
      ValueError: If not fitted, ``k`` is out of range, or a history id is
        outside ``[0, num_items)``.
    """
    if self.similarity_ is None:
      raise ValueError("ItemKNN is not fitted; call fit() first.")
    k = _check_k(k, self.num_items)
    users, items, num_users = _user_item_pairs(histories, self.num_items,
                                               "histories")
    chunk = max(1, _CHUNK_ELEMENTS // self.num_items)
    out = np.empty((num_users, k), np.int64)
    for start in range(0, num_users, chunk):
      stop = min(start + chunk, num_users)
      lo, hi = np.searchsorted(users, [start, stop])
      history = np.zeros((stop - start, self.num_items), np.float32)
      history[users[lo:hi] - start, items[lo:hi]] = 1.0
      scores = history @ self.similarity_
      scores[:, 0] = -np.inf
      if exclude_history:
        scores[history > 0] = -np.inf
      out[start:stop] = top_k_rows(scores, k)
    return out
