"""Builds the model an ``ExperimentConfig`` describes, and its variables.

``build_model(config, tables, dataset)`` makes the towers
(``mic_tf.towers.registry``), the ``MICModel`` (a ``MinedMICModel`` when
mining is on) and compiles it with the configured optimizer;
``build_variables`` creates every variable with one tiny batch. The
training loop (``mic_tf.training``), ``mic_tf.api`` and reloading a run use
them.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf import optimizers
from mic_tf.config import ExperimentConfig
from mic_tf.data.dataset import ProcessedDataset
from mic_tf.mining import cooccurrence
from mic_tf.models.mic_model import MICModel
from mic_tf.models.mined import build_mined_model
from mic_tf.towers import registry as tower_registry


def build_model(config: ExperimentConfig, tables: F.FeatureTables,
                dataset: Optional[ProcessedDataset] = None) -> MICModel:
  """Builds the towers and the (mined) ``MICModel`` and compiles it.

  Args:
    config: The experiment config (its ``model``, ``mic`` and ``mining``
      settings and the optimizer of ``training``).
    tables: Feature tables.
    dataset: The processed dataset; needed when mining is on (the user pool
      is every training user's history) and for co-occurrence II positives
      (``MICConfig.ii_positives``, mined from the training users'
      histories).

  Returns:
    A compiled ``MICModel`` (a ``MinedMICModel`` when mining is on).
  """
  model_config, train = config.model, config.training
  user_tower, item_tower = tower_registry.build_towers(
      model_config.tower, tables.spec,
      embedding_dim=model_config.embedding_dim,
      output_dim=model_config.output_dim, dropout=model_config.dropout,
      hidden_units=model_config.hidden_units, **model_config.tower_kwargs)
  neighbours = None
  mic = config.mic
  if "ii" in mic.terms and mic.ii_positives == "cooccurrence":
    if dataset is None:
      raise ValueError("ii_positives='cooccurrence' needs the dataset "
                       "(training users' histories): pass "
                       "dataset=prepared.dataset.")
    neighbours = cooccurrence.dataset_neighbours(
        dataset, tables.spec.num_items, mic.ii_neighbors)
  if config.mining.enabled:
    if dataset is None:
      raise ValueError("Mining needs the dataset (training users' "
                       "histories): pass dataset=prepared.dataset.")
    model = build_mined_model(user_tower, item_tower, tables, dataset,
                              config.mic, config.mining,
                              item_neighbours=neighbours)
  else:
    model = MICModel(user_tower, item_tower, tables.spec, tables.item_table,
                     config=config.mic, item_counts=tables.item_counts,
                     item_neighbours=neighbours)
  model.compile(optimizer=optimizers.make_optimizer(
      train.optimizer, train.learning_rate, train.weight_decay))
  return model


def build_variables(model: MICModel, tables: F.FeatureTables,
                    towers_first: bool = False) -> None:
  """Creates every variable of a model by running one tiny batch.

  Call it inside ``strategy.scope()`` when the model was built there.

  Args:
    model: The model.
    tables: Its feature tables.
    towers_first: Create the towers and projection heads first, with an
      inference pass (no perturbation, no dropout), so that their initial
      weights depend on the seed only and not on the objective
      (``ModelConfig.init_order="towers_first"``).
  """
  users = np.nonzero(tables.train_user_mask)[0][:2]
  feats = tables.user_features(
      users, np.zeros((len(users), tables.spec.maxlen), np.int32))
  batch = {k: tf.constant(v) for k, v in feats.items()}
  batch[F.ITEM_ID] = tf.constant([1, 1], tf.int32)
  batch[F.USER_KEY] = tf.constant(users.astype(np.int32))
  if towers_first:
    model.user_query(batch)
    model.item_candidate(batch[F.ITEM_ID])
  strategy = tf.distribute.get_strategy()
  if tf.distribute.has_strategy():  # inside strategy.scope(): per replica
    strategy.run(lambda b: model.compute_loss(b, training=True),
                 args=(batch,))
  else:
    model.compute_loss(batch, training=True)
  model(batch)  # marks the Keras model as built
