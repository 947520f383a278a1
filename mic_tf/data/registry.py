"""One entry point to every dataset loader, by name."""

import os
import pathlib
from typing import Callable, Dict, List, Optional, Union

from mic_tf.data import amazon
from mic_tf.data import custom
from mic_tf.data import fetch
from mic_tf.data import movielens
from mic_tf.data import synthetic
from mic_tf.data import taobao
from mic_tf.data.dataset import RawDataset

PathLike = Union[str, os.PathLike]


def _movielens(name: str) -> Callable[..., RawDataset]:

  def load(data_dir: Optional[PathLike] = None) -> RawDataset:
    directory = fetch.fetch_movielens(name, data_dir)
    return movielens.load_recbole_movielens(directory, name)

  return load


def _default_file(data_dir: Optional[PathLike], dataset: str,
                  *file_names: str) -> pathlib.Path:
  """The first of ``file_names`` present in the data dir (or its subdir)."""
  root = fetch.data_dir(data_dir)
  candidates = [folder / file_name for file_name in file_names
                for folder in (root / dataset, root)]
  for candidate in candidates:
    if candidate.exists():
      return candidate
  raise FileNotFoundError(
      f"No {dataset} file given and none of {list(file_names)} is in "
      f"{root / dataset} or {root}. Pass path=... or place the file there.")


def _grouplens(data_dir: Optional[PathLike] = None,
               path: Optional[PathLike] = None) -> RawDataset:
  if path is None:
    path = _default_file(data_dir, "ml-1m-grouplens", "ml-1m.zip", "ml-1m")
  return movielens.load_grouplens_movielens(path)


def _amazon_books(data_dir: Optional[PathLike] = None,
                  path: Optional[PathLike] = None,
                  metadata_path: Optional[PathLike] = None) -> RawDataset:
  if path is None:
    path = _default_file(data_dir, "amazon-books", "reviews_Books_5.json",
                         "reviews_Books_5.json.gz", "ratings_Books.csv")
    if metadata_path is None:
      try:
        metadata_path = _default_file(data_dir, "amazon-books",
                                      "meta_Books.json", "meta_Books.json.gz")
      except FileNotFoundError:
        metadata_path = None
  return amazon.load_amazon_books(path, metadata_path)


def _taobao(data_dir: Optional[PathLike] = None,
            path: Optional[PathLike] = None, **kwargs) -> RawDataset:
  if path is None:
    path = _default_file(data_dir, "taobao", "UserBehavior.csv")
  return taobao.load_taobao(path, **kwargs)


def _synthetic_books(data_dir: Optional[PathLike] = None, scale: float = 1.0,
                     seed: int = 0) -> RawDataset:
  paths = synthetic.books_files(fetch.data_dir(data_dir), scale, seed)
  return amazon.load_amazon_books(paths["reviews"], paths["metadata"],
                                  name="synthetic-books")


def _synthetic_taobao(data_dir: Optional[PathLike] = None,
                      scale: float = 0.01, seed: int = 0) -> RawDataset:
  path = synthetic.taobao_file(fetch.data_dir(data_dir), scale, seed)
  return taobao.load_taobao(path, name="synthetic-taobao")


def _custom(data_dir: Optional[PathLike] = None,
            path: Optional[PathLike] = None, **kwargs) -> RawDataset:
  del data_dir  # Custom data are always named explicitly.
  if path is None:
    raise ValueError("load_dataset('custom', path=...) needs the interactions "
                     "file (see mic_tf.data.load_interactions_table).")
  return custom.load_interactions_table(path, **kwargs)


LOADERS: Dict[str, Callable[..., RawDataset]] = {
    "ml-1m": _movielens("ml-1m"),
    "ml-100k": _movielens("ml-100k"),
    "ml-1m-grouplens": _grouplens,
    "amazon-books": _amazon_books,
    "taobao": _taobao,
    "custom": _custom,
    "synthetic-books": _synthetic_books,
    "synthetic-taobao": _synthetic_taobao,
}


def source_files(name: str, data_dir: Optional[PathLike] = None,
                 **kwargs) -> List[pathlib.Path]:
  """The files (or folders) ``load_dataset(name, data_dir, **kwargs)`` reads.

  Used to record their checksums with a run. Files a loader would look for
  and that are absent are left out (the load itself reports them).
  """
  if name in ("ml-1m", "ml-100k"):
    folder = fetch.data_dir(data_dir) / name
    return [folder / f for f in sorted(fetch.SOURCES[name].sha256)]
  paths = [kwargs.get(k) for k in ("path", "metadata_path",
                                   "user_features_path",
                                   "item_features_path")]
  if kwargs.get("path") is None:
    defaults = {
        "ml-1m-grouplens": ("ml-1m.zip", "ml-1m"),
        "amazon-books": ("reviews_Books_5.json", "reviews_Books_5.json.gz",
                         "ratings_Books.csv"),
        "taobao": ("UserBehavior.csv",),
    }
    if name in defaults:
      paths.append(_optional_default(data_dir, name, *defaults[name]))
  if name == "amazon-books" and kwargs.get("metadata_path") is None:
    paths.append(_optional_default(data_dir, name, "meta_Books.json",
                                   "meta_Books.json.gz"))
  return [pathlib.Path(p) for p in paths if p is not None]


def _optional_default(data_dir, dataset, *file_names):
  try:
    return _default_file(data_dir, dataset, *file_names)
  except FileNotFoundError:
    return None


def load_dataset(name: str, data_dir: Optional[PathLike] = None,
                 **kwargs) -> RawDataset:
  """Loads a dataset by name.

  * ``"ml-1m"``, ``"ml-100k"``: fetched RecBole files (no kwargs).
  * ``"ml-1m-grouplens"``: ``path`` to the GroupLens zip/folder (default
    ``<data_dir>/ml-1m-grouplens/ml-1m.zip``).
  * ``"amazon-books"``: ``path`` (reviews JSON or ratings CSV) and
    ``metadata_path`` (defaults: ``reviews_Books_5.json`` and
    ``meta_Books.json`` under ``<data_dir>/amazon-books``).
  * ``"taobao"``: ``path`` (default ``<data_dir>/taobao/UserBehavior.csv``).
  * ``"custom"``: ``path`` plus ``load_interactions_table`` arguments.
  * ``"synthetic-books"``, ``"synthetic-taobao"``: ``scale`` (fraction of
    the real dataset's size; defaults 1.0 and 0.01) and ``seed``. The files
    are generated in the real formats under ``<data_dir>/synthetic-*/`` on
    first use (``mic_tf.data.synthetic``) and read by the real loaders.

  Args:
    name: One of ``LOADERS``.
    data_dir: Data root (see ``mic_tf.data.fetch.data_dir``).
    **kwargs: Loader-specific arguments listed above.

  Returns:
    The RawDataset.

  Raises:
    ValueError: If ``name`` is unknown or arguments are wrong.
  """
  if name not in LOADERS:
    raise ValueError(f"Unknown dataset {name!r}; known datasets: "
                     f"{', '.join(sorted(LOADERS))}.")
  try:
    return LOADERS[name](data_dir=data_dir, **kwargs)
  except TypeError as error:
    if "unexpected keyword argument" in str(error):
      raise ValueError(
          f"Wrong argument for dataset {name!r}: {error}") from None
    raise
