"""Towers: Keras models from a features dict to a representation."""

from mic_tf.towers.base import FeatureEmbedding, Tower, masked_mean, mlp
from mic_tf.towers.dssm import DSSMTower
from mic_tf.towers.registry import (available_towers, build_towers,
                                    register_tower)
