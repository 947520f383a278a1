"""Nearest-neighbour indexes for MIC's U2I, U2U and I2I retrieval channels.

Every index implements `Index` (a `tf.Module`): `build(embeddings, ids)`;
`search(queries, k)` (numpy path, offline batch work) and
`tf_search(queries, k)` (TensorFlow path, SavedModels), both -> (ids, scores)
by dot product, best first, padded with (-1, -inf), and equal to each other;
`save(directory)` / `load(directory)`; `size`; `dim`.

* `BruteForceIndex`: exact TF matmul + top_k (`exact_top_k`, the one exact
  top-k of mic-tf).
* `ScannIndex`: ScaNN tree + asymmetric hashing + reordering, configured by a
  `ScannConfig` (`ScannConfig.auto(n, k)` picks one by pool size); its TF
  path runs ScaNN's TF ops on the state the pybind builder trained.
"""

from typing import Optional

import numpy as np

from mic_tf import names
from mic_tf.indexes.base import Index
from mic_tf.indexes.base import pad_to_k
from mic_tf.indexes.base import PAD_ID
from mic_tf.indexes.base import PAD_SCORE
from mic_tf.indexes.base import read_metadata
from mic_tf.indexes.base import recall_against_exact
from mic_tf.indexes.brute_force import BruteForceIndex
from mic_tf.indexes.brute_force import exact_top_k
from mic_tf.indexes.config import ScannConfig
from mic_tf.indexes.scann_index import ScannIndex

_KINDS = names.INDEX_CHOICES


def make_index(kind: str = "auto",
               embeddings: Optional[np.ndarray] = None,
               ids: Optional[np.ndarray] = None,
               k: int = 10,
               scann_config: Optional[ScannConfig] = None,
               **exact_kwargs) -> Index:
  """Creates (and, given embeddings, builds) an index.

  Args:
    kind: "exact" -> `BruteForceIndex`; "scann" -> `ScannIndex`;
      "auto" -> `ScannIndex` with `ScannConfig.auto(n, k)`, which is exact
      ScaNN brute force below 20k rows and tree + AH + reorder above.
    embeddings: Optional (n, d) database; when given the index is built.
    ids: Optional (n,) external ids for the rows (default arange(n)).
    k: Typical number of neighbours, used to size `ScannConfig.auto`.
    scann_config: Explicit config for kind="scann" (None = auto).
    **exact_kwargs: Passed to `BruteForceIndex` (query_batch_size,
      max_score_bytes) for kind="exact".

  Returns:
    An `Index`, built iff `embeddings` was given.

  Raises:
    ValueError: on an unknown kind or arguments that do not fit it.
  """
  if kind not in _KINDS:
    raise ValueError(f"kind must be one of {_KINDS}; got {kind!r}.")
  if kind == "exact":
    if scann_config is not None:
      raise ValueError(
          "scann_config was given with kind='exact': use kind='scann' to "
          "build a ScaNN index, or drop scann_config.")
    index = BruteForceIndex(**exact_kwargs)
  else:
    if exact_kwargs:
      raise ValueError(
          f"{sorted(exact_kwargs)} only apply to kind='exact'.")
    if kind == "auto" and scann_config is not None:
      raise ValueError(
          "kind='auto' picks its own config: use kind='scann' to pass "
          "scann_config.")
    index = ScannIndex(scann_config, default_k=k)
  if embeddings is not None:
    index.build(embeddings, ids=ids)
  return index


def load_index(directory: str) -> Index:
  """Loads any index saved by `Index.save`, dispatching on its kind.

  Raises:
    FileNotFoundError: if `directory` is not a saved index.
    ValueError: if the saved kind is unknown.
  """
  kind = read_metadata(directory).get("kind")
  for cls in (BruteForceIndex, ScannIndex):
    if cls.KIND == kind:
      return cls.load(directory)
  raise ValueError(
      f"{directory!r} holds an index of unknown kind {kind!r}; expected "
      f"'exact' or 'scann'.")


__all__ = [
    "BruteForceIndex",
    "Index",
    "PAD_ID",
    "PAD_SCORE",
    "ScannConfig",
    "ScannIndex",
    "exact_top_k",
    "load_index",
    "make_index",
    "pad_to_k",
    "recall_against_exact",
]
