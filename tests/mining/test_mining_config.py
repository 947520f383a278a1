"""Tests of MiningConfig validation and serialisation."""

import json

import mic_tf  # noqa: F401  (Keras-2 environment first)
import pytest

from mic_tf.mining import MiningConfig


def test_defaults_mine_every_channel_and_round_trip():
  config = MiningConfig()
  assert config.channels == ("uu", "ii", "ui") and config.enabled
  again = MiningConfig.from_dict(json.loads(config.to_json()))
  assert again == config


def test_channels_are_canonical_and_off_disables_mining():
  assert MiningConfig(channels=["ui", "uu", "ui"]).channels == ("uu", "ui")
  off = MiningConfig.off()
  assert off.channels == () and not off.enabled


@pytest.mark.parametrize("kwargs, message", [
    (dict(channels=("u2u",)), "Unknown mining channel"),
    (dict(channels="uu"), "sequence of names"),
    (dict(num_neighbours=0), "num_neighbours"),
    (dict(num_clusters=1), "num_clusters must be >= 2"),
    (dict(hard_negatives=-1), "hard_negatives"),
    (dict(hard_negative_pool="random"), "hard_negative_pool"),
    (dict(positive_weight=-0.5), "positive_weight"),
    (dict(refresh_every_steps=0), "refresh_every_steps"),
    (dict(kmeans_metric="l1"), "kmeans_metric"),
    (dict(num_clusters=30, kmeans_sample_size=10), "kmeans_sample_size"),
    (dict(index="faiss"), "index must be one of"),
])
def test_bad_values_raise_clear_errors(kwargs, message):
  with pytest.raises(ValueError, match=message):
    MiningConfig(**kwargs)
