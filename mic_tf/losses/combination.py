"""Combination of the basic loss and the contrastive channel losses, eq. (8).

``L = lambda * L_basic + (1 - lambda) * sum_k w_k * L_k`` over the enabled
channels k in {"ui", "uu", "ii"}, or a learned (uncertainty) weighting.
"""

from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from mic_tf import names

TERMS = names.TERMS
BASIC = "basic"
MODES = ("fixed", "uncertainty")


@tf.keras.utils.register_keras_serializable(package="mic_tf")
class LossCombiner(tf.keras.layers.Layer):
  """Combines the basic loss with the enabled contrastive channel losses.

  Called on a mapping ``{"basic": L_basic, "ui": L_uv, "uu": L_uu,
  "ii": L_vv}`` of scalar losses; terms of channels that are not enabled may
  be present and are ignored, terms of enabled channels are required.

  Mode ``"fixed"`` (the paper's eq. 8)::

    L = lambda_ * L_basic + (1 - lambda_) * sum_{k enabled} w_k * L_k

  With no channel enabled the result is exactly ``L_basic`` (not
  ``lambda_ * L_basic``): the base model is trained with the basic loss
  alone, so ablations that switch all channels off reproduce the base model,
  learning rate scale included.

  Mode ``"uncertainty"``: homoscedastic uncertainty weighting (Kendall, Gal &
  Cipolla, CVPR 2018). One learnable log-variance ``s_k`` (initialised to 0)
  per term, for the basic loss and each enabled channel::

    L = sum_k exp(-s_k) * L_k + s_k

  The optimum ``s_k = log L_k`` gives each term a weight of about ``1/L_k``,
  so terms on different scales are balanced automatically. We use it because
  it costs one scalar per term, needs no extra forward/backward passes (unlike
  GradNorm or Pareto methods) and is the standard baseline for multi-task
  loss weighting; ``lambda_`` and ``weights`` are not used in this mode. With
  no channel enabled it also returns exactly ``L_basic`` and creates no
  variables (a single term's weight is only a learning-rate rescaling).

  Attributes:
    log_variances: Dict term name -> scalar variable (uncertainty mode only;
      empty otherwise).
  """

  def __init__(self,
               lambda_: float = 0.7,
               weights: Optional[Mapping[str, float]] = None,
               enabled: Sequence[str] = TERMS,
               mode: str = "fixed",
               **kwargs):
    """Initialises the combiner.

    Args:
      lambda_: Weight of the basic loss, in [0, 1]; the paper uses 0.7.
      weights: Channel name -> non-negative weight w_k. Channels not listed
        get weight 1.0 (the paper's 1:1:1).
      enabled: Channels to include, a subset of ("ui", "uu", "ii").
      mode: "fixed" or "uncertainty".
      **kwargs: Keras layer arguments (name, dtype, ...). The dtype defaults
        to float32 so that losses stay in float32 under mixed precision.

    Raises:
      ValueError: On an unknown channel or mode, lambda_ outside [0, 1], or a
        negative weight.
    """
    kwargs.setdefault("dtype", "float32")
    super().__init__(**kwargs)
    if mode not in MODES:
      raise ValueError(f"`mode` must be one of {MODES}, got {mode!r}.")
    if not 0.0 <= float(lambda_) <= 1.0:
      raise ValueError(f"`lambda_` must be in [0, 1], got {lambda_}.")
    if isinstance(enabled, str):
      raise ValueError(
          f"`enabled` must be a sequence of channel names, got the string "
          f"{enabled!r}; write ({enabled!r},) for a single channel.")
    enabled = tuple(enabled)
    unknown = sorted(set(enabled) - set(TERMS))
    if unknown:
      raise ValueError(
          f"Unknown channels {unknown} in `enabled`; choose from {TERMS}.")
    if len(set(enabled)) != len(enabled):
      raise ValueError(f"`enabled` lists a channel twice: {enabled}.")
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(TERMS))
    if unknown:
      raise ValueError(
          f"Unknown channels {unknown} in `weights`; choose from {TERMS}.")
    for name, value in weights.items():
      if float(value) < 0:
        raise ValueError(
            f"Channel weight for {name!r} must be >= 0, got {value}.")
    self.lambda_ = float(lambda_)
    self.channel_weights = {c: float(weights.get(c, 1.0)) for c in TERMS}
    # Keep the canonical order so that config and variables are stable.
    self.enabled = tuple(c for c in TERMS if c in enabled)
    self.mode = mode
    self.log_variances: Dict[str, tf.Variable] = {}
    if mode == "uncertainty" and self.enabled:
      for term in (BASIC,) + self.enabled:
        self.log_variances[term] = self.add_weight(
            name=f"log_variance_{term}", shape=(), dtype=tf.float32,
            initializer="zeros", trainable=True)

  def call(self, losses: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Returns the combined scalar loss.

    Args:
      losses: Mapping with key "basic" and every enabled channel, each a
        scalar loss tensor.

    Returns:
      The combined float32 scalar loss.

    Raises:
      ValueError: If the basic loss or an enabled channel's loss is missing.
    """
    missing = [k for k in (BASIC,) + self.enabled if k not in losses]
    if missing:
      raise ValueError(
          f"LossCombiner is missing losses {missing}; got {sorted(losses)}. "
          "Compute every enabled channel's loss or disable the channel.")
    basic = tf.cast(losses[BASIC], tf.float32)
    if not self.enabled:
      return basic
    terms = {k: tf.cast(losses[k], tf.float32) for k in self.enabled}
    if self.mode == "fixed":
      contrastive = tf.add_n(
          [self.channel_weights[k] * terms[k] for k in self.enabled])
      return self.lambda_ * basic + (1.0 - self.lambda_) * contrastive
    terms[BASIC] = basic
    return tf.add_n([
        tf.exp(-s) * terms[k] + s for k, s in self.log_variances.items()])

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update({
        "lambda_": self.lambda_,
        "weights": dict(self.channel_weights),
        "enabled": list(self.enabled),
        "mode": self.mode,
    })
    return config
