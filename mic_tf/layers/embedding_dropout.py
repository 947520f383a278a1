"""Dropout in the embedded feature space (section 3.3.1 of the MIC paper)."""

from typing import Any, Dict, Mapping, Optional, Union

import tensorflow as tf

Embedded = Union[tf.Tensor, Mapping[str, tf.Tensor]]


@tf.keras.utils.register_keras_serializable(package="mic_tf")
class EmbeddingDropout(tf.keras.__internal__.layers.BaseRandomLayer):
  """Element-wise (inverted) dropout on embeddings or a dict of embeddings.

  During training each element is zeroed with probability ``rate`` and the
  kept ones are scaled by ``1 / (1 - rate)``; every tensor of a dict gets its
  own independent mask. At inference (``training`` False or None) the input
  is returned unchanged. The paper uses a dropout rate of 0.2.
  """

  def __init__(self, rate: float = 0.2, seed: Optional[int] = None, **kwargs):
    """Initialises the layer.

    Args:
      rate: Probability of dropping an element, in [0, 1).
      seed: Optional integer seed for reproducible masks.
      **kwargs: Keras layer arguments (name, ...).

    Raises:
      ValueError: If ``rate`` is outside [0, 1).
    """
    # Never autocast: under a mixed-precision policy Keras would otherwise
    # cast float inputs, changing their dtype.
    kwargs.setdefault("autocast", False)
    # A seeded tf.random.Generator: a given seed reproduces the same masks
    # from a fresh layer, while successive calls (and steps inside a
    # tf.function) still draw fresh masks.
    kwargs.setdefault("rng_type", "stateful")
    super().__init__(seed=seed, **kwargs)
    if not 0.0 <= float(rate) < 1.0:
      raise ValueError(
          f"`rate` must be in [0, 1), got {rate}. Use 0 to disable dropout.")
    self.rate = float(rate)
    self.seed = seed

  def _drop(self, x: tf.Tensor) -> tf.Tensor:
    if self.rate == 0.0:
      return x
    return self._random_generator.dropout(x, self.rate)

  def _drop_all(self, inputs: Embedded) -> Embedded:
    if isinstance(inputs, Mapping):
      return {key: self._drop(value) for key, value in inputs.items()}
    return self._drop(inputs)

  def call(self, inputs: Embedded,
           training: Optional[bool] = None) -> Embedded:
    """Applies dropout when training.

    Args:
      inputs: A float tensor or a dict of float tensors.
      training: Drops only if True (Python bool or boolean tensor).

    Returns:
      Same structure as ``inputs``.

    Raises:
      ValueError: If a tensor is not floating point.
    """
    values = inputs.items() if isinstance(inputs, Mapping) else [("", inputs)]
    for key, value in values:
      if not tf.as_dtype(value.dtype).is_floating:
        raise ValueError(
            f"EmbeddingDropout expects embedded (float) tensors, got dtype "
            f"{value.dtype}{' for key ' + repr(key) if key else ''}. Apply it "
            "after the embedding lookup; mask ids with FieldMask instead.")
    if training is None or training is False:
      return dict(inputs) if isinstance(inputs, Mapping) else inputs
    return tf.__internal__.smart_cond.smart_cond(
        training, lambda: self._drop_all(inputs),
        lambda: dict(inputs) if isinstance(inputs, Mapping) else inputs)

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({"rate": self.rate, "seed": self.seed})
    return config
