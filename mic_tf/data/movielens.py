"""MovieLens loaders: RecBole atomic files and official GroupLens files.

Both loaders return the same features, so a model sees one schema:

* user features: ``age`` (ML-1M bucket codes 1, 18, 25, 35, 45, 50, 56 for
  <18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+; ML-100k's numeric ages are
  bucketed the same way), ``gender`` and ``occupation``;
* item features: ``genres`` (bag of genre tokens) and ``year`` (release
  decade, clamped to [1920, 2000]; NaN when unknown).

Raw ids are kept as the files spell them: RecBole's ML-1M uses movie titles as
item ids and ``1m_<n>`` as user ids; RecBole ids are read as strings and
GroupLens ids as integers.
"""

import csv
import io
import os
import pathlib
import re
import zipfile
from typing import List, Optional, Sequence, Union

import numpy as np
import pandas as pd

from mic_tf.data.dataset import RawDataset

PathLike = Union[str, os.PathLike]

# ML-1M's age codes, each the lower bound of its bucket.
AGE_BUCKETS = (1, 18, 25, 35, 45, 50, 56)
_AGE_UPPER_BOUNDS = (18, 25, 35, 45, 50, 56)  # exclusive upper bounds
YEAR_MIN_DECADE = 1920
YEAR_MAX_DECADE = 2000
# Genre flag columns of ML-100k's u.item, in file order.
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's",
                 "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
                 "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
                 "Sci-Fi", "Thriller", "War", "Western")
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")


def age_bucket(ages: pd.Series) -> pd.Series:
  """Maps ages in years to ML-1M's bucket codes (idempotent on the codes).

  Args:
    ages: Ages (numeric or numeric strings); unparsable values become NaN.

  Returns:
    Float series of codes from ``AGE_BUCKETS`` (NaN where unknown).
  """
  values = pd.to_numeric(ages, errors="coerce").to_numpy(dtype=np.float64)
  codes = np.asarray(AGE_BUCKETS, dtype=np.float64)[np.searchsorted(
      _AGE_UPPER_BOUNDS, values, side="right").clip(0, len(AGE_BUCKETS) - 1)]
  codes[np.isnan(values)] = np.nan
  return pd.Series(codes, index=ages.index, name=ages.name)


def decade_bucket(years: pd.Series) -> pd.Series:
  """Maps release years to decades clamped to [1920, 2000]; NaN if unknown."""
  values = pd.to_numeric(years, errors="coerce").to_numpy(dtype=np.float64)
  decades = np.clip(np.floor(values / 10.0) * 10.0, YEAR_MIN_DECADE,
                    YEAR_MAX_DECADE)
  return pd.Series(decades, index=years.index, name=years.name)


def _split_tokens(values: pd.Series, separator: Optional[str]) -> pd.Series:
  """Splits strings into token lists (``None`` separator: whitespace)."""
  return values.fillna("").map(
      lambda text: [t for t in str(text).split(separator) if t])


def _year_from_title(titles: pd.Series) -> pd.Series:
  return titles.astype(str).str.extract(_TITLE_YEAR, expand=False)


def _user_table(ids, age, gender, occupation) -> pd.DataFrame:
  table = pd.DataFrame(
      {
          "age": age_bucket(pd.Series(np.asarray(age, dtype=object))).values,
          "gender": np.asarray(gender, dtype=object),
          "occupation": np.asarray(occupation, dtype=object),
      },
      index=pd.Index(ids, name="user"))
  return table[~table.index.duplicated(keep="first")]


def _item_table(ids, genres: pd.Series, years) -> pd.DataFrame:
  table = pd.DataFrame(
      {
          "genres": list(genres),
          "year": decade_bucket(pd.Series(np.asarray(years, dtype=object)))
                  .values,
      },
      index=pd.Index(ids, name="item"))
  return table[~table.index.duplicated(keep="first")]


def _interactions(users, items, timestamps, source: str) -> pd.DataFrame:
  times = pd.to_numeric(pd.Series(timestamps), errors="coerce")
  if times.isna().any():
    raise ValueError(f"{source} has non-numeric timestamps (first at row "
                     f"{int(np.flatnonzero(times.isna())[0])}); the file is "
                     "truncated or not in the expected format.")
  return pd.DataFrame({
      "user": np.asarray(users, dtype=object),
      "item": np.asarray(items, dtype=object),
      "timestamp": times.to_numpy()
  })


