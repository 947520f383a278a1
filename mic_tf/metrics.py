"""Top-N retrieval metrics as the ComiRec protocol reports them.

Every metric is computed per user from a ranked list of retrieved item ids and
the user's ground-truth (target) items, then averaged over users. Notation for
one user and one cutoff ``N``:

* ``R = (r_0, r_1, ..)``: the retrieved ids, best first; ids ``<= 0`` (padding
  such as ``0`` or ``-1``) mean "nothing retrieved here" and never hit. The
  top-N list ``R_N`` is the first ``min(N, K)`` entries of a row of width ``K``;
  when ``N > K`` the row is simply treated as a shorter list.
* ``T = (t_0, t_1, ..)``: the ground-truth list in ground-truth (time) order.
* ``disc(i) = 1 / log2(i + 2)`` for a 0-based position ``i``;
  ``Z(m) = sum_{i < m} disc(i)`` (``Z(0) = 0``).

Metrics (``ndcg`` and ``ndcg_gt`` are 0 for a user without hits):

* ``recall@N = |{j : t_j in R_N}| / |T|`` (MIC paper eq. 9; with ``T`` a list,
  a repeated target counts once per occurrence, see ``target_mode``).
* ``hr@N = 1`` if any retrieved item in ``R_N`` is in ``T``, else ``0``.
* ``ndcg@N = DCG / IDCG`` with ``DCG = sum_{i < N} [r_i in T] disc(i)``: the
  hit is discounted by its rank in the *retrieved* list. This is the
  definition of the ComiRec paper and of ``evaluate_full`` in THUDM/ComiRec
  ``master`` (src/train.py). ``IDCG`` is ``Z(H)`` where ``H`` is the number of
  distinct retrieved hits (``idcg="hits"``, exactly what that code does), or
  the textbook ``Z(min(|set(T)|, N))`` (``idcg="ideal"``).
* ``ndcg_gt@N = DCG_gt / Z(H_gt)`` with
  ``DCG_gt = sum_j [t_j in R_N] disc(j)`` and ``H_gt = |{j : t_j in R_N}|``:
  the hit is discounted by the target's position in the *ground-truth* list.
  This is MIC paper eq. 10-11 (``delta_N(r)`` indicates that ground-truth item
  ``r`` is in the top N, ``i_r`` is its index in the ground-truth list, and the
  ideal list puts the retrieved ground-truth items first), and it is what the
  THUDM/ComiRec ``paper`` branch and the PyTorch port
  (ShiningCosmos/pytorch_ComiRec, single-interest path) compute.

``per_user_metrics`` returns per-user values in ``[0, 1]`` (for significance
tests); ``retrieval_metrics`` returns their means in percent, as the paper's
tables report them.
"""

from typing import Dict, Sequence, Tuple

import numpy as np

TARGET_MODES = ("list", "set", "comirec_master")
IDCG_MODES = ("hits", "ideal")
METRIC_NAMES = ("recall", "hr", "ndcg", "ndcg_gt")


def _discounts(length: int) -> np.ndarray:
  """Returns ``disc(i) = 1 / log2(i + 2)`` for ``i = 0 .. length - 1``."""
  return 1.0 / np.log2(np.arange(length, dtype=np.float64) + 2.0)


def _cumulative_discounts(length: int) -> np.ndarray:
  """Returns ``Z(m)`` for ``m = 0 .. length`` (``Z(0) = 0``)."""
  return np.concatenate([[0.0], np.cumsum(_discounts(length))])


def check_cutoffs(cutoffs: Sequence[int]) -> Tuple[int, ...]:
  """Validates metric cutoffs and returns them as a tuple of ints.

  Raises:
    ValueError: If ``cutoffs`` is empty or holds a non-positive integer.
  """
  cutoffs = tuple(cutoffs)
  if not cutoffs:
    raise ValueError("cutoffs is empty: pass at least one N, e.g. (20, 50).")
  for n in cutoffs:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
      raise ValueError(
          f"cutoffs must be positive integers, got {cutoffs!r}; pass e.g. "
          "(20, 50).")
  return tuple(int(n) for n in cutoffs)


def _check_retrieved(retrieved) -> np.ndarray:
  retrieved = np.asarray(retrieved)
  if retrieved.ndim != 2:
    raise ValueError(
        f"retrieved must be a 2-D array (num_users, K) of item ids, got shape "
        f"{retrieved.shape}; stack each user's ranked list into one row.")
  if retrieved.size and not np.issubdtype(retrieved.dtype, np.integer):
    raise ValueError(
        f"retrieved must hold integer item ids, got dtype {retrieved.dtype}; "
        "cast it with .astype(np.int64).")
  return retrieved.astype(np.int64, copy=False)


