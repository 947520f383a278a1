"""The tower protocol: a Keras model from a features dict to a representation.

Any ``tf.keras.Model`` whose ``call(features, training=None)`` returns a
``(batch, d)`` tensor works as a user or item tower of ``MICModel``. A
multi-interest user tower returns ``(batch, K, d)`` and says so with a class
attribute ``multi_interest = True`` (``MICModel.multi_interest`` reads it;
a tower without the attribute is single-interest). Subclassing ``Tower``
adds one thing: the model splits its forward pass into ``embed`` (ids ->
embedded fields) and ``encode`` (embedded fields -> representation), so
``MICModel`` can apply ``EmbeddingDropout`` in the embedded feature space
between the two (paper section 3.3.1). For a plain Keras model, MIC perturbs
by field masking only.

How to plug in your own tower (this example runs in
``tests/towers/test_custom_tower.py``)::

  class MeanTower(mic_tf.towers.Tower):

    def __init__(self, fields, embedding_dim=128, output_dim=128, **kwargs):
      super().__init__(fields, embedding_dim, output_dim, **kwargs)
      self.head = tf.keras.layers.Dense(output_dim)

    def encode(self, embedded, features, training=None):
      return self.head(self.pooled_fields(embedded, features))

Register it with ``mic_tf.towers.register_tower("mean", build_fn)`` to make it
available as ``--tower=mean`` in every binary.
"""

from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from mic_tf import features as F


def _field_to_dict(f: F.FieldSpec) -> Dict[str, Any]:
  return {"name": f.name, "vocab_size": f.vocab_size, "kind": f.kind,
          "length": f.length, "shares": f.shares}


class FeatureEmbedding(tf.keras.layers.Layer):
  """One embedding table per field; tables have ``vocab_size + 1`` rows.

  The extra row is the field's mask token (``FieldSpec.mask_id``). Scalar
  fields give ``(B, dim)``, sequence and bag fields ``(B, L, dim)``.
  """

  def __init__(self, fields: Sequence[F.FieldSpec], dim: int,
               initializer: str = "glorot_uniform", **kwargs):
    super().__init__(**kwargs)
    self.fields = tuple(fields)
    self.dim = dim
    self.initializer = initializer
    names = {f.name for f in self.fields}
    self._tables = {}
    for f in self.fields:
      if f.shares and f.shares in names:
        continue
      self._tables[f.name] = tf.keras.layers.Embedding(
          f.vocab_size + 1, dim, embeddings_initializer=initializer,
          name=f"{f.name}_embedding")
    self._owner = {f.name: (f.shares if f.shares in self._tables else f.name)
                   for f in self.fields}

  def table(self, name: str) -> tf.keras.layers.Embedding:
    return self._tables[self._owner[name]]

  def call(self, features: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    out = {}
    for f in self.fields:
      if f.name not in features:
        raise KeyError(f"Feature {f.name!r} is missing from the input; got "
                       f"{sorted(features)}.")
      out[f.name] = self.table(f.name)(features[f.name])
    return out

  def get_config(self):
    config = super().get_config()
    config.update({"fields": [_field_to_dict(f) for f in self.fields],
                   "dim": self.dim, "initializer": self.initializer})
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["fields"] = [F.FieldSpec(**f) for f in config["fields"]]
    return cls(**config)


def masked_mean(embedded: tf.Tensor, ids: tf.Tensor) -> tf.Tensor:
  """Mean over the non-padding (id != 0) entries of a (B, L, d) tensor.

  Rows with no valid entry give zeros.
  """
  mask = tf.cast(tf.not_equal(ids, 0), embedded.dtype)[..., None]
  total = tf.reduce_sum(embedded * mask, axis=1)
  count = tf.reduce_sum(mask, axis=1)
  return total / tf.maximum(count, 1.0)


class Tower(tf.keras.Model):
  """Base class of the built-in towers: ``embed`` then ``encode``.

  Args:
    fields: The input fields this tower reads (other feature keys are
      ignored).
    embedding_dim: Width of every field embedding.
    output_dim: Width of the representation.
  """

  #: True for towers returning ``(B, K, d)`` interests (ComiRec's).
  multi_interest = False

  def __init__(self, fields: Sequence[F.FieldSpec], embedding_dim: int = 128,
               output_dim: int = 128, **kwargs):
    super().__init__(**kwargs)
    self.fields = tuple(fields)
    self.embedding_dim = embedding_dim
    self.output_dim = output_dim
    self.embedding = FeatureEmbedding(self.fields, embedding_dim,
                                      name="feature_embedding")

  def embed(self, features: Mapping[str, tf.Tensor],
            training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Looks up every field's embedding.

    Args:
      features: Feature dict (extra keys are ignored).
      training: Keras training flag.

    Returns:
      Field name -> embedded tensor.
    """
    del training
    return self.embedding(features)

  def encode(self, embedded: Mapping[str, tf.Tensor],
             features: Mapping[str, tf.Tensor],
             training: Optional[bool] = None) -> tf.Tensor:
    """Maps embedded fields to the representation. Subclasses implement it.

    Args:
      embedded: Output of ``embed`` (possibly perturbed).
      features: The id features (for padding masks).
      training: Keras training flag.

    Returns:
      ``(B, output_dim)`` or, for multi-interest towers, ``(B, K, output_dim)``.
    """
    raise NotImplementedError

  def call(self, features, training=None):
    return self.encode(self.embed(features, training=training), features,
                       training=training)

  def pooled_fields(self, embedded: Mapping[str, tf.Tensor],
                    features: Mapping[str, tf.Tensor],
                    skip: Sequence[str] = ()) -> tf.Tensor:
    """Concatenation of every field, multivalent fields mean-pooled."""
    parts = []
    for f in self.fields:
      if f.name in skip:
        continue
      e = embedded[f.name]
      parts.append(masked_mean(e, features[f.name]) if f.is_multivalent else e)
    return tf.concat(parts, axis=-1)

  def get_config(self):
    return {"fields": [_field_to_dict(f) for f in self.fields],
            "embedding_dim": self.embedding_dim,
            "output_dim": self.output_dim, "name": self.name}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["fields"] = [F.FieldSpec(**f) for f in config["fields"]]
    return cls(**config)

  def dummy_features(self, batch_size: int = 2) -> Dict[str, tf.Tensor]:
    """Zero-id features of the right shapes (to build the weights)."""
    out = {}
    for f in self.fields:
      shape = (batch_size, f.length) if f.is_multivalent else (batch_size,)
      out[f.name] = tf.zeros(shape, tf.int32)
    return out


def mlp(units: Sequence[int], output_dim: int, dropout: float,
        activation: str = "relu", name: str = "mlp") -> tf.keras.Sequential:
  """Hidden ReLU layers with dropout, then a linear output layer."""
  layers = []
  for i, u in enumerate(units):
    layers.append(tf.keras.layers.Dense(u, activation=activation,
                                        name=f"hidden_{i}"))
    if dropout > 0:
      layers.append(tf.keras.layers.Dropout(dropout, name=f"dropout_{i}"))
  layers.append(tf.keras.layers.Dense(output_dim, name="output"))
  return tf.keras.Sequential(layers, name=name)
