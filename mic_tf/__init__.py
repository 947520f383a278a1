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
* ``ExperimentConfig`` (``mic_tf.config``): every setting of a training run,
  with the defaults of ``experiments/train.py``;
  ``mic_tf.training.run_experiment`` is what that binary runs (epoch
  selection on valid users, checkpoints, run record).

Importing ``mic_tf`` is cheap and has no other effect than the environment
settings of ``mic_tf._env``: ``TF_USE_LEGACY_KERAS=1``, so that ``tf.keras``
is Keras 2 (TensorFlow Recommenders needs it), and, with
``MIC_TF_DETERMINISTIC=1`` in the environment, the deterministic mode's
oneDNN settings. The names above (and the submodules) load on first use;
TensorFlow loads with the first that needs it.
"""

from typing import TYPE_CHECKING

from mic_tf import _env  # noqa: F401  (must run before tf.keras is touched)
from mic_tf import _lazy

__version__ = "0.1.0"

_EXPORTS = {
    "ExperimentConfig": "mic_tf.config",
    "MICConfig": "mic_tf.models.config",
    "MICModel": "mic_tf.models.mic_model",
    "Tower": "mic_tf.towers.base",
    "build_model": "mic_tf.api",
    "build_towers": "mic_tf.towers.registry",
    "evaluate_channels": "mic_tf.api",
    "export_models": "mic_tf.api",
    "load_data": "mic_tf.api",
    "register_tower": "mic_tf.towers.registry",
    "training_data": "mic_tf.api",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static readers (type checkers, the API docs) see
  from mic_tf.api import build_model
  from mic_tf.api import evaluate_channels
  from mic_tf.api import export_models
  from mic_tf.api import load_data
  from mic_tf.api import training_data
  from mic_tf.config import ExperimentConfig
  from mic_tf.models.config import MICConfig
  from mic_tf.models.mic_model import MICModel
  from mic_tf.towers.base import Tower
  from mic_tf.towers.registry import build_towers
  from mic_tf.towers.registry import register_tower
