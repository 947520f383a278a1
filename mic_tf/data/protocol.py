"""The ComiRec preprocessing protocol (Cen et al., KDD 2020).

``apply_comirec_protocol`` turns a ``RawDataset`` into a ``ProcessedDataset``
the way ComiRec's ``preprocess/data.py`` does, so that numbers are comparable:

1. Items are counted over all events (after the loader's own filters, e.g.
   Taobao's ``pv`` rows); items with fewer than ``min_item_count`` events are
   dropped (one pass).
2. Users with at least ``min_user_count`` events on kept items are kept (one
   pass). Items are *not* re-checked afterwards, so a kept item may end up
   with fewer than ``min_item_count`` events (or none): ComiRec keeps them in
   its item vocabulary, and so do we by default.
3. Item ids ``1..K`` follow descending event count; ties keep the order of
   first appearance in the file (ComiRec sorts a dict's items with Python's
   stable sort). By default (``item_popularity="all_events"``, ComiRec's
   rule) the counts are those of step 1; ``"kept_interactions"`` instead
   re-counts over the interactions that survive step 2 and drops items left
   with none.
4. Kept users, in order of first appearance (ComiRec's dict order, not
   sorted), are shuffled with ``random.Random(split_seed).shuffle`` (the same
   permutation as ComiRec's ``random.seed(1230); random.shuffle(...)``); the
   user id is the position in the shuffled list and the first 80% / next 10%
   / last 10% (``int(n * 0.8)``, ``int(n * 0.9)`` cuts) are train / valid /
   test.
5. Each sequence holds the user's kept items stably sorted by timestamp
   (ties keep file order).

ComiRec does not drop repeated (user, item) events and neither do we by
default (``drop_duplicates=True`` keeps only the first occurrence).
MovieLens has no repeats.

Attributes are encoded per field: values seen among kept users/items, sorted,
become ``1..V-1``; ``0`` is missing. Bag columns become zero-padded
``(num_items, L)`` matrices.
"""

import random
from typing import Dict, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import pandas as pd

from mic_tf.data.dataset import ProcessedDataset
from mic_tf.data.dataset import RawDataset

ITEM_POPULARITY_MODES = ("all_events", "kept_interactions")


def _validate_arguments(min_item_count: int, min_user_count: int,
                        split: Sequence[float], item_popularity: str,
                        max_item_bag: Optional[int]) -> None:
  if min_item_count < 1 or min_user_count < 1:
    raise ValueError("min_item_count and min_user_count must be >= 1, got "
                     f"{min_item_count} and {min_user_count}.")
  if (len(split) != 3 or any(f < 0 for f in split) or
      abs(sum(split) - 1.0) > 1e-6):
    raise ValueError(f"split must be three non-negative fractions summing to "
                     f"1 (train, valid, test), got {tuple(split)}.")
  if item_popularity not in ITEM_POPULARITY_MODES:
    raise ValueError(f"item_popularity must be one of {ITEM_POPULARITY_MODES}"
                     f", got {item_popularity!r}.")
  if max_item_bag is not None and max_item_bag < 1:
    raise ValueError(f"max_item_bag must be >= 1 or None, got {max_item_bag}.")


def _validate_interactions(raw: RawDataset) -> pd.DataFrame:
  inter = raw.interactions
  missing = [c for c in ("user", "item", "timestamp") if c not in inter.columns]
  if missing:
    raise ValueError(f"{raw.name}: interactions lack columns {missing} (have "
                     f"{list(inter.columns)}); loaders must name them user, "
                     "item, timestamp.")
  if inter.empty:
    raise ValueError(f"{raw.name}: the interactions table is empty.")
  for column in ("user", "item"):
    if inter[column].isna().any():
      raise ValueError(f"{raw.name}: {int(inter[column].isna().sum())} "
                       f"interactions have a missing {column} id; drop them "
                       "before the protocol.")
  if not pd.api.types.is_numeric_dtype(inter["timestamp"]):
    raise ValueError(f"{raw.name}: timestamps must be numeric (got dtype "
                     f"{inter['timestamp'].dtype}); convert them to epoch "
                     "seconds.")
  if inter["timestamp"].isna().any():
    raise ValueError(f"{raw.name}: {int(inter['timestamp'].isna().sum())} "
                     "interactions have no timestamp; drop or fill them.")
  return inter


