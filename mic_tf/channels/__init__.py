"""MIC's three retrieval channels and their fusion (paper section 3.7).

* U2I (``u2i``): the user's shared-space query retrieves items.
* U2U (``u2u``): the user's user-space vector retrieves similar training
  users; their training items are ranked by neighbour weight and user-item
  cosine.
* I2I (``i2i``): the user's recent items retrieve similar items (item
  space); those are ranked by similar-item weight and user-item cosine.
* Fusion (``fusion``): one list from the three, by quota or by normalised
  score.

Vectors come from a trained model (``assets``), searches go through an
injected ``mic_tf.indexes.Index`` (exact or ScaNN), and the ranking after
the search is TensorFlow (``ranking``), shared with the exported serving
models (``mic_tf.export``). ``evaluate`` measures each channel; ``tuning``
picks the settings on validation users; ``report`` does both for a finished
run (``experiments/evaluate.py``).
"""

from mic_tf.channels.assets import build_channel_assets
from mic_tf.channels.assets import build_channel_indexes
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.assets import ChannelIndexes
from mic_tf.channels.config import BASE_CHANNELS
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.config import CHANNELS
from mic_tf.channels.config import load_channel_config
from mic_tf.channels.config import load_json_option
from mic_tf.channels.evaluate import build_channels
from mic_tf.channels.evaluate import build_context
from mic_tf.channels.evaluate import evaluate_channels
from mic_tf.channels.evaluate import evaluate_context
from mic_tf.channels.evaluate import EvaluationContext
from mic_tf.channels.evaluate import retrieve_channels
from mic_tf.channels.fusion import fuse
from mic_tf.channels.fusion import fuse_quota
from mic_tf.channels.fusion import fuse_scores
from mic_tf.channels.fusion import FusionConfig
from mic_tf.channels.fusion import quotas
from mic_tf.channels.i2i import I2IChannel
from mic_tf.channels.i2i import I2IConfig
from mic_tf.channels.i2i import rank_i2i
from mic_tf.channels.queries import ChannelQueries
from mic_tf.channels.queries import encode_queries
from mic_tf.channels.report import evaluate_run
from mic_tf.channels.report import format_table
from mic_tf.channels.tuning import grid_search
from mic_tf.channels.tuning import GridSearchResult
from mic_tf.channels.tuning import tune_channels
from mic_tf.channels.u2i import rank_u2i
from mic_tf.channels.u2i import U2IChannel
from mic_tf.channels.u2u import neighbour_histories
from mic_tf.channels.u2u import rank_u2u
from mic_tf.channels.u2u import U2UChannel
from mic_tf.channels.u2u import U2UConfig
