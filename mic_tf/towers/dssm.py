"""DSSM tower (Huang et al., 2013), as used by the MIC paper's base model.

Every field is embedded; multivalent fields (history, genres, an item's
users) are mean-pooled over their non-padding entries; the concatenation goes
through a ReLU MLP with dropout to the representation. The same class builds
the user tower and the item tower: only the fields differ.
"""

from typing import Sequence

from mic_tf import features as F
from mic_tf.towers import base


class DSSMTower(base.Tower):
  """Embeddings + masked mean pooling + MLP.

  Args:
    fields: Input fields.
    embedding_dim: Field embedding width (paper: 128).
    output_dim: Representation width (paper: 128).
    hidden_units: Widths of the hidden ReLU layers.
    dropout: Dropout after each hidden layer (paper: 0.2).
  """

  def __init__(self, fields: Sequence[F.FieldSpec], embedding_dim: int = 128,
               output_dim: int = 128, hidden_units: Sequence[int] = (256,),
               dropout: float = 0.2, **kwargs):
    super().__init__(fields, embedding_dim, output_dim, **kwargs)
    self.hidden_units = tuple(hidden_units)
    self.dropout = dropout
    self.head = base.mlp(self.hidden_units, output_dim, dropout)

  def encode(self, embedded, features, training=None):
    return self.head(self.pooled_fields(embedded, features), training=training)

  def get_config(self):
    config = super().get_config()
    config.update({"hidden_units": list(self.hidden_units),
                   "dropout": self.dropout})
    return config