def _flatten_targets(
    targets: Sequence[np.ndarray],
    num_users: int) -> Tuple[np.ndarray, np.ndarray]:
  """Returns ``(user_of_entry, item_of_entry)`` for all targets, in order."""
  if len(targets) != num_users:
    raise ValueError(
        f"targets has {len(targets)} users but retrieved has {num_users} rows; "
        "pass one target array per retrieved row, in the same order.")
  arrays = [np.asarray(t).reshape(-1) for t in targets]
  lengths = np.array([a.size for a in arrays], dtype=np.int64)
  empty = np.flatnonzero(lengths == 0)
  if empty.size:
    raise ValueError(
        f"{empty.size} user(s) have no targets (first: row {empty[0]}); "
        "metrics are undefined for them. Drop those users before evaluating "
        "(the ComiRec split gives every user >= 1 target when sequences have "
        ">= 2 items).")
  items = np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
  if items.size and not np.issubdtype(items.dtype, np.integer):
    raise ValueError(
        f"targets must hold integer item ids, got dtype {items.dtype}.")
  items = items.astype(np.int64, copy=False)
  if items.size and items.min() <= 0:
    raise ValueError(
        "targets contain ids <= 0 (padding); pass only real item ids "
        "(1 .. num_items - 1) without padding.")
  users = np.repeat(np.arange(num_users, dtype=np.int64), lengths)
  return users, items


def _dedupe_keep_first(keys: np.ndarray) -> np.ndarray:
  """Returns the sorted indices of the first occurrence of each key."""
  _, first = np.unique(keys, return_index=True)
  return np.sort(first)


def _target_ranks(sorted_keys: np.ndarray, sorted_ranks: np.ndarray,
                  query_keys: np.ndarray, absent: int) -> np.ndarray:
  """Looks up each query key's rank; ``absent`` where it was not retrieved."""
  if sorted_keys.size == 0:
    return np.full(query_keys.shape, absent, dtype=np.int64)
  pos = np.minimum(np.searchsorted(sorted_keys, query_keys),
                   sorted_keys.size - 1)
  return np.where(sorted_keys[pos] == query_keys, sorted_ranks[pos], absent)


