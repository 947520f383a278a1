"""Models: the MIC two-tower model and its configuration."""

from mic_tf.models.config import MICConfig
from mic_tf.models.encode import encode_items, encode_users
from mic_tf.models.mic_model import MICModel
from mic_tf.models.saving import load_parts, save_parts
from mic_tf.models.views import Views