def _popularity_order(counts: np.ndarray, keep: np.ndarray) -> np.ndarray:
  """Codes with ``keep`` by descending count, ties by ascending code.

  Codes number items by first appearance, so ties keep file order.
  """
  candidates = np.flatnonzero(keep)
  return candidates[np.argsort(-counts[candidates], kind="stable")]


def _shuffled_users(user_keep: np.ndarray, seed: int) -> np.ndarray:
  """Kept user codes (first-appearance order) shuffled as ComiRec does.

  ``random.shuffle``'s permutation depends only on the list length and the
  generator state, so shuffling positions equals shuffling ComiRec's list of
  raw ids after ``random.seed(seed)``.
  """
  kept_users = np.flatnonzero(user_keep)
  permutation = list(range(len(kept_users)))
  random.Random(seed).shuffle(permutation)
  return kept_users[np.asarray(permutation, dtype=np.int64)]


def _sequences(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray,
               num_users: int) -> list:
  """Per-user int32 item arrays, stably sorted by time (ties: file order)."""
  by_time = np.argsort(timestamps, kind="stable")
  by_user = by_time[np.argsort(users[by_time], kind="stable")]
  lengths = np.bincount(users, minlength=num_users)
  return np.split(items[by_user].astype(np.int32), np.cumsum(lengths)[:-1])


def _split_cuts(num_users: int, split: Sequence[float]) -> Tuple[int, int]:
  # round() makes 0.8 + 0.1 exactly 0.9, as in ComiRec's int(n * 0.9).
  return (int(num_users * split[0]),
          int(num_users * round(split[0] + split[1], 12)))


def _sort_key(value):
  return (type(value).__name__, str(value))


def _sorted_vocab(values) -> list:
  uniques = list(values)
  try:
    return sorted(uniques)
  except TypeError:
    return sorted(uniques, key=_sort_key)


def _categorical_vocab(values: pd.Series) -> list:
  """The sorted distinct non-missing values; value i gets code i + 1."""
  return _sorted_vocab(pd.unique(values.dropna().to_numpy(dtype=object)))


def _encode_categorical(values: pd.Series) -> Tuple[np.ndarray, int]:
  """Maps values to 1..V-1 (sorted), missing to 0; returns codes and V."""
  vocab = _categorical_vocab(values)
  codes = pd.Categorical(values.to_numpy(dtype=object),
                         categories=pd.Index(vocab, dtype=object)).codes
  return (codes.astype(np.int32) + 1), len(vocab) + 1


def _is_missing(value) -> bool:
  return value is None or (np.isscalar(value) and pd.isna(value))


def _as_tokens(value, column: str) -> list:
  """A bag cell as a list of distinct tokens in order (missing: empty)."""
  if _is_missing(value):
    return []
  if isinstance(value, (str, bytes)):
    raise ValueError(
        f"Bag column {column!r} holds a string ({value!r}) instead of a list "
        "of tokens; split it in the loader (e.g. bag_separator).")
  tokens = []
  for token in value:
    if not _is_missing(token) and token not in tokens:
      tokens.append(token)
  return tokens


def _encode_bag(values: pd.Series, column: str,
                max_len: Optional[int]) -> Tuple[np.ndarray, int]:
  """Token lists -> zero-padded (n, L) ids (sorted vocab) and vocab size."""
  bags = [_as_tokens(v, column)[:max_len] for v in values]
  vocab = _sorted_vocab({t for bag in bags for t in bag})
  index = {token: i + 1 for i, token in enumerate(vocab)}
  width = max([1] + [len(bag) for bag in bags])
  matrix = np.zeros((len(bags), width), dtype=np.int32)
  for row, bag in enumerate(bags):
    matrix[row, :len(bag)] = [index[t] for t in bag]
  return matrix, len(vocab) + 1


