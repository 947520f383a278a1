"""MICConfig.tuned() equals the selected trial of the committed tuning record."""

import json
import os

import mic_tf  # noqa: F401
from mic_tf import tuning
from mic_tf.models.config import MICConfig

RECORD = os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                      "results", "tuning_mic", "best.json")


def test_tuned_preset_is_the_recorded_selection():
  with open(RECORD) as f:
    best = json.load(f)
  base = tuning.apply_params(
      tuning.training.ExperimentConfig.from_settings(mic=MICConfig()),
      best["params"])
  assert MICConfig.tuned() == base.mic


def test_tuned_accepts_overrides():
  config = MICConfig.tuned(terms=("ii",), lambda_=0.8)
  assert config.terms == ("ii",) and config.lambda_ == 0.8
  assert config.contrastive_batch_size == MICConfig.tuned().contrastive_batch_size
