"""Non-linear projection heads into the shared user-item space.

MIC learns users and items in their own spaces (the user-user and item-item
losses work there) and projects both into one shared space where user-item
similarity is measured (paper sections 3.3.2 and 3.4).
"""

from typing import Optional

import tensorflow as tf


class ProjectionHead(tf.keras.layers.Layer):
  """``Dense(hidden, relu) -> Dense(output_dim)``, applied on the last axis.

  Works on ``(B, d)`` and on multi-interest ``(B, K, d)`` inputs.

  Args:
    output_dim: Width of the shared space.
    hidden_dim: Width of the hidden layer; defaults to ``output_dim``.
  """

  def __init__(self, output_dim: int = 128, hidden_dim: Optional[int] = None,
               **kwargs):
    super().__init__(**kwargs)
    self.output_dim = output_dim
    self.hidden_dim = hidden_dim or output_dim
    self.hidden = tf.keras.layers.Dense(self.hidden_dim, activation="relu",
                                        name="hidden")
    self.out = tf.keras.layers.Dense(output_dim, name="out")

  def call(self, inputs):
    return self.out(self.hidden(inputs))

  def get_config(self):
    config = super().get_config()
    config.update({"output_dim": self.output_dim,
                   "hidden_dim": self.hidden_dim})
    return config
