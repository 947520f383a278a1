"""The one rule for unknown ids, on the user and on the item side alike.

An id outside its field's vocabulary ``0 .. vocab_size - 1`` (a user, item or
attribute value never seen in training, or a negative id) is read as
``names.MISSING_ID`` (0): padding / missing / unknown. ``MICModel`` applies
it to the user features it encodes and ``ItemFeatureLookup`` to the item ids
it looks up; the serving models' raw-id lookup tables map values absent from
the data to the same id.
"""

from typing import Dict, Mapping, Sequence

import tensorflow as tf

from mic_tf import names


def known_or_missing(ids: tf.Tensor, vocab_size: int) -> tf.Tensor:
  """``ids`` with every value outside ``[0, vocab_size)`` replaced by 0."""
  return tf.where((ids >= 0) & (ids < vocab_size), ids,
                  tf.constant(names.MISSING_ID, ids.dtype))


def known_features(features: Mapping[str, tf.Tensor],
                   fields: Sequence) -> Dict[str, tf.Tensor]:
  """The ``fields`` (``FieldSpec``s) of ``features``, unknown ids -> 0.

  Keys that are not among ``fields`` are passed through unchanged.
  """
  out = dict(features)
  for f in fields:
    if f.name in out:
      out[f.name] = known_or_missing(tf.cast(out[f.name], tf.int32),
                                     f.vocab_size)
  return out
