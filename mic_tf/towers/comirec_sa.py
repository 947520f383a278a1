"""ComiRec-SA user tower (Cen et al., KDD 2020): self-attentive multi-interest.

"Controllable Multi-Interest Framework for Recommendation", section 3.2
(self-attentive method, after Lin et al. 2017). With ``H`` the ``(T, d)``
history item embeddings and ``P`` learned position embeddings:

  ``A = softmax(W2 · tanh(W1 · (H + P)^T))``  (``K x T``, softmax over ``T``)
  ``V = A · H``                               (``K`` interests, ``K x d``)

Structure as in ComiRec's TensorFlow ``Model_ComiRec_SA``: the position
embeddings enter the attention logits only (interests mix the plain item
embeddings); ``W1`` has ``4 * d`` units by default; padding positions (id 0)
get a large negative logit, so they take no attention weight; there is no
non-linearity after ``A · H``. Because the history is right-aligned (left
padded), position ``T - 1`` is always the most recent item.

MIC-specific choices (ComiRec itself sees only the item history):

* **User attributes.** Scalar attribute fields (and bag fields, mean-pooled)
  are concatenated, passed through dropout and one linear layer to
  ``output_dim``, and *added to every interest*. The attributes thus move all
  of a user's interests together (a user-level offset) and never decide
  which interest serves a target. ``use_attributes=False`` gives ComiRec's
  history-only tower (the attribute fields are then not even embedded).
* **Output width.** Interests live in the embedding space (width
  ``embedding_dim``), as in ComiRec; when ``output_dim`` differs a linear map
  (shared by the interests) brings them to ``output_dim``
  (``output_projection=True`` forces it).
* **Dropout.** The tower's ``dropout`` rate is applied to the history
  embeddings before interest extraction and to the attribute vector
  (ComiRec has none; the MIC paper trains every model with 0.2).
* **Empty history.** All-padding rows give zero interests (plus the attribute
  offset): finite, and independent of whatever sits in padded positions.

How MIC consumes the ``(B, K, d)`` output (``mic_tf/models/config.py``): the
basic and UI losses use the interest that best matches the target in the
shared space (ComiRec's hard readout), the UU loss and U2U channel use the
mean of the unit-normalised interests, and U2I retrieval merges the
per-interest top-k (``mic_tf.channels.u2i``).

The item tower stays a ``DSSMTower`` (``--tower=comirec_sa`` replaces only the
user tower), so the compared models share one item side.
"""

from typing import Mapping, Optional, Sequence

import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers import base
from mic_tf.towers.youtube_dnn import history_spec

class MultiInterestTower(base.Tower):
  """Base of the ComiRec towers: history -> ``K`` interests (+ attributes).

  Subclasses implement ``extract_interests``. This class finds the history
  field, zeroes padded positions, applies dropout, and adds the projected user
  attribute vector to every interest (see the module docstring).

  Args:
    fields: Input fields; must include the history sequence field.
    embedding_dim: Field embedding width.
    output_dim: Width of each interest vector.
    num_interests: Number of interests ``K`` (ComiRec: 4).
    dropout: Dropout rate on history embeddings and the attribute vector.
    use_attributes: Whether non-history fields contribute (as an offset added
      to every interest); if False they are dropped from ``fields``.
    history_field: Name of the history sequence field.
    **kwargs: Keras model arguments (``name``).

  Raises:
    ValueError: On a missing history field or out-of-range arguments.
  """

  multi_interest = True

  def __init__(self, fields: Sequence[F.FieldSpec], embedding_dim: int = 128,
               output_dim: int = 128, num_interests: int = 4,
               dropout: float = 0.2, use_attributes: bool = True,
               history_field: str = F.HISTORY, **kwargs):
    history = history_spec(fields, history_field)
    if int(num_interests) < 1:
      raise ValueError(f"num_interests must be >= 1, got {num_interests}.")
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    if not use_attributes:
      fields = [history]
    super().__init__(fields, embedding_dim, output_dim, **kwargs)
    self.history = history
    self.history_field = history_field
    self.num_interests = int(num_interests)
    self.dropout = float(dropout)
    self.use_attributes = bool(use_attributes)
    self.attribute_fields = tuple(f for f in self.fields
                                  if f.name != history_field)
    self.history_dropout = tf.keras.layers.Dropout(self.dropout,
                                                   name="history_dropout")
    self.attribute_projection = None
    if self.attribute_fields:
      self.attribute_dropout = tf.keras.layers.Dropout(
          self.dropout, name="attribute_dropout")
      self.attribute_projection = tf.keras.layers.Dense(
          output_dim, name="attribute_projection")

  @property
  def sequence_length(self) -> int:
    """Length ``T`` of the history field."""
    return self.history.length

  def extract_interests(self, history: tf.Tensor, mask: tf.Tensor,
                        training: Optional[bool] = None) -> tf.Tensor:
    """Maps history embeddings to interests. Subclasses implement it.

    Args:
      history: ``(B, T, embedding_dim)`` embeddings, zero at padding.
      mask: ``(B, T)`` bool, True at real (non-padding) positions.
      training: Keras training flag.

    Returns:
      ``(B, K, output_dim)`` interests.
    """
    raise NotImplementedError

  def attribute_offset(self, embedded: Mapping[str, tf.Tensor],
                       features: Mapping[str, tf.Tensor],
                       training: Optional[bool] = None) -> tf.Tensor:
    """``(B, 1, output_dim)`` projection of the user attributes."""
    attributes = self.pooled_fields(embedded, features,
                                    skip=(self.history_field,))
    attributes = self.attribute_dropout(attributes, training=training)
    return self.attribute_projection(attributes)[:, None, :]

  def encode(self, embedded, features, training=None):
    """History (and attributes) -> ``(B, K, output_dim)`` interests."""
    ids = features[self.history_field]
    history = embedded[self.history_field]
    length = history.shape[1]
    if length is not None and length != self.sequence_length:
      raise ValueError(
          f"{self.history_field!r} has length {length} but this tower was "
          f"built for length {self.sequence_length}; pad or truncate the "
          "history to the FieldSpec length (features.pad_history).")
    mask = tf.not_equal(ids, 0)
    history = history * tf.cast(mask, history.dtype)[..., None]
    history = self.history_dropout(history, training=training)
    interests = self.extract_interests(history, mask, training=training)
    if self.attribute_projection is not None:
      interests = interests + self.attribute_offset(embedded, features,
                                                    training=training)
    return interests

  def get_config(self):
    config = super().get_config()
    config.update({"num_interests": self.num_interests,
                   "dropout": self.dropout,
                   "use_attributes": self.use_attributes,
                   "history_field": self.history_field})
    return config


