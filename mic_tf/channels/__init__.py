"""MIC's three retrieval channels and their fusion (paper section 3.7).

Each channel is one ``tf.Module`` (``base.Channel``) holding its vectors and
its searcher(s): ``recommend`` serves (TF path, what a SavedModel runs),
``retrieve`` evaluates and tunes (numpy path, same code).

* U2I (``u2i``): the user's shared-space query retrieves items; beyond the
  paper, the query may also carry the user's history in the item space
  (``U2IConfig.history_weight``), still one search of one index.
* U2U (``u2u``): the user's user-space vector retrieves similar training
  users; their training items are ranked by neighbour weight and user-item
  cosine.
* I2I (``i2i``): the user's recent items retrieve similar items (item
  space); those are ranked by similar-item weight and user-item cosine.
* ItemKNN, UserKNN, EASE (``classical``): the reference models of
  ``mic_tf.baselines`` as channels, scored from the user's known items.
* Fused (``fusion``): one list from any of them, by quota, normalised
  score or reciprocal rank.

``assets`` computes a model's vectors and builds the channels, ``evaluate``
measures them, ``tuning`` picks their settings on validation users,
``raw_ids`` maps the data's raw ids to the protocol's ids for serving.
"""

from mic_tf.channels.assets import available_channels
from mic_tf.channels.assets import build_channels
from mic_tf.channels.assets import ChannelAssets
from mic_tf.channels.base import Channel
from mic_tf.channels.classical import EASEChannel
from mic_tf.channels.classical import EASEConfig
from mic_tf.channels.classical import ItemKNNChannel
from mic_tf.channels.classical import ItemKNNConfig
from mic_tf.channels.classical import UserKNNChannel
from mic_tf.channels.classical import UserKNNConfig
from mic_tf.channels.config import ChannelConfig
from mic_tf.channels.config import load_channel_config
from mic_tf.channels.config import load_json_option
from mic_tf.channels.encoder import EncodedUsers
from mic_tf.channels.encoder import ItemEncoder
from mic_tf.channels.encoder import UserEncoder
from mic_tf.channels.evaluate import evaluate_channels
from mic_tf.channels.evaluate import evaluate_u2i
from mic_tf.channels.fusion import fuse_lists
from mic_tf.channels.fusion import FusedChannel
from mic_tf.channels.fusion import FusionConfig
from mic_tf.channels.i2i import I2IChannel
from mic_tf.channels.i2i import I2IConfig
from mic_tf.channels.raw_ids import RawIds
from mic_tf.channels.tuning import DEFAULT_GRIDS
from mic_tf.channels.tuning import FUSION_FAMILIES
from mic_tf.channels.tuning import FUSION_FOLDS
from mic_tf.channels.tuning import grid_search
from mic_tf.channels.tuning import GridSearchResult
from mic_tf.channels.tuning import PRIOR_FUSION
from mic_tf.channels.tuning import PRIOR_MARGIN
from mic_tf.channels.tuning import tune_channels
from mic_tf.channels.u2i import U2IChannel
from mic_tf.channels.u2i import U2IConfig
from mic_tf.channels.u2u import U2UChannel
from mic_tf.channels.u2u import U2UConfig
from mic_tf.names import BASE_CHANNELS
from mic_tf.names import CHANNELS
from mic_tf.names import CLASSICAL_CHANNELS
from mic_tf.names import FUSABLE
