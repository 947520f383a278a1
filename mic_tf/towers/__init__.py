"""Towers: Keras models from a features dict to a representation."""

from mic_tf.towers.base import FeatureEmbedding, Tower, masked_mean, mlp
from mic_tf.towers.dssm import DSSMTower
from mic_tf.towers.registry import (available_towers, build_towers,
                                    register_tower)
from mic_tf.towers.comirec_dr import ComiRecDRTower, squash
from mic_tf.towers.comirec_sa import ComiRecSATower, MultiInterestTower
from mic_tf.towers.youtube_dnn import YouTubeDNNTower
