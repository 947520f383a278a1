"""Raw ids <-> the protocol's internal ids, as lookup tables in the graph.

The ComiRec protocol (``mic_tf.data.protocol``) renumbers everything: items
become ``1 .. num_items - 1`` by popularity, users ``0 .. num_users - 1``,
attribute values ``1 .. V - 1`` in sorted order (0 is padding / missing).
A service holds the raw values: MovieLens item ids or titles, ``"M"``,
``25``, ``"technician"``. ``RawIds`` holds the protocol's tables, so a
channel's ``recommend_raw`` (and the exported servers' ``recommend``
signature) takes raw values and returns raw item ids.

Key types follow the data: a field whose values are all integral numbers
(MovieLens ages, GroupLens ids) is keyed by int64, any other field by
string (``str(value)``; RecBole's MovieLens item ids are strings).

Unknown values (never seen in the data) map to 0, the rule of
``mic_tf.layers.unknown_ids`` for internal ids. Padding: ``""`` for string
fields, ``-1`` for int64 fields (any value absent from the data works).
``user_id`` (runs with ``use_user_id``) maps a training user's raw id to its
token and every other user to 0, "unknown".
"""

import numbers
from typing import Dict, Mapping

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf import names

STRING, INT64 = "string", "int64"
#: Padding of raw inputs and of empty result slots, by key type.
RAW_PADDING = {STRING: "", INT64: -1}


def key_type(values) -> str:
  """``"int64"`` if every value is an integral number, else ``"string"``."""
  for v in values:
    if isinstance(v, (bool, np.bool_)):
      return STRING
    if isinstance(v, numbers.Integral):
      continue
    if isinstance(v, numbers.Real) and float(v).is_integer():
      continue
    return STRING
  return INT64


def as_keys(values, kind: str) -> np.ndarray:
  """Raw values as an int64 or a bytes array of lookup keys."""
  if kind == INT64:
    return np.asarray([int(v) for v in values], np.int64)
  return np.asarray([str(v).encode() for v in values], object)


def _table(keys: np.ndarray, values: np.ndarray, kind: str,
           name: str) -> tf.lookup.StaticHashTable:
  key_dtype = tf.int64 if kind == INT64 else tf.string
  if len(keys) == 0:  # a table needs one entry: the padding maps to 0
    keys = np.asarray([RAW_PADDING[kind]]).astype(
        np.int64 if kind == INT64 else object)
    values = np.zeros(1, np.int64)
  initializer = tf.lookup.KeyValueTensorInitializer(
      tf.constant(keys, key_dtype), tf.constant(values, tf.int64))
  return tf.lookup.StaticHashTable(initializer, names.MISSING_ID, name=name)


class RawIds(tf.Module):
  """Lookup tables between a dataset's raw values and internal ids.

  Args:
    spec: The run's ``FeatureSpec`` (which user fields the towers read).
    dataset: The run's ``ProcessedDataset`` (raw ids and vocabularies).

  Raises:
    ValueError: If an attribute field has no vocabulary in the dataset.
  """

  def __init__(self, spec: F.FeatureSpec, dataset):
    super().__init__(name="raw_ids")
    self.spec = spec
    raw_items = list(dataset.raw_item_ids[1:])
    self.item_kind = key_type(raw_items)
    self._items_in = _table(as_keys(raw_items, self.item_kind),
                            np.arange(1, len(raw_items) + 1, dtype=np.int64),
                            self.item_kind, "items_in")
    padding = RAW_PADDING[self.item_kind]
    # Row i + 1 is item id i; row 0 is the empty slot (item id -1).
    out = [padding, padding] + raw_items
    self._items_out = tf.Variable(as_keys(out, self.item_kind),
                                  trainable=False, name="items_out")
    self.field_kinds: Dict[str, str] = {}
    self._fields = {}
    train = np.sort(np.asarray(dataset.train_users, np.int64))
    for f in spec.user_fields:
      if f.name == F.HISTORY:
        continue
      if f.name == F.USER_ID:
        raw_users = [dataset.raw_user_ids[u] for u in train]
        kind = key_type(raw_users)
        keys, values = as_keys(raw_users, kind), train + 1
      else:
        vocab = getattr(dataset, "user_vocabs", {}).get(f.name)
        if vocab is None:
          raise ValueError(
              f"The dataset has no vocabulary of user field {f.name!r}, so "
              "raw values cannot be served; rebuild it with "
              "mic_tf.data.protocol.apply_comirec_protocol, or export "
              "without raw ids.")
        kind = key_type(vocab[1:])
        keys = as_keys(vocab[1:], kind)
        values = np.arange(1, len(vocab), dtype=np.int64)
      self.field_kinds[f.name] = kind
      self._fields[f.name] = _table(keys, values, kind, f"{f.name}_in")

  @staticmethod
  def _dtype(kind: str) -> tf.DType:
    return tf.int64 if kind == INT64 else tf.string

  def input_signature(self) -> Dict[str, tf.TensorSpec]:
    """The raw user features: one tensor per user field."""
    out = {}
    for f in self.spec.user_fields:
      if f.name == F.HISTORY:
        out[f.name] = tf.TensorSpec([None, f.length],
                                    self._dtype(self.item_kind), name=f.name)
      else:
        out[f.name] = tf.TensorSpec(
            [None], self._dtype(self.field_kinds[f.name]), name=f.name)
    return out

  def exclude_spec(self) -> tf.TensorSpec:
    """Raw item ids to exclude: ``(B, E)``, any ``E``, padded."""
    return tf.TensorSpec([None, None], self._dtype(self.item_kind),
                         name="exclude")

  def items_to_internal(self, raw: tf.Tensor) -> tf.Tensor:
    """Raw item ids -> item ids (int64); unknown and padding -> 0."""
    return self._items_in.lookup(raw)

  def items_to_raw(self, ids: tf.Tensor) -> tf.Tensor:
    """Item ids -> raw item ids; the empty slot (-1) -> the raw padding."""
    return tf.gather(self._items_out, tf.maximum(ids + 1, 0))

  def to_internal(self, raw: Mapping[str, tf.Tensor]
                  ) -> Dict[str, tf.Tensor]:
    """Raw user features -> the towers' int32 features."""
    out = {}
    for f in self.spec.user_fields:
      table = (self._items_in if f.name == F.HISTORY else
               self._fields[f.name])
      out[f.name] = tf.cast(table.lookup(raw[f.name]), tf.int32)
    return out

  def describe(self) -> Dict[str, Dict[str, str]]:
    """What ``export.json`` records: each raw input's key type."""
    fields = {f.name: (self.item_kind if f.name == F.HISTORY else
                       self.field_kinds[f.name])
              for f in self.spec.user_fields}
    return {"user_inputs": fields, "item_ids": self.item_kind,
            "padding": {k: RAW_PADDING[k] for k in (STRING, INT64)}}

