"""``MinedMICModel``: ``MICModel`` plus nearest-neighbour mining (paper 3.3.2).

This module also shows how to extend ``MICModel`` by subclassing: it only
overrides ``contrastive_losses`` (and ``fit``, to check a bank refresher is
attached) and adds the memory bank and its refresh.

For every mined channel (``MiningConfig.channels``) the MIC term ``L_c`` of
that channel is replaced by::

  L_c' = L_c^aug + w * L_c^nn

``L_c^aug`` is the MIC term with ``hard_negatives`` bank rows from other
k-means++ clusters appended as negatives, ``L_c^nn`` an InfoNCE term whose
positive is a kNN neighbour of the anchor in the bank and ``w =
MiningConfig.positive_weight``; exact formulas in ``mic_tf.mining.losses``.
For ``ui`` both are the mean of the user->item direction (users retrieve
items: the user's kNN items in the shared space are positives, items of other
joint clusters hard negatives) and the item->user direction (items retrieve
users, symmetrically). The terms are then combined by eq. (8) as usual.

Each ``c_nn_loss`` is reported as a metric. With no mined channel the model
is exactly ``MICModel``.

Typical use::

  model = build_mined_model(user_tower, item_tower, tables, dataset,
                            mic_config, MiningConfig(channels=("uu", "ii")))
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  model.fit(train_ds, epochs=3, callbacks=[MiningCallback()])
"""

import time
from typing import Dict, List, Mapping, Optional

import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf.data.dataset import ProcessedDataset
from mic_tf.mining import losses as ML
from mic_tf.mining import pool as pool_lib
from mic_tf.mining.bank import MiningBank
from mic_tf.mining.bank import Pool
from mic_tf.mining.callback import MiningCallback
from mic_tf.mining.config import MiningConfig
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel
from mic_tf.models.views import Views


