"""Save and reload the parts of a trained ``MICModel`` on their own.

``save_parts(model, directory)`` writes four Keras SavedModels:

  directory/user_tower        features dict -> user-space representation
  directory/item_tower        item features dict -> item-space representation
  directory/user_projection   user space -> shared space
  directory/item_projection   item space -> shared space

and ``load_parts(directory)`` reloads them as callables whose outputs equal
the originals'. Reloading needs only TensorFlow (no mic_tf classes). For
serving models with named signatures and ScaNN indexes see
``mic_tf.export``.
"""

import os
from typing import Dict

import tensorflow as tf

PARTS = ("user_tower", "item_tower", "user_projection", "item_projection")


def _projection_model(layer: tf.keras.layers.Layer, dim: int
                      ) -> tf.keras.Model:
  inputs = tf.keras.Input((dim,), name="representation")
  return tf.keras.Model(inputs, layer(inputs), name=layer.name)


def save_parts(model, directory: str) -> Dict[str, str]:
  """Saves towers and projection heads of a built ``MICModel``.

  Args:
    model: A ``MICModel`` whose variables exist (trained or built).
    directory: Output directory (created).

  Returns:
    Part name -> path.
  """
  tf.io.gfile.makedirs(directory)
  for tower in (model.user_tower, model.item_tower):
    if hasattr(tower, "dummy_features"):
      # MICModel drives towers through embed/encode; one __call__ records
      # the input signature Keras needs to save them.
      tower(tower.dummy_features(), training=False)
  paths = {p: os.path.join(directory, p) for p in PARTS}
  model.user_tower.save(paths["user_tower"], save_format="tf",
                        include_optimizer=False)
  model.item_tower.save(paths["item_tower"], save_format="tf",
                        include_optimizer=False)
  user_dim = int(model.user_tower.output_dim)
  item_dim = int(model.item_tower.output_dim)
  _projection_model(model.user_projection, user_dim).save(
      paths["user_projection"], save_format="tf", include_optimizer=False)
  _projection_model(model.item_projection, item_dim).save(
      paths["item_projection"], save_format="tf", include_optimizer=False)
  return paths


def load_parts(directory: str) -> Dict[str, tf.keras.Model]:
  """Reloads what ``save_parts`` wrote.

  Raises:
    FileNotFoundError: If a part is missing.
  """
  out = {}
  for p in PARTS:
    path = os.path.join(directory, p)
    if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
      raise FileNotFoundError(f"{path} holds no SavedModel; write it with "
                              "mic_tf.models.saving.save_parts.")
    out[p] = tf.keras.models.load_model(path, compile=False)
  return out