def per_user_metrics(
    retrieved: np.ndarray,
    targets: Sequence[np.ndarray],
    cutoffs: Sequence[int] = (20, 50),
    target_mode: str = "list",
    idcg: str = "hits") -> Dict[str, np.ndarray]:
  """Computes every metric for every user (values in ``[0, 1]``).

  See the module docstring for the formulas.

  Args:
    retrieved: ``(U, K)`` integer item ids ranked best first. Ids ``<= 0`` are
      padding ("nothing") and never hit. The real ids of a row must be
      distinct.
    targets: ``U`` non-empty integer arrays, each user's ground-truth item ids
      in ground-truth order (ids ``>= 1``).
    cutoffs: The ``N`` values.
    target_mode: How repeated target items count (only matters when a
      target list has duplicates, e.g. repeated clicks on Taobao):
      ``"list"`` (default): every occurrence counts, ``recall = |{j : t_j in
      R_N}| / |T|`` and ``ndcg_gt`` walks the full list (ComiRec ``paper``
      branch / PyTorch port). ``"set"``: the list is first reduced to the
      first occurrence of each item (MIC paper eq. 9 with ``I_u`` a set).
      ``"comirec_master"``: ``recall = (distinct retrieved hits) / |T|`` with
      ``|T|`` counting duplicates, exactly THUDM/ComiRec ``master``
      ``evaluate_full`` (can stay below 1 even if all targets are retrieved);
      ``ndcg_gt`` as in ``"list"``. ``hr`` and ``ndcg`` do not depend on it.
    idcg: IDCG of ``ndcg``: ``"hits"`` (ComiRec code: ``Z(number of distinct
      retrieved hits)``) or ``"ideal"`` (``Z(min(|set(T)|, N))``).

  Returns:
    Dict from ``"<metric>@<N>"`` (metric in ``recall``, ``hr``, ``ndcg``,
    ``ndcg_gt``) to a float64 array of shape ``(U,)``.

  Raises:
    ValueError: On malformed inputs, users without targets, repeated real ids
      in a retrieved row, padding ids in targets, or an unknown mode.
  """
  cutoffs = check_cutoffs(cutoffs)
  if target_mode not in TARGET_MODES:
    raise ValueError(
        f"target_mode={target_mode!r} is unknown; use one of {TARGET_MODES}.")
  if idcg not in IDCG_MODES:
    raise ValueError(f"idcg={idcg!r} is unknown; use one of {IDCG_MODES}.")
  retrieved = _check_retrieved(retrieved)
  num_users, width = retrieved.shape
  if num_users == 0:
    raise ValueError("retrieved has no rows: pass at least one user.")
  t_user, t_item = _flatten_targets(targets, num_users)

  # One integer key per (user, item) pair so that set operations over all
  # users run as single vectorised numpy calls.
  stride = int(max(retrieved.max(initial=0), t_item.max(initial=0))) + 1
  t_keys = t_user * stride + t_item
  if target_mode == "set":
    keep = _dedupe_keep_first(t_keys)
    t_user, t_item, t_keys = t_user[keep], t_item[keep], t_keys[keep]
  t_len = np.bincount(t_user, minlength=num_users).astype(np.int64)
  t_starts = np.concatenate([[0], np.cumsum(t_len)[:-1]])
  t_pos = np.arange(t_user.size, dtype=np.int64) - t_starts[t_user]
  unique_t_keys = np.unique(t_keys)
  t_unique_len = np.bincount(unique_t_keys // stride, minlength=num_users)

  r_valid = retrieved > 0
  r_keys = np.where(
      r_valid,
      np.arange(num_users, dtype=np.int64)[:, None] * stride + retrieved, -1)
  valid_keys = r_keys[r_valid]
  order = np.argsort(valid_keys, kind="stable")
  sorted_keys = valid_keys[order]
  if sorted_keys.size > 1 and np.any(sorted_keys[1:] == sorted_keys[:-1]):
    row = int(sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]][0] // stride)
    raise ValueError(
        f"retrieved row {row} repeats an item id; each row must list distinct "
        "items (deduplicate candidates before computing metrics).")
  sorted_ranks = np.nonzero(r_valid)[1][order]

  t_rank = _target_ranks(sorted_keys, sorted_ranks, t_keys, absent=width)
  # Whether each retrieved slot is a hit (independent of N).
  r_hit = r_valid & np.isin(r_keys, unique_t_keys)

  longest = max(max(cutoffs), int(t_len.max(initial=0)))
  disc = _discounts(longest)
  cum = _cumulative_discounts(longest)
  t_disc = disc[t_pos]

  out = {}
  for n in cutoffs:
    n_eff = min(n, width)
    hits_r = r_hit[:, :n_eff]
    distinct_hits = hits_r.sum(axis=1)
    t_hit = t_rank < n_eff
    hits_t = np.bincount(t_user, weights=t_hit, minlength=num_users)
    if target_mode == "comirec_master":
      recall = distinct_hits / t_len
    else:
      recall = hits_t / t_len
    dcg = (hits_r * disc[:n_eff]).sum(axis=1)
    if idcg == "hits":
      ideal = cum[distinct_hits]
    else:
      ideal = cum[np.minimum(t_unique_len, n)]
    dcg_gt = np.bincount(t_user, weights=t_hit * t_disc, minlength=num_users)
    ideal_gt = cum[hits_t.astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
      ndcg = np.where(distinct_hits > 0, dcg / ideal, 0.0)
      ndcg_gt = np.where(hits_t > 0, dcg_gt / ideal_gt, 0.0)
    out[f"recall@{n}"] = recall.astype(np.float64)
    out[f"hr@{n}"] = (distinct_hits > 0).astype(np.float64)
    out[f"ndcg@{n}"] = ndcg
    out[f"ndcg_gt@{n}"] = ndcg_gt
  return out


def retrieval_metrics(
    retrieved: np.ndarray,
    targets: Sequence[np.ndarray],
    cutoffs: Sequence[int] = (20, 50),
    target_mode: str = "list",
    idcg: str = "hits") -> Dict[str, float]:
  """Per-user-averaged retrieval metrics, in percent.

  Args:
    retrieved: ``(U, K)`` integer item ids ranked best first; ids ``<= 0``
      are padding.
    targets: ``U`` non-empty integer arrays of ground-truth item ids.
    cutoffs: The ``N`` values.
    target_mode: See ``per_user_metrics``.
    idcg: See ``per_user_metrics``.

  Returns:
    Dict ``{"recall@N", "hr@N", "ndcg@N", "ndcg_gt@N"}`` for each ``N`` ->
    ``100 * mean over users`` (a Python float).

  Raises:
    ValueError: See ``per_user_metrics``.
  """
  per_user = per_user_metrics(
      retrieved, targets, cutoffs, target_mode=target_mode, idcg=idcg)
  return {name: float(100.0 * values.mean())
          for name, values in per_user.items()}
