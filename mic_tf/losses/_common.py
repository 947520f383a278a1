"""Shared numerics for the MIC losses: normalisation, masking, cross-entropy.

Every loss in :mod:`mic_tf.losses` works on float32 cosine-similarity logits,
masks invalid logits with a large negative *finite* value and reduces rows with
``logsumexp``. Keeping these few primitives in one place means every loss
treats masking and precision in exactly the same way.
"""

from typing import Optional, Union

import tensorflow as tf

# Added in place of a masked logit. It is finite, so a row whose entries are
# all masked yields a finite logsumexp (never ``inf - inf = NaN``), and it is
# far enough below any cosine/temperature logit that ``exp`` underflows to 0.
LARGE_NEGATIVE = -1e9

Temperature = Union[float, tf.Tensor, tf.Variable]


def as_float32(x: tf.Tensor, name: str) -> tf.Tensor:
  """Converts ``x`` to a float32 tensor; float16/bfloat16 are upcast.

  Args:
    x: A floating tensor (or something convertible to one).
    name: Argument name used in the error message.

  Returns:
    ``x`` as a float32 tensor.

  Raises:
    ValueError: If ``x`` is not floating point.
  """
  x = tf.convert_to_tensor(x)
  if not x.dtype.is_floating:
    raise ValueError(
        f"`{name}` must be a floating-point tensor of representations, got "
        f"dtype {x.dtype.name}. Pass the encoder output, not ids.")
  return tf.cast(x, tf.float32)


def check_rank2(x: tf.Tensor, name: str) -> None:
  """Raises a ValueError if ``x`` is statically known not to be (B, d)."""
  if x.shape.rank is not None and x.shape.rank != 2:
    raise ValueError(
        f"`{name}` must have shape (batch, dim), got shape {x.shape}. "
        "Flatten or pool the representation before the loss.")


def temperature_tensor(temperature: Temperature) -> tf.Tensor:
  """Returns the temperature as a float32 scalar tensor.

  Args:
    temperature: A Python number, or a (possibly trainable) scalar tensor or
      variable, e.g. a learned temperature for the basic loss.

  Returns:
    A float32 scalar tensor.

  Raises:
    ValueError: If a Python-number temperature is not positive.
  """
  if isinstance(temperature, (int, float)):
    if temperature <= 0:
      raise ValueError(
          f"`temperature` must be > 0, got {temperature}. The paper uses 0.1.")
  return tf.cast(temperature, tf.float32)


def normalize(x: tf.Tensor, name: str) -> tf.Tensor:
  """L2-normalises rows of a (B, d) tensor in float32."""
  x = as_float32(x, name)
  check_rank2(x, name)
  return tf.math.l2_normalize(x, axis=-1)


def cosine_logits(queries: tf.Tensor,
                  keys: tf.Tensor,
                  temperature: Temperature,
                  query_name: str = "queries",
                  key_name: str = "keys") -> tf.Tensor:
  """Cosine similarity of every query with every key, divided by temperature.

  Args:
    queries: (Bq, d) representations.
    keys: (Bk, d) representations.
    temperature: Scalar temperature tau.
    query_name: Argument name of ``queries`` for error messages.
    key_name: Argument name of ``keys`` for error messages.

  Returns:
    A (Bq, Bk) float32 tensor ``cos(q_i, k_j) / tau``.

  Raises:
    ValueError: If the feature dimensions differ.
  """
  q = normalize(queries, query_name)
  k = normalize(keys, key_name)
  if (q.shape[-1] is not None and k.shape[-1] is not None and
      q.shape[-1] != k.shape[-1]):
    raise ValueError(
        f"`{query_name}` and `{key_name}` must have the same dimension, got "
        f"{q.shape[-1]} and {k.shape[-1]}. Project both to a common space.")
  return tf.matmul(q, k, transpose_b=True) / temperature_tensor(temperature)


def same_id_mask(query_ids: tf.Tensor, key_ids: tf.Tensor) -> tf.Tensor:
  """(Bq, Bk) boolean mask, True where ``key_ids[j] == query_ids[i]``."""
  query_ids = tf.cast(tf.reshape(query_ids, [-1]), tf.int64)
  key_ids = tf.cast(tf.reshape(key_ids, [-1]), tf.int64)
  return tf.equal(query_ids[:, tf.newaxis], key_ids[tf.newaxis, :])


def softmax_cross_entropy_rows(logits: tf.Tensor,
                               positive_indices: tf.Tensor,
                               valid: Optional[tf.Tensor]) -> tf.Tensor:
  """Per-row cross-entropy with one positive column and masked columns.

  The positive column is always kept in the denominator (as in SimCLR and
  in-batch softmax), so a row without any valid negative gets loss 0 and zero
  gradient instead of NaN.

  Args:
    logits: (B, K) float32 logits.
    positive_indices: (B,) int column index of each row's positive.
    valid: Optional (B, K) bool; False columns are removed from the
      denominator. The positive column is forced valid.

  Returns:
    (B,) float32 ``logsumexp(valid logits) - positive logit``.
  """
  positive_indices = tf.cast(positive_indices, tf.int32)
  num_keys = tf.shape(logits)[1]
  tf.debugging.assert_non_negative(
      positive_indices, message="positive_indices must be >= 0")
  tf.debugging.assert_less(
      positive_indices, num_keys,
      message="positive_indices must be < the number of keys")
  positive = tf.one_hot(positive_indices, num_keys, on_value=True,
                        off_value=False, dtype=tf.bool)
  if valid is not None:
    masked = tf.where(tf.logical_or(valid, positive), logits,
                      tf.constant(LARGE_NEGATIVE, logits.dtype))
  else:
    masked = logits
  positive_logit = tf.reduce_sum(
      tf.where(positive, logits, tf.zeros_like(logits)), axis=1)
  return tf.reduce_logsumexp(masked, axis=1) - positive_logit


def weighted_mean(values: tf.Tensor,
                  weights: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Mean of ``values``, or ``sum(w * v) / sum(w)`` (0 if all weights are 0)."""
  if weights is None:
    return tf.reduce_mean(values)
  weights = tf.cast(tf.reshape(weights, [-1]), tf.float32)
  return tf.math.divide_no_nan(
      tf.reduce_sum(weights * values), tf.reduce_sum(weights))
