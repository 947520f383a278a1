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
