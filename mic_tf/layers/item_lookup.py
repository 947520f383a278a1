"""Item feature lookup: item ids -> the item tower's features dict.

Item attributes live in constant tables inside the model, so a batch (or the
whole pool, or a serving request) needs only item ids.
"""

from typing import Dict, Mapping

import numpy as np
import tensorflow as tf

from mic_tf.layers.unknown_ids import known_or_missing


class ItemFeatureLookup(tf.keras.layers.Layer):
  """Gathers every item field for a tensor of item ids.

  Unknown ids (negative or ``>= num_items``) are looked up as id 0
  (``mic_tf.layers.unknown_ids``, the rule of the user side too).

  Args:
    tables: Field name -> array indexed by item id (``(num_items,)`` or
      ``(num_items, L)``).
  """

  def __init__(self, tables: Mapping[str, np.ndarray], **kwargs):
    super().__init__(trainable=False, **kwargs)
    self._names = sorted(tables)
    self.num_items = int(next(iter(tables.values())).shape[0])
    for name in self._names:
      if tables[name].shape[0] != self.num_items:
        raise ValueError(f"Item table {name!r} has {tables[name].shape[0]} "
                         f"rows, expected {self.num_items}.")
    self._tables = {n: tf.constant(np.asarray(tables[n], np.int32), tf.int32)
                    for n in self._names}

  def call(self, item_ids: tf.Tensor) -> Dict[str, tf.Tensor]:
    # Unknown items map to the padding id 0, whose every attribute is
    # "missing".
    ids = known_or_missing(tf.cast(item_ids, tf.int32), self.num_items)
    return {n: tf.gather(self._tables[n], ids) for n in self._names}
