"""ComiRec-DR user tower (Cen et al., KDD 2020): dynamic-routing capsules.

"Controllable Multi-Interest Framework for Recommendation", section 3.2
(dynamic routing method). Each history item ``e_t`` (a primary capsule) is
mapped by a position-specific bilinear map to one prediction per interest
capsule, ``u[k, t]``; routing then iterates (3 times by default)

  ``c[:, t] = softmax_k(b[:, t])``  coupling coefficients over the K
                                   interests, zero at padding;
  ``v_k = squash(sum_t c[k, t] u[k, t])``,
  ``b[k, t] += u[k, t] . v_k``     agreement update,

with ``u[k, t] = W[k, t] e_t`` and ``squash(s) = |s|^2 / (1 + |s|^2) s / |s|``,
starting from ``b = 0``. The ``K`` capsules ``v_k`` are the interests.

Structure as in ComiRec's TensorFlow ``CapsuleNetwork`` with
``bilinear_type=2`` (``Model_ComiRec_DR``): one ``(K * d_out, d)`` matrix per
history position, the softmax of the routing logits runs over the interests,
padded positions are zeroed both in the inputs and in the coupling
coefficients, and the routing logits are not back-propagated (the predictions
are ``stop_gradient``-ed in every iteration but the last, so gradients reach
the bilinear weights only through the final weighted sum). No ReLU layer
follows the capsules (ComiRec-DR's ``relu_layer=False``).

MIC-specific choices, shared with ComiRec-SA (see ``comirec_sa`` for the
rationale): user attributes are projected to ``output_dim`` and added to
every capsule after routing (``use_attributes=False``: history only); the
tower's ``dropout`` applies to the history embeddings and the attribute
vector; the capsules are ``output_dim`` wide directly (the bilinear map goes
from ``embedding_dim`` to ``output_dim``). An all-padding history gives zero
capsules (plus the attribute offset). The bilinear weights are initialised
from ``N(0, 1/embedding_dim)`` (ComiRec uses ``N(0, 1)``), which keeps the
capsule inputs at the embeddings' scale for any width.

The item tower stays a ``DSSMTower`` (``--tower=comirec_dr`` replaces only the
user tower).
"""

from typing import Optional, Sequence

import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers.comirec_sa import MultiInterestTower


def squash(capsules: tf.Tensor, epsilon: float = 1e-9) -> tf.Tensor:
  """Capsule non-linearity: keeps the direction, maps the norm into [0, 1).

  Args:
    capsules: ``(..., d)`` vectors.
    epsilon: Keeps the zero vector finite (it maps to zero).

  Returns:
    ``|s|² / (1 + |s|²) · s / |s|`` on the last axis.
  """
  squared = tf.reduce_sum(tf.square(capsules), axis=-1, keepdims=True)
  scale = squared / (1.0 + squared) / tf.sqrt(squared + epsilon)
  return scale * capsules


class ComiRecDRTower(MultiInterestTower):
  """ComiRec-DR: ``K`` interest capsules by dynamic routing.

  Args:
    fields: Input fields; must include the history sequence field.
    embedding_dim: Field embedding width.
    output_dim: Width of each interest capsule.
    num_interests: ``K`` (ComiRec: 4).
    dropout: See ``MultiInterestTower``.
    routing_iterations: Routing iterations (ComiRec: 3).
    use_attributes: See ``MultiInterestTower``.
    history_field: Name of the history sequence field.
    **kwargs: Keras model arguments (``name``).

  Raises:
    ValueError: On fewer than one routing iteration or other bad arguments.
  """

  def __init__(self, fields: Sequence[F.FieldSpec], embedding_dim: int = 128,
               output_dim: int = 128, num_interests: int = 4,
               dropout: float = 0.2, routing_iterations: int = 3,
               use_attributes: bool = True, history_field: str = F.HISTORY,
               **kwargs):
    super().__init__(fields, embedding_dim, output_dim, num_interests,
                     dropout, use_attributes, history_field, **kwargs)
    if int(routing_iterations) < 1:
      raise ValueError("routing_iterations must be >= 1, got "
                       f"{routing_iterations}.")
    self.routing_iterations = int(routing_iterations)
    # W[t] maps the item at position t to its K capsule predictions.
    self.bilinear = self.add_weight(
        name="bilinear",
        shape=(self.sequence_length, embedding_dim,
               self.num_interests * output_dim),
        initializer=tf.keras.initializers.RandomNormal(
            stddev=embedding_dim ** -0.5),
        trainable=True)

  def predictions(self, history: tf.Tensor) -> tf.Tensor:
    """``(B, K, T, output_dim)`` capsule predictions of each history item."""
    batch = tf.shape(history)[0]
    hat = tf.einsum("bte,tek->btk", history, self.bilinear)
    hat = tf.reshape(hat, [batch, self.sequence_length, self.num_interests,
                           self.output_dim])
    return tf.transpose(hat, [0, 2, 1, 3])

  def extract_interests(self, history, mask, training=None):
    hat = self.predictions(history)
    frozen = tf.stop_gradient(hat)
    valid = tf.cast(mask, hat.dtype)[:, None, :]  # (B, 1, T)
    logits = tf.zeros_like(hat[..., 0])  # (B, K, T), routing logits b
    capsules = None
    for i in range(self.routing_iterations):
      coupling = tf.nn.softmax(logits, axis=1) * valid
      if i < self.routing_iterations - 1:
        capsules = squash(tf.einsum("bkt,bktd->bkd", coupling, frozen))
        logits = logits + tf.einsum("bktd,bkd->bkt", frozen, capsules)
      else:
        capsules = squash(tf.einsum("bkt,bktd->bkd", coupling, hat))
    return capsules

  def get_config(self):
    config = super().get_config()
    config.update({"routing_iterations": self.routing_iterations})
    return config


def build_comirec_dr(fields: Sequence[F.FieldSpec], embedding_dim: int,
                     output_dim: int, dropout: float,
                     hidden_units: Optional[Sequence[int]] = None,
                     **kwargs) -> ComiRecDRTower:
  """Registry builder (``--tower=comirec_dr``): the user tower.

  Args:
    fields: The user fields.
    embedding_dim: Field embedding width.
    output_dim: Capsule width.
    dropout: See ``MultiInterestTower``.
    hidden_units: Ignored (the tower has no MLP). Accepted because the
      trainer passes it to every tower.
    **kwargs: ``ComiRecDRTower`` arguments (``num_interests``,
      ``routing_iterations``, ``name``, ...).

  Returns:
    The tower.
  """
  del hidden_units
  return ComiRecDRTower(fields, embedding_dim, output_dim, dropout=dropout,
                        **kwargs)