# --------------------------------------------------------------------------
# RecBole atomic files.


def _read_atomic(path: pathlib.Path) -> pd.DataFrame:
  """Reads a RecBole atomic file; strips the ``:type`` suffix of headers."""
  if not path.exists():
    raise FileNotFoundError(
        f"{path} not found. Fetch it with mic_tf.data.fetch_movielens() or "
        "point the loader at the directory holding the RecBole files.")
  table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False,
                      quoting=csv.QUOTE_NONE, encoding="utf-8")
  table.columns = [c.split(":", 1)[0] for c in table.columns]
  return table


def _require(table: pd.DataFrame, columns: Sequence[str], source) -> None:
  missing = [c for c in columns if c not in table.columns]
  if missing:
    raise ValueError(f"{source} lacks columns {missing}; it has "
                     f"{list(table.columns)}.")


def load_recbole_movielens(directory: PathLike, name: str) -> RawDataset:
  """Loads RecBole's ``<name>.inter/.user/.item`` MovieLens files.

  Args:
    directory: Directory holding the three files (see ``fetch_movielens``).
    name: File stem and dataset name, ``"ml-1m"`` or ``"ml-100k"``.

  Returns:
    The RawDataset with string raw ids, in file order.

  Raises:
    FileNotFoundError: If a file is missing.
    ValueError: If a file lacks an expected column.
  """
  directory = pathlib.Path(directory)
  inter_path = directory / f"{name}.inter"
  inter = _read_atomic(inter_path)
  _require(inter, ("user_id", "item_id", "timestamp"), inter_path)
  interactions = _interactions(inter["user_id"], inter["item_id"],
                               inter["timestamp"], inter_path)

  user_path = directory / f"{name}.user"
  users = _read_atomic(user_path)
  _require(users, ("user_id", "age", "gender", "occupation"), user_path)
  user_features = _user_table(users["user_id"], users["age"],
                              users["gender"], users["occupation"])

  item_path = directory / f"{name}.item"
  items = _read_atomic(item_path)
  genre_column = "genre" if "genre" in items.columns else "class"
  _require(items, ("item_id", "release_year", genre_column), item_path)
  item_features = _item_table(items["item_id"],
                              _split_tokens(items[genre_column], None),
                              items["release_year"])
  return RawDataset(name=name, interactions=interactions,
                    user_features=user_features, item_features=item_features,
                    item_bag_columns=["genres"])


# --------------------------------------------------------------------------
# Official GroupLens files.


class _Files:
  """Reads files by base name from a directory (or its subfolders) or zip."""

  def __init__(self, path: PathLike):
    self.path = pathlib.Path(path)
    if not self.path.exists():
      raise FileNotFoundError(
          f"{self.path} not found. Download ml-1m.zip or ml-100k.zip from "
          "https://grouplens.org/datasets/movielens/ and pass the zip or its "
          "extracted folder.")
    if self.path.is_file():
      if not zipfile.is_zipfile(self.path):
        raise ValueError(f"{self.path} is neither a directory nor a zip file.")
      with zipfile.ZipFile(self.path) as archive:
        self._names = {pathlib.PurePosixPath(n).name: n
                       for n in archive.namelist() if not n.endswith("/")}
    else:
      self._names = {}
      for found in sorted(self.path.rglob("*"), key=lambda p: len(p.parts),
                          reverse=True):
        if found.is_file():
          self._names[found.name] = found

  def has(self, base_name: str) -> bool:
    return base_name in self._names

  def read(self, base_name: str) -> bytes:
    if base_name not in self._names:
      raise FileNotFoundError(f"{base_name} not found in {self.path}.")
    if self.path.is_file():
      with zipfile.ZipFile(self.path) as archive:
        return archive.read(self._names[base_name])
    return pathlib.Path(self._names[base_name]).read_bytes()


def _read_delimited(data: bytes, separator: bytes,
                    names: List[str]) -> pd.DataFrame:
  """Parses latin-1 text split by a (possibly multi-byte) separator."""
  if len(separator) > 1:
    data = data.replace(separator, b"\t")
    separator = b"\t"
  return pd.read_csv(io.BytesIO(data), sep=separator.decode(), header=None,
                     names=names, dtype=str, keep_default_na=False,
                     quoting=csv.QUOTE_NONE, encoding="latin-1",
                     skip_blank_lines=True)


