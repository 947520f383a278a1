"""Process-level settings that must be in place before TensorFlow builds Keras.

TensorFlow Recommenders 0.7.7 is written against Keras 2 (``tf_keras``). Under
TensorFlow 2.16+ ``tf.keras`` resolves to Keras 3 unless ``TF_USE_LEGACY_KERAS``
is set before ``tf.keras`` is first touched. ``tf.keras`` is resolved lazily, so
setting the variable here works even when the user imported ``tensorflow``
before ``mic_tf``, as long as nothing touched ``tf.keras`` in between.
"""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def check_keras() -> None:
  """Raises a clear error if ``tf.keras`` was already bound to Keras 3."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  module = tf.keras.layers.Layer.__module__
  if not module.startswith("tf_keras"):
    raise ImportError(
        "mic_tf needs Keras 2 (tf_keras) but tf.keras resolves to "
        f"{module!r}: something touched tf.keras before mic_tf was imported. "
        "Import mic_tf first, or set TF_USE_LEGACY_KERAS=1 in the environment, "
        "and make sure `pip install tf-keras~=2.20.0` is done.")


if "tensorflow" in sys.modules:
  # TensorFlow came first: fail now, with the fix, if it already bound Keras 3.
  check_keras()
