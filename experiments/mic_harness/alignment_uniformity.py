r"""Alignment and uniformity of representations (Wang & Isola, ICML 2020).

On L2-normalised vectors ``f``:

* alignment ``= E_{(x, y) positive} ||f(x) - f(y)||^alpha`` (``alpha = 2``):
  how close positive pairs are (lower is better);
* uniformity ``= log E_{(x, y) random} exp(-t ||f(x) - f(y)||^2)``
  (``t = 2``): how evenly the points spread over the unit sphere (lower is
  better; always ``<= 0``).

Uniformity uses every pair of distinct points (``i < j``) of a set, or of a
seeded random subset of ``max_points`` points when the set is larger.

Positive pairs of MIC's three spaces (paper Figure 4), built from the
evaluated (valid or test) users, who are never trained on:

* UI (shared space, U2I): the user's query, from their input history, and
  each of their target items (``user_target_pairs``). A multi-interest user
  contributes, for each target, the interest closest to it (the one that
  would retrieve it, ``closest_interest``).
* UU (user space, U2U): the same user encoded from two disjoint halves of
  their history (``history_halves``): the last ``min(len, 2 * maxlen)``
  input items are split by alternating positions, so both halves cover the
  same period, each fits the tower's ``maxlen`` and keeps time order.
* II (item space, I2I): items consumed consecutively by the same user
  (``consecutive_pairs``: ``s[t], s[t+1]`` with ``s[t] != s[t+1]``) in the
  users' whole sequences.

Uniformity is measured on the evaluated users (UI: shared space, UU: user
space, each from the full input history) and on every real item (UI: shared
space, II: item space).

Everything here is numpy on arrays (TF eager tensors are converted); the
model-side encoding lives in ``mic_harness.figure4``.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np


def l2_normalize(x, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
  """``x / max(||x||, eps)`` along ``axis``, as float64."""
  x = np.asarray(x, dtype=np.float64)
  norm = np.linalg.norm(x, axis=axis, keepdims=True)
  return x / np.maximum(norm, eps)


def _check_points(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
    raise ValueError(f"{name} must be a non-empty (n, d) array, got shape "
                     f"{x.shape}.")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} holds NaN or inf values; check the model's "
                     "checkpoint.")
  return x


def alignment(x, y, alpha: float = 2.0) -> float:
  """Mean ``||f(x_i) - f(y_i)||^alpha`` over row pairs ``i`` (unit vectors).

  Args:
    x: ``(n, d)`` first elements of the positive pairs.
    y: ``(n, d)`` second elements (row ``i`` pairs with ``x[i]``).
    alpha: The exponent (Wang & Isola: 2).

  Returns:
    The alignment (``0 <= . <= 2^alpha``).
  """
  x = _check_points(x, "x")
  y = _check_points(y, "y")
  if x.shape != y.shape:
    raise ValueError(f"x and y must hold the same (n, d) pairs, got shapes "
                     f"{x.shape} and {y.shape}.")
  diff = l2_normalize(x) - l2_normalize(y)
  return float(np.mean(np.linalg.norm(diff, axis=1) ** alpha))


def uniformity(x, t: float = 2.0, max_points: int = 4096,
               seed: int = 0, chunk: int = 1024) -> float:
  """``log mean exp(-t ||f(x_i) - f(x_j)||^2)`` over pairs ``i < j``.

  Args:
    x: ``(n, d)`` points (``n >= 2``), normalised here.
    t: The temperature (Wang & Isola: 2).
    max_points: Above this many points a seeded random subset of this size
      is used (all pairs of ``n`` points cost ``n^2 / 2`` distances).
    seed: Seed of that subset.
    chunk: Rows per block of the pairwise distances.

  Returns:
    The uniformity (``<= 0``).
  """
  x = _check_points(x, "x")
  if x.shape[0] < 2:
    raise ValueError("uniformity needs at least 2 points.")
  if max_points < 2:
    raise ValueError(f"max_points must be >= 2, got {max_points}.")
  if x.shape[0] > max_points:
    keep = np.random.default_rng(seed).choice(x.shape[0], max_points,
                                              replace=False)
    x = x[np.sort(keep)]
  z = l2_normalize(x)
  n = z.shape[0]
  # log-sum-exp over the upper triangle, block by block.
  running_max, running_sum = -np.inf, 0.0
  for start in range(0, n, chunk):
    block = z[start:start + chunk]
    sq = np.maximum(2.0 - 2.0 * block @ z.T, 0.0)  # unit vectors
    rows = np.arange(start, start + block.shape[0])[:, None]
    upper = np.arange(n)[None, :] > rows
    values = -t * sq[upper]
    if values.size == 0:
      continue
    m = values.max()
    if m > running_max:
      running_sum *= np.exp(running_max - m)
      running_max = m
    running_sum += np.exp(values - running_max).sum()
  num_pairs = n * (n - 1) / 2
  return float(running_max + np.log(running_sum) - np.log(num_pairs))


def closest_interest(queries, targets) -> np.ndarray:
  """For ``(n, K, d)`` queries, the interest of each row closest to its target.

  Args:
    queries: ``(n, d)`` (returned as is) or ``(n, K, d)`` user vectors.
    targets: ``(n, d)`` target vectors, row ``i`` paired with ``queries[i]``.

  Returns:
    ``(n, d)``: per row, the interest with the largest cosine to its target.
  """
  queries = np.asarray(queries)
  if queries.ndim == 2:
    return queries
  if queries.ndim != 3:
    raise ValueError(f"queries must be (n, d) or (n, K, d), got shape "
                     f"{queries.shape}.")
  cos = np.einsum("nkd,nd->nk", l2_normalize(queries),
                  l2_normalize(np.asarray(targets)))
  return queries[np.arange(queries.shape[0]), cos.argmax(axis=1)]


def user_target_pairs(targets: Sequence[np.ndarray]
                      ) -> Tuple[np.ndarray, np.ndarray]:
  """``(user row, item id)`` of every (user, target item) pair.

  Args:
    targets: One array of target item ids per user (0 = padding, dropped).

  Returns:
    Two int64 arrays of equal length.
  """
  rows, items = [], []
  for r, t in enumerate(targets):
    t = np.asarray(t, dtype=np.int64).reshape(-1)
    t = t[t > 0]
    rows.append(np.full(t.size, r, np.int64))
    items.append(t)
  if not rows:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  return np.concatenate(rows), np.concatenate(items)


def history_halves(histories: Sequence[np.ndarray], maxlen: int
                   ) -> Tuple[np.ndarray, List[np.ndarray], List[np.ndarray]]:
  """Two disjoint halves of each history, by alternating positions.

  Args:
    histories: One item id array per user, oldest first (0 = padding,
      dropped).
    maxlen: The tower's history length; the last ``min(len, 2 * maxlen)``
      items are used, so each half fits.

  Returns:
    ``(rows, first, second)``: the rows of the users with at least 2 items,
    and their halves (even and odd positions of the window, time order).
  """
  if maxlen < 1:
    raise ValueError(f"maxlen must be >= 1, got {maxlen}.")
  rows, first, second = [], [], []
  for r, h in enumerate(histories):
    h = np.asarray(h, dtype=np.int64).reshape(-1)
    h = h[h > 0][-2 * maxlen:]
    if h.size < 2:
      continue
    # Alternate from the newest item: `second` always holds it.
    odd_first = h.size % 2
    rows.append(r)
    first.append(h[odd_first::2])
    second.append(h[1 - odd_first::2])
  return np.asarray(rows, dtype=np.int64), first, second


def consecutive_pairs(sequences: Sequence[np.ndarray],
                      max_pairs: Optional[int] = None,
                      seed: int = 0) -> np.ndarray:
  """``(s[t], s[t+1])`` pairs of distinct consecutive items of each sequence.

  Args:
    sequences: Item id arrays, oldest first (0 = padding, dropped).
    max_pairs: Keep a seeded random subset of at most this many pairs.
    seed: Seed of that subset.

  Returns:
    int64 ``(p, 2)``.
  """
  pairs = []
  for s in sequences:
    s = np.asarray(s, dtype=np.int64).reshape(-1)
    s = s[s > 0]
    if s.size < 2:
      continue
    p = np.stack([s[:-1], s[1:]], axis=1)
    pairs.append(p[p[:, 0] != p[:, 1]])
  out = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
  if max_pairs is not None and out.shape[0] > max_pairs:
    keep = np.random.default_rng(seed).choice(out.shape[0], max_pairs,
                                              replace=False)
    out = out[np.sort(keep)]
  return out
