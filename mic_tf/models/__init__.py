"""Models: the MIC two-tower model and its configuration.

The names below are imported on first use, so that ``MICConfig`` (and
``mic_tf.config``, which nests it) can be read without loading TensorFlow.
"""

from typing import TYPE_CHECKING

from mic_tf import _lazy

_EXPORTS = {
    "MICConfig": "mic_tf.models.config",
    "encode_items": "mic_tf.models.encode",
    "encode_users": "mic_tf.models.encode",
    "MICModel": "mic_tf.models.mic_model",
    "load_parts": "mic_tf.models.saving",
    "save_parts": "mic_tf.models.saving",
    "Views": "mic_tf.models.views",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static readers (type checkers, the API docs) see
  from mic_tf.models.config import MICConfig
  from mic_tf.models.encode import encode_items
  from mic_tf.models.encode import encode_users
  from mic_tf.models.mic_model import MICModel
  from mic_tf.models.saving import load_parts
  from mic_tf.models.saving import save_parts
  from mic_tf.models.views import Views
