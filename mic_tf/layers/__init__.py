"""Keras layers of the MIC model."""

from mic_tf.layers.embedding_dropout import EmbeddingDropout
from mic_tf.layers.field_mask import FieldMask
