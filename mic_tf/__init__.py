"""mic-tf: Model-agnostic Integrated Cross-channel recommenders (MIC).

Entry points (the README's quickstart uses them; ``mic_tf.api`` has the
details)::

  import mic_tf

  data = mic_tf.load_data("ml-100k")                  # fetch, protocol, features
  model = mic_tf.build_model(data, tower="dssm",      # a registered tower
                             mic=mic_tf.MICConfig())  # UI + UU + II terms
  model.fit(mic_tf.training_data(data), epochs=1)
  metrics = mic_tf.evaluate_channels(model, data)     # u2i, u2u, i2i, fused
  mic_tf.export_models(model, data, "exports/ml100k") # SavedModels

* ``load_data``, ``build_model``, ``training_data``, ``evaluate_channels``,
  ``export_models``: the notebook path above (``mic_tf.api``).
* ``MICModel``, ``MICConfig``: the model and its objective
  (``mic_tf.models``); subclass ``MICModel`` to change any step.
* ``Tower``, ``register_tower``, ``build_towers``: plug in your own tower
  (``mic_tf.towers``).
* ``mic_tf.training.run_experiment``: what ``experiments/train.py`` runs
  (epoch selection on valid users, checkpoints, run record).

Importing ``mic_tf`` first sets ``TF_USE_LEGACY_KERAS=1`` so that ``tf.keras``
is Keras 2 (TensorFlow Recommenders needs it); see ``mic_tf._env``.
"""

from mic_tf import _env  # noqa: F401  (must run before tf.keras is touched)

# pylint: disable=g-import-not-at-top,wrong-import-position
from mic_tf.api import build_model
from mic_tf.api import evaluate_channels
from mic_tf.api import export_models
from mic_tf.api import load_data
from mic_tf.api import training_data
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel
from mic_tf.towers.base import Tower
from mic_tf.towers.registry import build_towers, register_tower

__version__ = "0.1.0"

__all__ = [
    "MICConfig", "MICModel", "Tower", "build_model", "build_towers",
    "evaluate_channels", "export_models", "load_data", "register_tower",
    "training_data",
]
