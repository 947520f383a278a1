"""The short path for notebooks: data, model, training data, channels, export.

::

  import mic_tf

  data = mic_tf.load_data("ml-100k")
  model = mic_tf.build_model(data, tower="dssm", mic=mic_tf.MICConfig())
  model.fit(mic_tf.training_data(data), epochs=1)
  metrics = mic_tf.evaluate_channels(model, data)   # u2i, u2u, i2i, fused
  mic_tf.export_models(model, data, "exports/ml100k")

Each function is a thin layer over the library the binaries use
(``mic_tf.features.prepare_data``, ``mic_tf.models.build``,
``mic_tf.pipeline``, ``mic_tf.channels``, ``mic_tf.export``), with the
defaults of ``mic_tf.config``; ``experiments/train.py`` adds the epoch
selection on valid users, checkpoints and the run record
(``mic_tf.training.run_experiment``).
"""

from typing import Any, Optional

import tensorflow as tf

from mic_tf import channels as channel_lib
from mic_tf import console
from mic_tf import features
from mic_tf import names
from mic_tf import pipeline
from mic_tf import runs
from mic_tf.channels.evaluate import evaluate_channels as _evaluate
from mic_tf.config import DataConfig
from mic_tf.config import ExperimentConfig
from mic_tf.config import ModelConfig
from mic_tf.config import TrainingConfig
from mic_tf.mining import MiningConfig
from mic_tf.models import build as model_build
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel


def load_data(dataset: str = DataConfig.dataset,
              maxlen: int = DataConfig.maxlen,
              max_item_users: int = DataConfig.max_item_users,
              data_dir: Optional[str] = None,
              **dataset_kwargs: Any) -> features.Prepared:
  """Loads a dataset, applies the ComiRec protocol and builds the features.

  Args:
    dataset: A registered dataset (``mic_tf.data.registry.LOADERS``):
      ``"ml-1m"`` and ``"ml-100k"`` are fetched; the others read files.
    maxlen: History length.
    max_item_users: Size of each item's bag of training users (0: off).
    data_dir: Data cache directory (default ``$MIC_TF_DATA_DIR`` or
      ``~/.cache/mic_tf/data``).
    **dataset_kwargs: Loader arguments, e.g. ``path=...`` (see
      ``mic_tf.data.load_dataset``).

  Returns:
    The prepared data: ``.dataset``, ``.tables``, ``.valid``, ``.test``.
  """
  config = ExperimentConfig(data=DataConfig(
      dataset=dataset, data_dir=data_dir, dataset_kwargs=dataset_kwargs,
      maxlen=maxlen, max_item_users=max_item_users))
  return features.prepare_data(config)


def build_model(data: features.Prepared, tower: str = ModelConfig.tower,
                mic: Optional[MICConfig] = None,
                mining: Optional[MiningConfig] = None,
                seed: int = TrainingConfig.seed,
                **settings: Any) -> MICModel:
  """A compiled ``MICModel`` with a registered tower on prepared data.

  Args:
    data: From ``load_data``.
    tower: A registered tower (``mic_tf.towers.available_towers()``, or one
      added with ``mic_tf.register_tower``).
    mic: The MIC objective (None: the base model, basic loss only).
    mining: Nearest-neighbour mining (None: off).
    seed: Seeds TensorFlow, NumPy and Python before the weights are made.
    **settings: Other ``ExperimentConfig`` fields: ``embedding_dim``,
      ``output_dim``, ``hidden_units``, ``dropout``, ``learning_rate``,
      ``weight_decay``, ``tower_kwargs``, ``init_order``
      (``"towers_first"``: the same initial tower weights for every
      objective at one seed).

  Returns:
    The model, compiled with Adam; train it with ``model.fit``.
  """
  spec = data.tables.spec
  config = ExperimentConfig.from_settings(
      dataset=data.dataset.name, tower=tower, maxlen=spec.maxlen,
      mic=mic or MICConfig.base(), mining=mining or MiningConfig.off(),
      seed=seed, **settings)
  tf.keras.utils.set_random_seed(seed)
  model = model_build.build_model(config, data.tables, data.dataset)
  model_build.build_variables(
      model, data.tables,
      towers_first=config.model.towers_first)
  return model


def training_data(data: features.Prepared,
                  batch_size: int = TrainingConfig.batch_size,
                  seed: int = TrainingConfig.seed,
                  examples_per_epoch: Optional[int] = None) -> tf.data.Dataset:
  """The shuffled training batches (every position of every training user).

  Args:
    data: From ``load_data``.
    batch_size: Examples per batch (in-batch negatives: larger is harder).
    seed: Shuffle seed.
    examples_per_epoch: A seeded subset of this many examples per epoch.
  """
  return pipeline.training_dataset(data.tables, data.dataset,
                                   batch_size=batch_size, seed=seed,
                                   max_examples=examples_per_epoch)


def evaluate_channels(model: MICModel, data: features.Prepared,
                      users: str = "test", index: str = names.EXACT,
                      channel_config: Optional[Any] = None,
                      channels=names.CHANNELS):
  """Metrics of each channel (``names.CHANNELS``) on valid or test users.

  The same channel modules serve the exported SavedModels
  (``export_models``); history items are excluded as in the offline
  protocol. Channels the catalogue is too large for (EASE above its item
  limit) are left out with one console line.

  Returns:
    Channel -> metrics (percent).
  """
  assets = channel_lib.ChannelAssets(model, data.tables, data.dataset)
  channels = channel_lib.available_channels(
      channels, data.tables.spec.num_items, channel_config,
      say=console.status)
  metrics, _ = _evaluate(assets, getattr(data, users), channels, index,
                         channel_config)
  return metrics


def export_models(model: MICModel, data: features.Prepared, export_dir: str,
                  channels=names.CHANNELS, k: int = 50,
                  index: str = names.EXACT, channel_config: Optional[Any] = None
                  ):
  """Exports the towers and one raw-id server per channel (SavedModels).

  Returns:
    Model name -> SavedModel path.
  """
  return runs.export_model(model, data, export_dir, channels, k, index,
                           channel_config)
