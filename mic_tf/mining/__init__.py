"""Nearest-neighbour mining (paper 3.3.2): kNN positives, k-means++ hard
negatives and cross user-item mining, refreshed during training.

* :mod:`~mic_tf.mining.config`: ``MiningConfig``.
* :mod:`~mic_tf.mining.kmeans`: k-means++ seeding and Lloyd's k-means.
* :mod:`~mic_tf.mining.knn`: k nearest neighbours through ``mic_tf.indexes``.
* :mod:`~mic_tf.mining.pool`: the mined pools (training users, items).
* :mod:`~mic_tf.mining.bank`: the memory banks and in-graph sampling.
* :mod:`~mic_tf.mining.losses`: the mined contrastive terms (formulas).
* :mod:`~mic_tf.mining.callback`: ``MiningCallback`` (refresh schedule).

The model is ``mic_tf.models.mined.MinedMICModel``.
"""

from typing import TYPE_CHECKING

from mic_tf import _lazy

_EXPORTS = {
    "MiningBank": "mic_tf.mining.bank",
    "Pool": "mic_tf.mining.bank",
    "MiningCallback": "mic_tf.mining.callback",
    "MiningConfig": "mic_tf.mining.config",
    "KMeans": "mic_tf.mining.kmeans",
    "kmeans_plus_plus_init": "mic_tf.mining.kmeans",
    "nearest_neighbours": "mic_tf.mining.knn",
    "item_pool_ids": "mic_tf.mining.pool",
    "training_user_pool": "mic_tf.mining.pool",
}
# Imported on first use: MiningConfig does not load TensorFlow.
__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static readers (type checkers, the API docs) see
  from mic_tf.mining.bank import MiningBank
  from mic_tf.mining.bank import Pool
  from mic_tf.mining.callback import MiningCallback
  from mic_tf.mining.config import MiningConfig
  from mic_tf.mining.kmeans import KMeans
  from mic_tf.mining.kmeans import kmeans_plus_plus_init
  from mic_tf.mining.knn import nearest_neighbours
  from mic_tf.mining.pool import item_pool_ids
  from mic_tf.mining.pool import training_user_pool

__all__ = [
    "KMeans",
    "MiningBank",
    "MiningCallback",
    "MiningConfig",
    "Pool",
    "item_pool_ids",
    "kmeans_plus_plus_init",
    "nearest_neighbours",
    "training_user_pool",
]