def _aligned_table(table: pd.DataFrame, ids: np.ndarray, kind: str,
                   name: str) -> pd.DataFrame:
  """Rows of ``table`` for ``ids`` (NaN rows for ids not in the table)."""
  if table.index.has_duplicates:
    dupes = table.index[table.index.duplicated()].unique()[:3].tolist()
    raise ValueError(f"{name}: {kind}_features has duplicate ids (e.g. "
                     f"{dupes}); keep one row per {kind}.")
  aligned = table.reindex(pd.Index(ids, dtype=object))
  found = np.asarray(pd.Index(ids, dtype=object).isin(table.index))
  if len(table) and len(ids) and not found.any():
    raise ValueError(
        f"{name}: no kept {kind} id appears in {kind}_features (e.g. "
        f"interactions use {ids[0]!r}, the table {table.index[0]!r}); make "
        "the id types agree.")
  if not found.all():
    logging.warning("%s: %d of %d kept %ss have no %s_features row; their "
                    "attributes are 0 (missing).", name,
                    int((~found).sum()), len(ids), kind, kind)
  return aligned


def _encode_user_features(raw: RawDataset, raw_user_ids: np.ndarray):
  """Codes, vocabulary sizes and vocabularies (code -> raw value)."""
  features, vocab_sizes, vocabs = {}, {}, {}
  if raw.user_features is None:
    return features, vocab_sizes, vocabs
  table = _aligned_table(raw.user_features, raw_user_ids, "user", raw.name)
  for column in table.columns:
    features[column], vocab_sizes[column] = _encode_categorical(table[column])
    vocab = np.empty(vocab_sizes[column], dtype=object)
    vocab[1:] = _categorical_vocab(table[column])
    vocabs[column] = vocab
  return features, vocab_sizes, vocabs


def _encode_item_features(raw: RawDataset, raw_item_ids: np.ndarray,
                          max_item_bag: Optional[int]):
  """Encodes item attributes for ids 1..K; row 0 (padding) stays zero."""
  features, vocab_sizes = {}, {}
  if raw.item_features is None:
    if raw.item_bag_columns:
      raise ValueError(f"{raw.name}: item_bag_columns "
                       f"{raw.item_bag_columns} given without item_features.")
    return features, vocab_sizes
  missing = [c for c in raw.item_bag_columns
             if c not in raw.item_features.columns]
  if missing:
    raise ValueError(f"{raw.name}: item_bag_columns {missing} are not "
                     "item_features columns "
                     f"{list(raw.item_features.columns)}.")
  table = _aligned_table(raw.item_features, raw_item_ids[1:], "item",
                         raw.name)
  for column in table.columns:
    if column in raw.item_bag_columns:
      matrix, vocab_sizes[column] = _encode_bag(table[column], column,
                                                max_item_bag)
      padded = np.zeros((len(raw_item_ids), matrix.shape[1]), np.int32)
    else:
      matrix, vocab_sizes[column] = _encode_categorical(table[column])
      padded = np.zeros((len(raw_item_ids),), np.int32)
    padded[1:] = matrix
    features[column] = padded
  return features, vocab_sizes