def _int_ids(values: pd.Series, source: str) -> np.ndarray:
  ids = pd.to_numeric(values, errors="coerce")
  if ids.isna().any():
    raise ValueError(f"{source} has non-integer ids (first at row "
                     f"{int(np.flatnonzero(ids.isna())[0])}).")
  return ids.to_numpy(dtype=np.int64).astype(object)


def _load_grouplens_1m(files: _Files, name: str) -> RawDataset:
  ratings = _read_delimited(files.read("ratings.dat"), b"::",
                            ["user", "item", "rating", "timestamp"])
  interactions = _interactions(_int_ids(ratings["user"], "ratings.dat"),
                               _int_ids(ratings["item"], "ratings.dat"),
                               ratings["timestamp"], "ratings.dat")
  user_features = None
  if files.has("users.dat"):
    users = _read_delimited(files.read("users.dat"), b"::",
                            ["user", "gender", "age", "occupation", "zip"])
    user_features = _user_table(
        _int_ids(users["user"], "users.dat"), users["age"], users["gender"],
        pd.to_numeric(users["occupation"], errors="coerce"))
  movies = _read_delimited(files.read("movies.dat"), b"::",
                           ["item", "title", "genres"])
  item_features = _item_table(_int_ids(movies["item"], "movies.dat"),
                              _split_tokens(movies["genres"], "|"),
                              _year_from_title(movies["title"]))
  return RawDataset(name=name, interactions=interactions,
                    user_features=user_features, item_features=item_features,
                    item_bag_columns=["genres"])


def _load_grouplens_100k(files: _Files, name: str) -> RawDataset:
  ratings = _read_delimited(files.read("u.data"), b"\t",
                            ["user", "item", "rating", "timestamp"])
  interactions = _interactions(_int_ids(ratings["user"], "u.data"),
                               _int_ids(ratings["item"], "u.data"),
                               ratings["timestamp"], "u.data")
  users = _read_delimited(files.read("u.user"), b"|",
                          ["user", "age", "gender", "occupation", "zip"])
  user_features = _user_table(_int_ids(users["user"], "u.user"), users["age"],
                              users["gender"], users["occupation"])
  movies = _read_delimited(
      files.read("u.item"), b"|",
      ["item", "title", "release", "video_release", "url", *ML100K_GENRES])
  flags = movies[list(ML100K_GENRES)].to_numpy() == "1"
  genres = pd.Series([[g for g, on in zip(ML100K_GENRES, row) if on]
                      for row in flags])
  years = movies["release"].str.extract(r"(\d{4})\s*$", expand=False)
  years = years.fillna(_year_from_title(movies["title"]))
  item_features = _item_table(_int_ids(movies["item"], "u.item"), genres,
                              years)
  return RawDataset(name=name, interactions=interactions,
                    user_features=user_features, item_features=item_features,
                    item_bag_columns=["genres"])


def load_grouplens_movielens(path: PathLike,
                             name: Optional[str] = None) -> RawDataset:
  """Loads official GroupLens ML-1M or ML-100k files.

  ML-1M needs ``ratings.dat`` and ``movies.dat`` (``users.dat`` optional);
  ML-100k needs ``u.data``, ``u.user`` and ``u.item``. Files may sit in
  ``path`` itself, in a subfolder (as the zips extract) or in a zip.

  Args:
    path: Directory or ``.zip`` holding the files.
    name: Dataset name; defaults to ``"ml-1m"`` or ``"ml-100k"``.

  Returns:
    The RawDataset with integer raw ids, in file order.

  Raises:
    FileNotFoundError: If ``path`` or a needed file is missing.
    ValueError: If a file is malformed.
  """
  files = _Files(path)
  if files.has("ratings.dat"):
    return _load_grouplens_1m(files, name or "ml-1m")
  if files.has("u.data"):
    return _load_grouplens_100k(files, name or "ml-100k")
  raise FileNotFoundError(
      f"{path} holds neither ratings.dat (ML-1M) nor u.data (ML-100k). Pass "
      "the ml-1m.zip / ml-100k.zip from https://grouplens.org/datasets/"
      "movielens/ or their extracted folder.")