def _l2(x: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(x, axis=-1)


class _Untracked:
  """Plain holder: Keras does not track what it holds (bank, tf.functions,
  pool arrays), so none of it enters checkpoints or ``get_weights``."""

  def __init__(self):
    self.bank: Optional[MiningBank] = None
    self.pool_features: Optional[Dict[str, np.ndarray]] = None
    self.encoders: Dict[str, tf.types.experimental.GenericFunction] = {}


class MinedMICModel(MICModel):
  """``MICModel`` with kNN positives and cluster hard negatives.

  Args:
    user_tower: See ``MICModel``.
    item_tower: See ``MICModel``.
    spec: See ``MICModel``.
    item_tables: See ``MICModel``.
    config: The ``MICConfig``; every mined channel must be in its terms.
    item_counts: See ``MICModel``.
    mining: The ``MiningConfig`` (None: no mining).
    user_pool_ids: ``(n,)`` ids of the mined users (all training users); see
      ``mic_tf.mining.pool.training_user_pool``. Needed when ``uu`` or ``ui``
      is mined.
    user_pool_features: User feature arrays of those users (``n`` rows).
    **kwargs: Passed to ``MICModel``.

  Raises:
    ValueError: If a mined channel is not a MIC term, or the user pool is
      missing or inconsistent.
  """

  def __init__(self, user_tower: tf.keras.Model, item_tower: tf.keras.Model,
               spec: F.FeatureSpec, item_tables: Mapping[str, np.ndarray],
               config: Optional[MICConfig] = None,
               item_counts: Optional[np.ndarray] = None,
               mining: Optional[MiningConfig] = None,
               user_pool_ids: Optional[np.ndarray] = None,
               user_pool_features: Optional[Mapping[str, np.ndarray]] = None,
               **kwargs):
    super().__init__(user_tower, item_tower, spec, item_tables, config=config,
                     item_counts=item_counts, **kwargs)
    self.mining = mining or MiningConfig.off()
    self._miner_state = _Untracked()
    if not self.mining.enabled:
      return
    if "ii" in self.mining.channels and self.ii_cooccurrence:
      raise ValueError("Mining 'ii' replaces the II term, so it cannot take "
                       "ii_positives='cooccurrence': drop one of them.")
    not_terms = [c for c in self.mining.channels if c not in self.config.terms]
    if not_terms:
      raise ValueError(
          f"Mined channel(s) {not_terms} are not MIC terms "
          f"{self.config.terms}: add them to MICConfig.terms or remove them "
          "from MiningConfig.channels.")
    needs_users = any(c in self.mining.channels for c in ("uu", "ui"))
    if needs_users:
      if user_pool_ids is None or user_pool_features is None:
        raise ValueError(
            "Mining uu/ui needs the user pool: pass user_pool_ids and "
            "user_pool_features (from mic_tf.mining.pool.training_user_pool"
            "(tables, dataset)), or use build_mined_model.")
      user_pool_ids = np.asarray(user_pool_ids)
      names = spec.user_field_names
      missing = [n for n in names if n not in user_pool_features]
      if missing:
        raise ValueError(
            f"user_pool_features lacks user field(s) {missing}; build the "
            "pool with mic_tf.mining.pool.training_user_pool(tables, "
            "dataset).")
      bad = [n for n in names
             if len(user_pool_features[n]) != len(user_pool_ids)]
      if bad:
        raise ValueError(f"user_pool_features field(s) {bad} do not have one "
                         f"row per pool user ({len(user_pool_ids)}).")
      self._miner_state.pool_features = {
          n: np.asarray(user_pool_features[n]) for n in names}
    self._miner_state.bank = MiningBank(self.mining, user_pool_ids,
                                        spec.num_items)
    self._nn_trackers = {
        c: tf.keras.metrics.Mean(name=f"{c}_nn_loss")
        for c in self.mining.channels}

  # ------------------------------------------------------------------ bank
  @property
  def mining_bank(self) -> MiningBank:
    if self._miner_state.bank is None:
      raise ValueError("This model mines nothing (MiningConfig.channels is "
                       "empty), so it has no mining bank.")
    return self._miner_state.bank

  def _encoder(self, name: str):
    """Cached batched tf.functions that encode the pools (traced once)."""
    if name in self._miner_state.encoders:
      return self._miner_state.encoders[name]
    if name == "user":
      @tf.function(reduce_retracing=True)
      def fn(batch):
        rep = self.user_representation(batch)
        own = _l2(self.user_space_summary(rep))
        shared = _l2(self.project_user(rep))
        if self.multi_interest:  # mean of unit interests
          shared = _l2(tf.reduce_mean(shared, axis=1))
        return own, shared
    else:
      @tf.function(reduce_retracing=True)
      def fn(ids):
        rep = self.item_representation(ids)
        return _l2(rep), _l2(self.project_item(rep))
    self._miner_state.encoders[name] = fn
    return fn

  def encode_mining_pools(self) -> Dict[str, np.ndarray]:
    """Current vectors of every pool the bank needs (see ``MiningBank``).

    Returns:
      Pool name -> ``(n, d)`` float32 L2-normalised vectors: ``user`` /
      ``item`` in the towers' own spaces, ``shared_user`` / ``shared_item``
      in the shared space.
    """
    needed = self.mining_bank.required_vectors()
    bs = self.mining.encode_batch_size
    out = {}
    if "user" in needed or "shared_user" in needed:
      fn = self._encoder("user")
      feats = self._miner_state.pool_features
      n = len(next(iter(feats.values())))
      own, shared = [], []
      for s in range(0, n, bs):
        a, b = fn({k: tf.constant(v[s:s + bs]) for k, v in feats.items()})
        own.append(a.numpy())
        shared.append(b.numpy())
      out["user"], out["shared_user"] = np.concatenate(own), np.concatenate(
          shared)
    if "item" in needed or "shared_item" in needed:
      fn = self._encoder("item")
      ids = pool_lib.item_pool_ids(self.spec.num_items)
      own, shared = [], []
      for s in range(0, len(ids), bs):
        a, b = fn(tf.constant(ids[s:s + bs]))
        own.append(a.numpy())
        shared.append(b.numpy())
      out["item"], out["shared_item"] = np.concatenate(own), np.concatenate(
          shared)
    return {k: v for k, v in out.items() if k in needed}

  def refresh_mining_bank(self) -> Dict[str, float]:
    """Re-encodes the pools and recomputes kNN lists and clusters.

    Returns:
      Seconds spent: ``encode_s``, ``knn_s``, ``kmeans_s``.
    """
    start = time.perf_counter()
    vectors = self.encode_mining_pools()
    encode_s = time.perf_counter() - start
    timings = self.mining_bank.update(**vectors)
    timings["encode_s"] = encode_s
    return timings

  # ---------------------------------------------------------------- losses
  def contrastive_losses(self, views: Views) -> Dict[str, tf.Tensor]:
    """MIC's terms, with each mined channel's term replaced by ``L_c'``."""
    out = super().contrastive_losses(views)
    if not self.mining.enabled:
      return out
    bank = self.mining_bank
    channels = self.mining.channels
    terms = {}
    if "uu" in channels:
      terms["uu"] = self._self_channel(bank.pool("user"), views.user,
                                       views.user_ids, "uu")
    if "ii" in channels:
      terms["ii"] = self._self_channel(bank.pool("item"), views.item,
                                       views.item_ids, "ii",
                                       views.known_positives)
    if "ui" in channels:
      terms["ui"] = self._interaction_channel(
          views.user_shared, views.item_shared, views.user_ids,
          views.item_ids, views.known_positives)
    w = self.mining.positive_weight
    for name, (aug, nn) in terms.items():
      self._nn_trackers[name].update_state(nn)
      out[name] = aug + w * nn
    return out

  def _hard(self, target: Pool, anchor_clusters: tf.Tensor):
    num = self.mining.hard_negatives
    if num == 0:
      return None
    return self.mining_bank.sample_hard_negatives(target, anchor_clusters, num)

  def _self_channel(self, pool: Pool, views: List[tf.Tensor],
                    ids: tf.Tensor, term: str,
                    known_positives: Optional[tf.Tensor] = None):
    """``(L_aug, L_nn)`` of U2U or I2I in the pool's own space.

    ``known_positives`` (II only, as in the plain term) drops co-chosen
    items from the in-batch negatives."""
    bank = self.mining_bank
    pool.build(views[0].shape[-1])
    tau = self.config.temperature_of(term)
    queries, examples, qids, positives, not_self = ML.self_channel_layout(
        (views[0], views[1]), ids)
    if known_positives is not None:
      not_self = tf.logical_and(not_self, tf.logical_not(
          tf.tile(tf.cast(known_positives, tf.bool), [2, 2])))
    rows, known = pool.rows_of(ids)
    clusters = tf.gather(pool.clusters, rows)
    query_ok = tf.tile(known, [2])
    hard = self._hard(pool, clusters)
    hard_mask = None
    if hard is not None:
      hard_mask = ML.hard_negative_mask(qids, tf.tile(clusters, [2]),
                                        query_ok, hard)
    aug = ML.augmented_loss(queries, queries, positives, qids, qids, not_self,
                            tau, hard, hard_mask)
    mined, mined_ids = bank.sample_positives(pool, rows)
    mined_ok = tf.logical_and(known, bank.ready)
    nn = ML.neighbour_loss(queries, examples, qids, mined, mined_ids,
                           mined_ok, queries, qids, not_self, tau, hard,
                           hard_mask)
    return aug, nn

  def _interaction_channel(self, user_views: List[tf.Tensor],
                           item_views: List[tf.Tensor], user_ids: tf.Tensor,
                           item_ids: tf.Tensor,
                           known_positives: Optional[tf.Tensor] = None):
    """``(L_aug, L_nn)`` of U2I in the shared space, both directions."""
    bank = self.mining_bank
    users_pool, items_pool = bank.pool("shared_user"), bank.pool("shared_item")
    users_pool.build(user_views[0].shape[-1])
    items_pool.build(item_views[0].shape[-1])
    tau = self.config.temperature_of("ui")
    k = len(user_views)
    users = tf.concat(list(user_views), axis=0)
    items = tf.concat(list(item_views), axis=0)
    b = tf.shape(user_views[0])[0]
    examples = tf.tile(tf.range(b), [k])
    positives = tf.range(k * b)
    other_example = tf.not_equal(examples[:, None], examples[None, :])
    tiled_items = tf.tile(tf.reshape(item_ids, [-1]), [k])
    tiled_users = tf.tile(tf.reshape(user_ids, [-1]), [k])

    if known_positives is not None:
      known = tf.tile(tf.cast(known_positives, tf.bool), [k, k])
      user_item_ok = tf.logical_and(other_example, tf.logical_not(known))
      item_user_ok = tf.logical_and(other_example,
                                    tf.logical_not(tf.transpose(known)))
    else:
      user_item_ok = item_user_ok = other_example

    def direction(queries, keys, anchor_pool, target_pool, anchor_ids,
                  exclusion_ids, other_example):
      rows, known = anchor_pool.rows_of(anchor_ids)
      clusters = tf.gather(anchor_pool.clusters, rows)
      query_ok = tf.tile(known, [k])
      hard = self._hard(target_pool, clusters)
      hard_mask = None
      if hard is not None:
        hard_mask = ML.hard_negative_mask(
            exclusion_ids, tf.tile(clusters, [k]), query_ok, hard)
      aug = ML.augmented_loss(queries, keys, positives, exclusion_ids,
                              exclusion_ids, other_example, tau, hard,
                              hard_mask)
      mined, mined_ids = bank.sample_positives(anchor_pool, rows)
      mined_ok = tf.logical_and(known, bank.ready)
      nn = ML.neighbour_loss(queries, examples, exclusion_ids, mined,
                             mined_ids, mined_ok, keys, exclusion_ids,
                             other_example, tau, hard, hard_mask)
      return aug, nn

    # Users retrieve items: the exclusion id is the target item.
    aug_ui, nn_ui = direction(users, items, users_pool, items_pool, user_ids,
                              tiled_items, user_item_ok)
    # Items retrieve users: the exclusion id is the example's user.
    aug_iu, nn_iu = direction(items, users, items_pool, users_pool, item_ids,
                              tiled_users, item_user_ok)
    return 0.5 * (aug_ui + aug_iu), 0.5 * (nn_ui + nn_iu)

  # ------------------------------------------------------------- training
  def fit(self, *args, **kwargs):
    """``tf.keras.Model.fit``; checks the mining bank will be refreshed.

    Raises:
      ValueError: If channels are mined, the bank was never refreshed and no
        ``MiningCallback`` is among the callbacks.
    """
    if self.mining.enabled and not self.mining_bank.is_ready:
      callbacks = kwargs.get("callbacks") or []
      if not any(isinstance(c, MiningCallback) for c in callbacks):
        raise ValueError(
            "MinedMICModel.fit needs a refreshed mining bank: pass "
            "callbacks=[mic_tf.mining.MiningCallback(), ...] (or call "
            "model.refresh_mining_bank() yourself before fit).")
    return super().fit(*args, **kwargs)


def build_mined_model(user_tower: tf.keras.Model, item_tower: tf.keras.Model,
                      tables: F.FeatureTables, dataset: ProcessedDataset,
                      config: Optional[MICConfig] = None,
                      mining: Optional[MiningConfig] = None,
                      **kwargs) -> MinedMICModel:
  """A ``MinedMICModel`` whose user pool is every training user.

  Args:
    user_tower: User tower.
    item_tower: Item tower.
    tables: Feature tables of ``dataset``.
    dataset: The processed dataset (for the training users' histories).
    config: The ``MICConfig``.
    mining: The ``MiningConfig``.
    **kwargs: Passed to ``MinedMICModel`` (e.g. ``item_neighbours``).

  Returns:
    The (uncompiled) model; train it with a ``MiningCallback``.
  """
  mining = mining or MiningConfig.off()
  ids = features = None
  if any(c in mining.channels for c in ("uu", "ui")):
    ids, features = pool_lib.training_user_pool(tables, dataset)
  return MinedMICModel(user_tower, item_tower, tables.spec, tables.item_table,
                       config=config, item_counts=tables.item_counts,
                       mining=mining, user_pool_ids=ids,
                       user_pool_features=features, **kwargs)