def apply_comirec_protocol(
    raw: RawDataset,
    min_item_count: int = 5,
    min_user_count: int = 5,
    split_seed: int = 1230,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    max_item_bag: Optional[int] = 16,
    item_popularity: str = "all_events",
    drop_duplicates: bool = False) -> ProcessedDataset:
  """Filters, re-indexes, orders and splits a raw dataset as ComiRec does.

  See the module docstring for the exact rules.

  Args:
    raw: Loader output.
    min_item_count: Items with fewer events are dropped (first pass).
    min_user_count: Users with fewer events on kept items are dropped
      (second pass).
    split_seed: Seed of ``random.Random`` shuffling the kept users.
    split: (train, valid, test) fractions of users.
    max_item_bag: Longest bag kept per item (first tokens win); None keeps
      all.
    item_popularity: ``"all_events"`` (ComiRec) or ``"kept_interactions"``;
      which counts order the item ids (see module docstring).
    drop_duplicates: Keep only the first event of each (user, item) pair.

  Returns:
    The ProcessedDataset.

  Raises:
    ValueError: On missing columns, non-numeric timestamps, bad arguments or
      when a threshold leaves no data.
  """
  _validate_arguments(min_item_count, min_user_count, split, item_popularity,
                      max_item_bag)
  inter = _validate_interactions(raw)
  if drop_duplicates:
    inter = inter.drop_duplicates(subset=["user", "item"], keep="first")

  item_codes, item_uniques = pd.factorize(inter["item"], sort=False)
  user_codes, user_uniques = pd.factorize(inter["user"], sort=False)
  timestamps = inter["timestamp"].to_numpy()

  item_counts = np.bincount(item_codes, minlength=len(item_uniques))
  item_keep = item_counts >= min_item_count
  if not item_keep.any():
    raise ValueError(
        f"{raw.name}: no item has >= min_item_count={min_item_count} "
        f"interactions (the most popular has {item_counts.max()}); lower "
        "min_item_count.")
  event_keep = item_keep[item_codes]
  user_counts = np.bincount(user_codes[event_keep],
                            minlength=len(user_uniques))
  user_keep = user_counts >= min_user_count
  if not user_keep.any():
    raise ValueError(
        f"{raw.name}: no user has >= min_user_count={min_user_count} "
        f"interactions on the items kept by min_item_count={min_item_count} "
        f"(the most active has {user_counts.max()}); lower min_user_count.")
  event_keep &= user_keep[user_codes]

  shuffled_users = _shuffled_users(user_keep, split_seed)
  user_id_of_code = np.full(len(user_uniques), -1, dtype=np.int64)
  user_id_of_code[shuffled_users] = np.arange(len(shuffled_users))

  # Items: descending popularity, ties by first appearance.
  if item_popularity == "all_events":
    item_order = _popularity_order(item_counts, item_keep)
  else:
    kept_counts = np.bincount(item_codes[event_keep],
                              minlength=len(item_uniques))
    item_order = _popularity_order(kept_counts, kept_counts > 0)
  item_id_of_code = np.zeros(len(item_uniques), dtype=np.int64)
  item_id_of_code[item_order] = np.arange(1, len(item_order) + 1)

  sequences = _sequences(user_id_of_code[user_codes[event_keep]],
                         item_id_of_code[item_codes[event_keep]],
                         timestamps[event_keep], len(shuffled_users))

  num_users = len(shuffled_users)
  cut_1, cut_2 = _split_cuts(num_users, split)
  raw_user_ids = np.empty(num_users, dtype=object)
  raw_user_ids[:] = list(user_uniques.take(shuffled_users))
  raw_item_ids = np.empty(len(item_order) + 1, dtype=object)
  raw_item_ids[1:] = list(item_uniques.take(item_order))

  user_features, user_vocab_sizes, user_vocabs = _encode_user_features(
      raw, raw_user_ids)
  item_features, item_vocab_sizes = _encode_item_features(
      raw, raw_item_ids, max_item_bag)
  dataset = ProcessedDataset(
      name=raw.name,
      num_items=len(item_order) + 1,
      sequences=sequences,
      train_users=np.arange(0, cut_1, dtype=np.int32),
      valid_users=np.arange(cut_1, cut_2, dtype=np.int32),
      test_users=np.arange(cut_2, num_users, dtype=np.int32),
      user_features=user_features,
      user_vocab_sizes=user_vocab_sizes,
      item_features=item_features,
      item_vocab_sizes=item_vocab_sizes,
      raw_user_ids=raw_user_ids,
      raw_item_ids=raw_item_ids,
      user_vocabs=user_vocabs)
  logging.info("%s", describe(dataset))
  return dataset


def describe(ds: ProcessedDataset) -> str:
  """One-paragraph summary: sizes, split and attribute vocabularies."""
  lengths = np.array([len(s) for s in ds.sequences], dtype=np.int64)

  def fields(vocab: Dict[str, int]) -> str:
    return ", ".join(f"{k} ({v})" for k, v in vocab.items()) or "none"

  return (
      f"{ds.name}: {ds.num_users:,} users, {ds.num_items - 1:,} items "
      f"(+ padding id 0), {ds.num_interactions:,} interactions; sequence "
      f"length min {lengths.min()}, median {int(np.median(lengths))}, max "
      f"{lengths.max()}. Users split train/valid/test = "
      f"{len(ds.train_users):,}/{len(ds.valid_users):,}/"
      f"{len(ds.test_users):,}. User fields (vocab incl. 0): "
      f"{fields(ds.user_vocab_sizes)}. Item fields: "
      f"{fields(ds.item_vocab_sizes)}.")
