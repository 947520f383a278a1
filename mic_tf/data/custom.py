"""Bring-your-own data: interactions (and attributes) from CSV or Parquet.

Files ending in ``.parquet``/``.pq`` are read with pyarrow; anything else as
CSV (pandas infers ``.gz``/``.zip`` compression). Timestamps must be numeric
(for example epoch seconds); Parquet/CSV datetime columns are not guessed,
except that a Parquet ``datetime64`` column is converted to epoch seconds.
"""

import os
import pathlib
from typing import Optional, Sequence, Union

import numpy as np
import pandas as pd

from mic_tf.data.dataset import RawDataset

PathLike = Union[str, os.PathLike]

_PARQUET_SUFFIXES = (".parquet", ".pq")


def read_table(path: PathLike, what: str) -> pd.DataFrame:
  """Reads a CSV or Parquet file (by suffix).

  Args:
    path: The file.
    what: What the file holds, for error messages.

  Returns:
    The table.

  Raises:
    FileNotFoundError: If the file is missing.
    IsADirectoryError: If ``path`` is a directory.
    ValueError: If it cannot be parsed.
  """
  path = pathlib.Path(path)
  if path.is_dir():
    raise IsADirectoryError(
        f"The {what} file {path} is a directory; pass the path of the .csv "
        f"or .parquet file itself{_tables_in(path)}.")
  if not path.is_file():
    raise FileNotFoundError(f"The {what} file {path} does not exist; pass the "
                            "path of a .csv or .parquet file.")
  parquet = path.suffix.lower() in _PARQUET_SUFFIXES
  try:
    return pd.read_parquet(path) if parquet else pd.read_csv(path)
  except (ValueError, OSError) as error:  # pandas/pyarrow parse errors
    detail = " ".join(str(error).split())[:200]
    kind = "Parquet" if parquet else "CSV"
    raise ValueError(
        f"The {what} file {path} is not a readable {kind} file ({detail}); "
        "pass a comma-separated .csv with a header row, or a .parquet "
        "file.") from error


def _tables_in(directory: pathlib.Path) -> str:
  """", e.g. <dir>/a.csv" naming tables in ``directory`` (or nothing)."""
  found = sorted(p for p in directory.iterdir() if p.is_file() and (
      p.suffix.lower() in _PARQUET_SUFFIXES + (".csv",)
      or p.name.lower().endswith((".csv.gz", ".csv.zip"))))
  return f", e.g. {found[0]}" if found else ""


def _require_columns(table: pd.DataFrame, columns: Sequence[str], path,
                     argument_names: Sequence[str]) -> None:
  for column, argument in zip(columns, argument_names):
    if column not in table.columns:
      raise ValueError(
          f"{path} has no column {column!r} (from {argument}); its columns "
          f"are {list(table.columns)}. Pass {argument}=<the right name>.")


def _numeric_timestamps(values: pd.Series, path) -> np.ndarray:
  if pd.api.types.is_datetime64_any_dtype(values):
    if values.isna().any():
      raise ValueError(f"{path}: {int(values.isna().sum())} timestamps are "
                       "missing; drop or fill those rows.")
    return (values.astype("datetime64[s]").astype(np.int64)).to_numpy()
  if not pd.api.types.is_numeric_dtype(values):
    raise ValueError(
        f"{path}: the timestamp column {values.name!r} is not numeric (dtype "
        f"{values.dtype}, e.g. {values.iloc[0]!r}); convert it to epoch "
        "seconds (e.g. pd.to_datetime(col).astype('int64') // 10**9).")
  if values.isna().any():
    raise ValueError(f"{path}: {int(values.isna().sum())} timestamps are "
                     "missing; drop or fill those rows.")
  return values.to_numpy()


def _feature_table(path: PathLike, key: str, key_argument: str, what: str,
                   bag_columns: Sequence[str] = (),
                   bag_separator: str = "|") -> pd.DataFrame:
  table = read_table(path, what)
  _require_columns(table, [key], path, [key_argument])
  _require_columns(table, bag_columns, path,
                   ["item_bag_columns"] * len(bag_columns))
  if table[key].isna().any():
    raise ValueError(f"{path}: {int(table[key].isna().sum())} rows have no "
                     f"{key!r}; drop them.")
  if table[key].duplicated().any():
    dupes = table.loc[table[key].duplicated(), key].head(3).tolist()
    raise ValueError(f"{path}: {key!r} repeats (e.g. {dupes}); keep one row "
                     f"per {what.split()[0]}.")
  table = table.set_index(key)
  for column in bag_columns:
    table[column] = table[column].map(
        lambda value: _bag(value, bag_separator))
  return table


def _bag(value, separator: str) -> list:
  if isinstance(value, str):
    return [t.strip() for t in value.split(separator) if t.strip()]
  if value is None or (np.isscalar(value) and pd.isna(value)):
    return []
  return list(value)  # Parquet list column.


def load_interactions_table(
    path: PathLike,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str = "timestamp",
    user_features_path: Optional[PathLike] = None,
    item_features_path: Optional[PathLike] = None,
    user_key: str = "user",
    item_key: str = "item",
    item_bag_columns: Sequence[str] = (),
    bag_separator: str = "|",
    name: str = "custom") -> RawDataset:
  """Loads a user-item-timestamp table and optional attribute tables.

  Every column of an attribute table other than its key is a categorical
  attribute, except ``item_bag_columns``: strings split on ``bag_separator``
  (or Parquet lists) into token lists.

  Args:
    path: Interactions, ``.csv`` or ``.parquet``; one row per event.
    user_col: Column with user ids.
    item_col: Column with item ids.
    time_col: Column with numeric timestamps.
    user_features_path: Optional user attribute table.
    item_features_path: Optional item attribute table.
    user_key: User id column of ``user_features_path``.
    item_key: Item id column of ``item_features_path``.
    item_bag_columns: Item columns holding token lists.
    bag_separator: Token separator in string bag columns.
    name: Dataset name.

  Returns:
    The RawDataset, rows in file order.

  Raises:
    FileNotFoundError: If a file is missing.
    ValueError: If a column is missing, ids are missing, timestamps are not
      numeric or attribute keys repeat.
  """
  table = read_table(path, "interactions")
  _require_columns(table, [user_col, item_col, time_col], path,
                   ["user_col", "item_col", "time_col"])
  for column in (user_col, item_col):
    if table[column].isna().any():
      raise ValueError(f"{path}: {int(table[column].isna().sum())} rows have "
                       f"no {column!r}; drop them.")
  if table.empty:
    raise ValueError(f"{path} has no rows.")
  interactions = pd.DataFrame({
      "user": table[user_col].to_numpy(),
      "item": table[item_col].to_numpy(),
      "timestamp": _numeric_timestamps(table[time_col], path),
  })
  user_features = None
  if user_features_path is not None:
    user_features = _feature_table(user_features_path, user_key, "user_key",
                                   "user features")
  item_features = None
  if item_features_path is not None:
    item_features = _feature_table(item_features_path, item_key, "item_key",
                                   "item features", item_bag_columns,
                                   bag_separator)
  elif item_bag_columns:
    raise ValueError("item_bag_columns given without item_features_path.")
  return RawDataset(name=name, interactions=interactions,
                    user_features=user_features, item_features=item_features,
                    item_bag_columns=list(item_bag_columns))