class ComiRecSATower(MultiInterestTower):
  """ComiRec-SA: self-attentive extraction of ``K`` interests.

  Args:
    fields: Input fields; must include the history sequence field.
    embedding_dim: Field embedding width ``d``.
    output_dim: Width of each interest.
    num_interests: ``K`` (ComiRec: 4).
    dropout: See ``MultiInterestTower``.
    attention_units: Width of ``W1``; ``None`` gives ComiRec's ``4 * d``.
    add_positions: Add learned position embeddings to the attention input.
    output_projection: Linear map of the interests to ``output_dim``;
      ``None`` maps only when ``output_dim != embedding_dim``.
    use_attributes: See ``MultiInterestTower``.
    history_field: Name of the history sequence field.
    **kwargs: Keras model arguments (``name``).

  Raises:
    ValueError: If ``output_projection`` is False but the widths differ, or
      on other bad arguments.
  """

  def __init__(self, fields: Sequence[F.FieldSpec], embedding_dim: int = 128,
               output_dim: int = 128, num_interests: int = 4,
               dropout: float = 0.2, attention_units: Optional[int] = None,
               add_positions: bool = True,
               output_projection: Optional[bool] = None,
               use_attributes: bool = True, history_field: str = F.HISTORY,
               **kwargs):
    super().__init__(fields, embedding_dim, output_dim, num_interests,
                     dropout, use_attributes, history_field, **kwargs)
    if output_projection is None:
      output_projection = output_dim != embedding_dim
    if not output_projection and output_dim != embedding_dim:
      raise ValueError(
          f"output_projection=False needs output_dim == embedding_dim, got "
          f"{output_dim} and {embedding_dim}; allow the projection or make "
          "the widths equal.")
    self.attention_units = int(attention_units or 4 * embedding_dim)
    self.add_positions = bool(add_positions)
    self.output_projection = bool(output_projection)
    self.attention_hidden = tf.keras.layers.Dense(
        self.attention_units, activation="tanh", name="attention_hidden")
    # No bias: a per-interest constant cancels in the softmax over positions.
    self.attention_logits = tf.keras.layers.Dense(
        self.num_interests, use_bias=False, name="attention_logits")
    if self.add_positions:
      self.position_embedding = self.add_weight(
          name="position_embedding",
          shape=(self.sequence_length, embedding_dim),
          initializer="glorot_uniform", trainable=True)
    self.interest_projection = None
    if self.output_projection:
      self.interest_projection = tf.keras.layers.Dense(
          output_dim, name="interest_projection")

  def attention(self, history: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """``(B, K, T)`` attention weights; zero on padding (unless all padding).

    Args:
      history: ``(B, T, d)`` history embeddings, zero at padding.
      mask: ``(B, T)`` bool, True at real positions.

    Returns:
      Softmax weights over the ``T`` positions for each of the ``K`` heads.
    """
    inputs = history
    if self.add_positions:
      inputs = history + self.position_embedding[None]
    logits = self.attention_logits(self.attention_hidden(inputs))
    logits = tf.transpose(logits, [0, 2, 1])  # (B, K, T)
    # Padding gets the dtype's most negative finite value (ComiRec: -2**32+1):
    # zero weight, yet an all-padding row still has a finite, uniform softmax.
    logits = tf.where(mask[:, None, :], logits,
                      tf.constant(logits.dtype.min, logits.dtype))
    return tf.nn.softmax(logits, axis=-1)

  def extract_interests(self, history, mask, training=None):
    weights = self.attention(history, mask)
    interests = tf.matmul(weights, history)  # (B, K, d)
    if self.interest_projection is not None:
      interests = self.interest_projection(interests)
    return interests

  def get_config(self):
    config = super().get_config()
    config.update({"attention_units": self.attention_units,
                   "add_positions": self.add_positions,
                   "output_projection": self.output_projection})
    return config



def build_comirec_sa(fields: Sequence[F.FieldSpec], embedding_dim: int,
                     output_dim: int, dropout: float,
                     hidden_units: Optional[Sequence[int]] = None,
                     **kwargs) -> ComiRecSATower:
  """Registry builder (``--tower=comirec_sa``): the user tower.

  Args:
    fields: The user fields.
    embedding_dim: Field embedding width.
    output_dim: Interest width.
    dropout: See ``MultiInterestTower``.
    hidden_units: Ignored (the tower has no MLP; set ``attention_units``
      instead). Accepted because the trainer passes it to every tower.
    **kwargs: ``ComiRecSATower`` arguments (``num_interests``,
      ``attention_units``, ``name``, ...).

  Returns:
    The tower.
  """
  del hidden_units
  return ComiRecSATower(fields, embedding_dim, output_dim, dropout=dropout,
                        **kwargs)
