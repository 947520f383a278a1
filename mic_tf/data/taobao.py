"""Taobao ``UserBehavior.csv`` loader (Zhu et al. 2018), read as ComiRec does.

The file has no header; rows are ``user,item,category,behavior,timestamp``.
Only ``pv`` (page view) rows are kept, as in ComiRec. Each item gets the
``category`` of its *last* ``pv`` row in file order (ComiRec's
``preprocess/category.py`` overwrites earlier ones).

The full file has about 100M rows, so it is read in chunks with compact
dtypes (int64 ids and timestamps, categorical behavior); only ``pv`` rows are
held in memory (about 20 bytes per row).
"""

import os
import pathlib
from typing import Union

from absl import logging
import numpy as np
import pandas as pd

from mic_tf.data.dataset import RawDataset

PathLike = Union[str, os.PathLike]

COLUMNS = ("user", "item", "category", "behavior", "timestamp")
KEPT_BEHAVIOR = "pv"


def load_taobao(path: PathLike, name: str = "taobao",
                chunksize: int = 5_000_000) -> RawDataset:
  """Loads the ``pv`` events of Taobao's ``UserBehavior.csv``.

  Args:
    path: ``UserBehavior.csv`` (may be ``.gz``/``.zip`` compressed as pandas
      infers from the suffix).
    name: Dataset name.
    chunksize: Rows parsed per chunk.

  Returns:
    The RawDataset with integer ids in file order and an item ``category``.

  Raises:
    FileNotFoundError: If the file is missing.
    ValueError: If a row is malformed or no ``pv`` rows exist.
  """
  path = pathlib.Path(path)
  if not path.exists():
    raise FileNotFoundError(
        f"{path} not found. Download UserBehavior.csv from "
        "https://tianchi.aliyun.com/dataset/649 and pass its path.")
  chunks = []
  total = 0
  reader = pd.read_csv(
      path, header=None, names=list(COLUMNS), chunksize=chunksize,
      dtype={"user": np.int64, "item": np.int64, "category": np.int64,
             "behavior": "category", "timestamp": np.int64})
  try:
    for chunk in reader:
      total += len(chunk)
      chunks.append(chunk[chunk["behavior"] == KEPT_BEHAVIOR].drop(
          columns="behavior"))
  except (ValueError, pd.errors.ParserError) as error:
    raise ValueError(
        f"{path} is not a headerless user,item,category,behavior,timestamp "
        f"CSV with integer ids and timestamps: {error}") from error
  events = pd.concat(chunks, ignore_index=True) if chunks else None
  if events is None or events.empty:
    raise ValueError(f"{path} has no '{KEPT_BEHAVIOR}' rows "
                     f"(read {total} rows).")
  logging.info("%s: kept %d of %d rows (behavior == %r).", path, len(events),
               total, KEPT_BEHAVIOR)
  last = ~events["item"].duplicated(keep="last").to_numpy()
  item_features = pd.DataFrame(
      {"category": events["category"].to_numpy()[last]},
      index=pd.Index(events["item"].to_numpy()[last], name="item"))
  interactions = events[["user", "item", "timestamp"]]
  return RawDataset(name=name, interactions=interactions,
                    item_features=item_features)
