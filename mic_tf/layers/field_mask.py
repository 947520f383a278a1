"""Field-level perturbation: randomly replace feature ids by a mask token.

Section 3.3.1 of the MIC paper: user fields (id, gender, age, the interacted
item sequence) and item fields (id, keywords, ...) are randomly masked to
create augmented views. Masking replaces an id by a dedicated mask id, by
convention the field's vocabulary size, so the embedding table of a masked
field needs ``vocab_size + 1`` rows.
"""

from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf


def _validate(field_rates: Mapping[str, float], mask_values: Mapping[str, int],
              sequence_fields: Sequence[str]) -> None:
  """Raises ValueError on inconsistent FieldMask arguments."""
  for field, rate in field_rates.items():
    if not 0.0 <= float(rate) < 1.0:
      raise ValueError(
          f"Mask rate of field {field!r} must be in [0, 1), got {rate}. Use 0 "
          "to leave a field unmasked.")
    if field not in mask_values:
      raise ValueError(
          f"Field {field!r} has a mask rate but no mask value; add it to "
          "`mask_values` (conventionally the field's vocabulary size).")
  for field, value in mask_values.items():
    if int(value) != value or int(value) <= 0:
      raise ValueError(
          f"Mask value of field {field!r} must be a positive integer, got "
          f"{value}. 0 is the padding/missing id; use the field's vocabulary "
          "size as the mask id.")
  if isinstance(sequence_fields, str):
    raise ValueError(
        f"`sequence_fields` must be a sequence of names, got the string "
        f"{sequence_fields!r}; write ({sequence_fields!r},).")
  unknown = sorted(set(sequence_fields) - set(field_rates))
  if unknown:
    raise ValueError(
        f"Sequence fields {unknown} have no mask rate; add them to "
        "`field_rates`.")


@tf.keras.utils.register_keras_serializable(package="mic_tf")
class FieldMask(tf.keras.__internal__.layers.BaseRandomLayer):
  """Randomly replaces ids of selected feature fields by a mask id.

  Input: a dict of integer id tensors. Fields named in ``field_rates`` are
  masked during training; all other keys pass through untouched. At inference
  (``training`` False or None) the layer is the identity.

  * Scalar fields, shape (B,): each example's value is replaced by the mask
    value with probability ``rate``. (Every element is masked independently,
    so a (B, 1) field behaves the same way.) Id 0 is a valid value here -- user
    ids start at 0 -- so it is masked like any other value.
  * Sequence/bag fields, shape (B, L): each non-padding entry (id != 0) is
    independently replaced by the mask value with probability ``rate``;
    padding (0) is never changed.

  Example::

    mask = FieldMask({"user_id": 0.2, "history": 0.2},
                     {"user_id": num_users, "history": num_items},
                     sequence_fields=("history",), seed=1)
    perturbed = mask(features, training=True)
  """

  def __init__(self,
               field_rates: Mapping[str, float],
               mask_values: Mapping[str, int],
               sequence_fields: Sequence[str] = (),
               seed: Optional[int] = None,
               **kwargs):
    """Initialises the layer.

    Args:
      field_rates: Field name -> masking probability in [0, 1).
      mask_values: Field name -> mask id (a positive integer, conventionally
        the field's vocabulary size). Must cover every field in
        ``field_rates``; extra entries are ignored.
      sequence_fields: Names of fields holding zero-padded id sequences or
        bags; each must be in ``field_rates``.
      seed: Optional integer seed for reproducible masks.
      **kwargs: Keras layer arguments (name, ...).

    Raises:
      ValueError: If a rate is outside [0, 1), a mask value is missing, not a
        positive integer (0 is padding), or a sequence field has no rate.
    """
    # Never autocast: under a mixed-precision policy Keras would otherwise
    # cast float inputs, changing their dtype.
    kwargs.setdefault("autocast", False)
    # A seeded tf.random.Generator: a given seed reproduces the same masks
    # from a fresh layer, while successive calls (and steps inside a
    # tf.function) still draw fresh masks.
    kwargs.setdefault("rng_type", "stateful")
    super().__init__(seed=seed, **kwargs)
    _validate(field_rates, mask_values, sequence_fields)
    self.field_rates = {k: float(v) for k, v in field_rates.items()}
    self.mask_values = {k: int(v) for k, v in mask_values.items()}
    self.sequence_fields = tuple(sequence_fields)
    self.seed = seed

  def _mask_field(self, field: str, ids: tf.Tensor) -> tf.Tensor:
    """Masks one id tensor."""
    rate = self.field_rates[field]
    if rate == 0.0:
      return ids
    draw = self._random_generator.random_uniform(tf.shape(ids),
                                                 dtype=tf.float32)
    hit = draw < rate
    if field in self.sequence_fields:
      hit = tf.logical_and(hit, tf.not_equal(ids, 0))
    mask_value = tf.cast(self.mask_values[field], ids.dtype)
    return tf.where(hit, mask_value, ids)

  def _mask_all(self, inputs: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    outputs = dict(inputs)
    for field in self.field_rates:  # Insertion order: reproducible seeds.
      outputs[field] = self._mask_field(field, inputs[field])
    return outputs

  def call(self,
           inputs: Mapping[str, tf.Tensor],
           training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Masks the configured fields when training.

    Args:
      inputs: Dict of integer id tensors.
      training: Masks only if True (Python bool or boolean tensor).

    Returns:
      A new dict with the same keys; unconfigured fields are the input
      tensors themselves.

    Raises:
      ValueError: If inputs is not a dict, a configured field is missing, or a
        configured field is not an integer tensor.
    """
    if not isinstance(inputs, Mapping):
      raise ValueError(
          f"FieldMask expects a dict of id tensors, got "
          f"{type(inputs).__name__}.")
    missing = sorted(set(self.field_rates) - set(inputs))
    if missing:
      raise ValueError(
          f"FieldMask has rates for fields {missing} that are not in the "
          f"inputs {sorted(inputs)}; pass them or drop their rates.")
    for field in self.field_rates:
      if not tf.as_dtype(inputs[field].dtype).is_integer:
        raise ValueError(
            f"Field {field!r} must hold integer ids, got dtype "
            f"{inputs[field].dtype}. Mask ids before the embedding lookup.")
    if training is None or training is False:
      return dict(inputs)
    return tf.__internal__.smart_cond.smart_cond(
        training, lambda: self._mask_all(inputs), lambda: dict(inputs))

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "field_rates": dict(self.field_rates),
        "mask_values": dict(self.mask_values),
        "sequence_fields": list(self.sequence_fields),
        "seed": self.seed,
    })
    return config
