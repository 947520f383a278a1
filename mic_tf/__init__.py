"""mic-tf: Model-agnostic Integrated Cross-channel recommenders (MIC).

Importing ``mic_tf`` first sets ``TF_USE_LEGACY_KERAS=1`` so that ``tf.keras``
is Keras 2 (TensorFlow Recommenders needs it), then exposes the main classes.
"""

from mic_tf import _env  # noqa: F401  (must run before tf.keras is touched)

# pylint: disable=g-import-not-at-top,wrong-import-position
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel
from mic_tf.towers.base import Tower
from mic_tf.towers.registry import build_towers, register_tower

__version__ = "0.1.0"
