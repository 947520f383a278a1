"""YouTube DNN user tower (Covington et al., 2016), a MIC plug-in baseline.

The candidate-generation network of "Deep Neural Networks for YouTube
Recommendations" (RecSys 2016, section 3 and Figure 3): the embeddings of the
watched items are averaged into a *watch vector*, concatenated with the
embeddings of the user's other features (demographics, ...) and fed to a
"tower" of fully connected ReLU layers. The output of the **top ReLU layer** is
the user vector ``u`` used for nearest-neighbour retrieval.

How this differs from ``DSSMTower`` (the paper's base model), with the same
``hidden_units``:

* the top layer that produces the ``output_dim`` user vector is a ReLU layer
  (Covington's "depth" experiments: ``1024 ReLU -> 512 ReLU -> 256 ReLU``, the
  last one being the user vector), where ``DSSMTower`` ends in a linear layer;
  ``output_activation=None`` gives the linear variant;
* when built directly, the default tower is Covington's pyramid
  (``4·d ReLU -> 2·d ReLU -> d ReLU``, i.e. 1024/512/256 for ``d = 256``)
  rather than DSSM's single hidden layer;
* the history (watch) field is required: the watch vector is the model's
  core input, so a tower without one is a configuration error.

Features of Covington's model that the MIC datasets do not have (the "example
age", search tokens, geography) are not modelled.

Only the *user* tower is a YouTube DNN: under ``--tower=youtube_dnn`` the item
tower stays a ``DSSMTower`` over the item fields (Covington's item vectors are
the softmax weights, i.e. item-id embeddings; the DSSM item tower contains
that and the item attributes), so every compared model shares one item side
as in the MIC paper's plug-in experiments (section 4.4.3).
"""

from typing import Optional, Sequence

import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers import base


def history_spec(fields: Sequence[F.FieldSpec], name: str) -> F.FieldSpec:
  """The multivalent history field named ``name`` among ``fields``.

  Args:
    fields: The tower's fields.
    name: Name of the history field.

  Returns:
    Its ``FieldSpec``.

  Raises:
    ValueError: If there is no such field or it is not a sequence/bag field
      with a positive length.
  """
  for f in fields:
    if f.name == name:
      if not f.is_multivalent or f.length <= 0:
        raise ValueError(
            f"Field {name!r} must be a sequence field of positive length "
            f"(kind={f.kind!r}, length={f.length}); pass the history field's "
            "name as history_field.")
      return f
  raise ValueError(
      f"This tower needs a history field named {name!r} but its fields are "
      f"{[f.name for f in fields]}; build it from FeatureSpec.user_fields or "
      "pass history_field=<name of the sequence field>.")


class YouTubeDNNTower(base.Tower):
  """Watch vector + user feature embeddings -> ReLU tower -> user vector.

  Args:
    fields: Input fields; must include the history field.
    embedding_dim: Field embedding width (paper: 128).
    output_dim: Width of the user vector (paper: 128).
    hidden_units: Hidden ReLU layer widths below the output layer; ``None``
      gives Covington's pyramid ``(4 * output_dim, 2 * output_dim)``.
    dropout: Dropout after each hidden layer (MIC paper: 0.2).
    output_activation: Activation of the output layer: ``"relu"``
      (Covington: the user vector is the top ReLU layer) or ``None`` (linear).
    history_field: Name of the watched-items sequence field.
    **kwargs: Keras model arguments (``name``).

  Raises:
    ValueError: On a missing history field or a bad dropout rate.
  """

  def __init__(self, fields: Sequence[F.FieldSpec], embedding_dim: int = 128,
               output_dim: int = 128,
               hidden_units: Optional[Sequence[int]] = None,
               dropout: float = 0.2, output_activation: Optional[str] = "relu",
               history_field: str = F.HISTORY, **kwargs):
    history_spec(fields, history_field)
    if not 0.0 <= dropout < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    super().__init__(fields, embedding_dim, output_dim, **kwargs)
    if hidden_units is None:
      hidden_units = (4 * output_dim, 2 * output_dim)
    self.hidden_units = tuple(int(u) for u in hidden_units)
    self.dropout = float(dropout)
    self.output_activation = output_activation
    self.history_field = history_field
    self.tower = tf.keras.Sequential(name="relu_tower")
    for i, units in enumerate(self.hidden_units):
      self.tower.add(tf.keras.layers.Dense(units, activation="relu",
                                           name=f"hidden_{i}"))
      if self.dropout > 0:
        self.tower.add(tf.keras.layers.Dropout(self.dropout,
                                               name=f"dropout_{i}"))
    self.tower.add(tf.keras.layers.Dense(output_dim,
                                         activation=output_activation,
                                         name="user_vector"))

  def encode(self, embedded, features, training=None):
    """Concatenates the watch vector and the other fields; runs the tower."""
    watch = base.masked_mean(embedded[self.history_field],
                             features[self.history_field])
    others = [f.name for f in self.fields if f.name != self.history_field]
    parts = [watch]
    if others:
      parts.append(self.pooled_fields(embedded, features,
                                      skip=(self.history_field,)))
    return self.tower(tf.concat(parts, axis=-1), training=training)

  def get_config(self):
    config = super().get_config()
    config.update({"hidden_units": list(self.hidden_units),
                   "dropout": self.dropout,
                   "output_activation": self.output_activation,
                   "history_field": self.history_field})
    return config


def build_youtube_dnn(fields: Sequence[F.FieldSpec], embedding_dim: int,
                      output_dim: int, dropout: float,
                      **kwargs) -> YouTubeDNNTower:
  """Registry builder (``--tower=youtube_dnn``): the user tower.

  Args:
    fields: The user fields.
    embedding_dim: Field embedding width.
    output_dim: User vector width.
    dropout: Dropout after each hidden layer.
    **kwargs: ``YouTubeDNNTower`` arguments (``hidden_units``, ``name``,
      ``output_activation``, ...).

  Returns:
    The tower.

  Raises:
    ValueError: If ``num_interests`` is given (the model has one interest).
  """
  if kwargs.pop("num_interests", None) not in (None, 1):
    raise ValueError("youtube_dnn gives one vector per user; drop "
                     "num_interests or use --tower=comirec_sa/comirec_dr.")
  return YouTubeDNNTower(fields, embedding_dim, output_dim, dropout=dropout,
                         **kwargs)
