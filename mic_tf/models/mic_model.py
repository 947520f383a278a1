"""``MICModel``: any user tower + any item tower, trained with MIC's losses.

One training step, each a method you can override in a subclass:

1. ``perturb_user`` / ``perturb_item``: field masking (paper 3.3.1) of the id
   features, giving the perturbed views.
2. ``encode_user`` / ``encode_item``: the towers, with embedding dropout on the
   perturbed views (for towers that subclass ``mic_tf.towers.Tower``). The
   anchor and all views go through each tower in one batched call.
3. ``project_user`` / ``project_item``: projection heads into the shared
   user-item space.
4. ``contrastive_losses``: UI (eq. 4), UU (eq. 5), II (eq. 6; with
   ``MICConfig.ii_positives="cooccurrence"`` the positive of each item is a
   view of an item the same training users chose,
   ``sample_item_positives``); ``basic_loss``: eq. 7 or in-batch softmax;
   ``compute_loss`` combines them (eq. 8) and reports each term as a metric.
5. ``distill_loss`` (with ``MICConfig.distill_weight > 0``, beyond the
   paper): the U2I query learns one item of the user's U2U teacher list
   (``mic_tf.distill``), added to eq. (8) with that weight.

With ``MICConfig.base()`` no view is built and the model is the plain two-tower
baseline trained on the basic loss alone. See ``mic_tf/models/config.py`` for
which representation each loss and each retrieval channel uses.
"""

from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from mic_tf import distribute
from mic_tf import features as F
from mic_tf import losses as L
from mic_tf.distill.table import TeacherTable
from mic_tf.layers.embedding_dropout import EmbeddingDropout
from mic_tf.layers.field_mask import FieldMask
from mic_tf.layers.item_lookup import ItemFeatureLookup
from mic_tf.layers.projection import ProjectionHead
from mic_tf.layers.unknown_ids import known_features
from mic_tf.mining.cooccurrence import ItemNeighbours
from mic_tf.models.config import MICConfig
from mic_tf.models.views import Views
from mic_tf.towers.base import Tower


def _l2(x: tf.Tensor) -> tf.Tensor:
  return tf.math.l2_normalize(x, axis=-1)


class _Held:
  """Plain holder: Keras does not track what it holds."""
  table: Optional[TeacherTable] = None


class MICModel(tfrs.Model):
  """Two-tower retrieval model with MIC's cross-channel contrastive losses.

  Args:
    user_tower: Keras model, user features dict -> ``(B, d)`` or ``(B, K, d)``.
    item_tower: Keras model, item features dict -> ``(B, d)``.
    spec: The ``FeatureSpec`` the towers were built from.
    item_tables: Item field -> array indexed by item id (from
      ``FeatureTables.item_table``); items are looked up by id.
    config: The ``MICConfig``.
    item_counts: Optional training count of each item id (needed for logQ
      correction).
    item_neighbours: The co-occurrence neighbours of every item
      (``mic_tf.mining.cooccurrence``); needed when the II term takes
      co-occurrence positives (``MICConfig.ii_positives``). Held as
      constants: they are not variables and never enter checkpoints.
  """

  def __init__(self, user_tower: tf.keras.Model, item_tower: tf.keras.Model,
               spec: F.FeatureSpec, item_tables: Mapping[str, np.ndarray],
               config: Optional[MICConfig] = None,
               item_counts: Optional[np.ndarray] = None,
               item_neighbours: Optional[ItemNeighbours] = None, **kwargs):
    super().__init__(**kwargs)
    self.config = config or MICConfig()
    self.spec = spec
    self.user_tower = user_tower
    self.item_tower = item_tower
    self.item_lookup = ItemFeatureLookup(item_tables, name="item_lookup")
    c = self.config
    if c.projection == "mlp":
      self.user_projection = ProjectionHead(c.projection_dim,
                                            name="user_projection")
      self.item_projection = ProjectionHead(c.projection_dim,
                                            name="item_projection")
    else:
      self.user_projection = tf.keras.layers.Identity(name="user_projection")
      self.item_projection = tf.keras.layers.Identity(name="item_projection")
    self.user_mask = FieldMask(*self._mask_rates(spec.user_fields, "user"),
                               sequence_fields=[f.name for f in
                                                spec.user_fields
                                                if f.is_multivalent],
                               name="user_field_mask")
    self.item_mask = FieldMask(*self._mask_rates(spec.item_fields, "item"),
                               sequence_fields=[f.name for f in
                                                spec.item_fields
                                                if f.is_multivalent],
                               name="item_field_mask")
    self.embedding_dropout = EmbeddingDropout(c.embedding_dropout,
                                              name="embedding_dropout")
    self.combiner = L.LossCombiner(
        lambda_=c.lambda_, weights=dict(c.weights), enabled=c.terms,
        mode=c.weighting, name="loss_combiner")
    log_q = None
    if c.log_q_correction:
      if item_counts is None:
        raise ValueError("log_q_correction needs item_counts (the training "
                         "count of each item id).")
      p = np.asarray(item_counts, np.float64) + 1.0
      log_q = np.log(p / p.sum()).astype(np.float32)
    self._log_q = None if log_q is None else tf.constant(log_q)
    self._neighbour_ids = self._neighbour_counts = None
    if self.ii_cooccurrence:
      if item_neighbours is None:
        raise ValueError("ii_positives='cooccurrence' needs item_neighbours "
                         "(mic_tf.mining.cooccurrence.dataset_neighbours).")
      if item_neighbours.ids.shape[0] != spec.num_items:
        raise ValueError(
            f"item_neighbours has {item_neighbours.ids.shape[0]} rows, the "
            f"item vocabulary {spec.num_items} ids.")
      self._neighbour_ids = tf.constant(item_neighbours.ids, tf.int32)
      self._neighbour_counts = tf.constant(item_neighbours.counts, tf.int32)
    self._trackers = {name: tf.keras.metrics.Mean(name=f"{name}_loss")
                      for name in ("basic",) + tuple(c.terms) +
                      (("distill",) if c.distill else ())}
    # Derived state, refreshed by mic_tf.distill.DistillationCallback: held
    # in a plain object that Keras does not track (no checkpoint entry).
    self._teacher = _Held()
    self._teacher.table = TeacherTable(c.distill_items) if c.distill else None
    # Every replica returns the global loss and global metrics: Keras must
    # report one replica's values, not their sum (see train_step).
    self.distribute_reduction_method = "first"

  # ----------------------------------------------------------- configuration
  def _mask_rates(self, fields, side) -> Tuple[Dict[str, float],
                                               Dict[str, int]]:
    c = self.config
    rates, values = {}, {}
    for f in fields:
      if f.name in c.field_mask_rates:
        rate = c.field_mask_rates[f.name]
      elif side == "user":
        rate = c.history_mask if f.kind == F.SEQUENCE else (
            c.user_attribute_mask)
      else:
        rate = c.item_users_mask if f.name == F.ITEM_USERS else (
            c.item_attribute_mask)
      rates[f.name] = float(rate)
      values[f.name] = f.mask_id
    return rates, values

  @property
  def ii_cooccurrence(self) -> bool:
    """Whether the II term takes co-occurrence positives."""
    c = self.config
    return "ii" in c.terms and c.ii_positives == "cooccurrence"

  def sample_item_positives(self, item_ids: tf.Tensor) -> tf.Tensor:
    """One co-occurrence neighbour of each item, uniformly among its own.

    An item without neighbours is its own positive (eq. 6).

    Args:
      item_ids: ``(n,)`` int item ids.

    Returns:
      ``(n,)`` int32 neighbour ids.
    """
    item_ids = tf.cast(item_ids, tf.int32)
    counts = tf.maximum(tf.gather(self._neighbour_counts, item_ids), 1)
    draw = tf.random.uniform(tf.shape(item_ids))
    slot = tf.minimum(tf.cast(draw * tf.cast(counts, tf.float32), tf.int32),
                      counts - 1)
    return tf.gather_nd(self._neighbour_ids,
                        tf.stack([item_ids, slot], axis=1))

  # ------------------------------------------------------------ step 1: views
  def perturb_user(self, features: Mapping[str, tf.Tensor],
                   training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Field masking of user features (one independent draw per call)."""
    return self.user_mask(dict(features), training=training)

  def perturb_item(self, features: Mapping[str, tf.Tensor],
                   training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Field masking of item features (one independent draw per call)."""
    return self.item_mask(dict(features), training=training)

  # ----------------------------------------------------------- step 2: towers
  def _encode_views(self, tower: tf.keras.Model,
                    features: Mapping[str, tf.Tensor], names: List[str],
                    perturb, num_views: int, training: Optional[bool],
                    view_rows: Optional[int] = None,
                    with_anchor: bool = True) -> List[tf.Tensor]:
    """Encodes the anchor and ``num_views`` perturbed views in one call
    (``with_anchor=False``: the views only)."""
    feats = {k: features[k] for k in names}
    if num_views == 0:
      return [tower(feats, training=training)]
    batch = tf.shape(feats[names[0]])[0]
    source = feats
    if view_rows is not None:
      source = {k: v[:view_rows] for k, v in feats.items()}
    views = [perturb(source, training=training) for _ in range(num_views)]
    if isinstance(tower, Tower):
      # Anchor and views are embedded by separate lookups so that dropout
      # touches only the views and embedding gradients stay sparse.
      anchor = tower.embed(feats, training=training) if with_anchor else None
      stacked = {k: tf.concat([v[k] for v in views], axis=0) for k in names}
      perturbed = self.embedding_dropout(tower.embed(stacked,
                                                     training=training),
                                         training=training)
      if with_anchor:
        embedded = {k: tf.concat([anchor[k], perturbed[k]], axis=0)
                    for k in anchor}
        all_feats = {k: tf.concat([feats[k], stacked[k]], axis=0)
                     for k in names}
      else:
        embedded, all_feats = perturbed, stacked
      out = tower.encode(embedded, all_feats, training=training)
    else:
      anchor = [feats] if with_anchor else []
      all_feats = {k: tf.concat([a[k] for a in anchor] +
                                [v[k] for v in views], axis=0)
                   for k in names}
      out = tower(all_feats, training=training)
    if not with_anchor:
      return tf.split(out, num_views, axis=0)
    return [out[:batch]] + tf.split(out[batch:], num_views, axis=0)

  def encode_user(self, features: Mapping[str, tf.Tensor],
                  num_views: int = 0, training: Optional[bool] = None,
                  view_rows: Optional[int] = None) -> List[tf.Tensor]:
    """User-space representations: ``[anchor, view_1, ..., view_n]``.

    Args:
      features: User features dict.
      num_views: Number of perturbed views to add after the anchor.
      training: Keras training flag.
      view_rows: Build the views from the first ``view_rows`` examples only
        (``None``: all of them).

    Returns:
      A list of ``num_views + 1`` tensors: the anchor ``(B, ...)`` and the
      views ``(min(B, view_rows), ...)``; ``(.., d)`` or ``(.., K, d)``.
    """
    return self._encode_views(self.user_tower, features,
                              self.spec.user_field_names, self.perturb_user,
                              num_views, training, view_rows)

  def encode_item(self, item_ids: tf.Tensor, num_views: int = 0,
                  training: Optional[bool] = None,
                  view_rows: Optional[int] = None,
                  with_anchor: bool = True) -> List[tf.Tensor]:
    """Item-space representations of item ids: ``[anchor, views...]``
    (``with_anchor=False``: ``[views...]``, ``num_views >= 1``)."""
    features = self.item_lookup(item_ids)
    return self._encode_views(self.item_tower, features,
                              self.spec.item_field_names, self.perturb_item,
                              num_views, training, view_rows, with_anchor)

  # ------------------------------------------------------- step 3: projection
  def project_user(self, user: tf.Tensor) -> tf.Tensor:
    """User space -> shared user-item space (last axis)."""
    return self.user_projection(user)

  def project_item(self, item: tf.Tensor) -> tf.Tensor:
    """Item space -> shared user-item space."""
    return self.item_projection(item)

  @staticmethod
  def select_interest(user_shared: tf.Tensor, item_shared: tf.Tensor
                      ) -> tf.Tensor:
    """Index of the interest that best matches the target (ComiRec's rule).

    Args:
      user_shared: ``(B, K, d)`` interests in the shared space.
      item_shared: ``(B, d)`` target items in the shared space.

    Returns:
      ``(B,)`` int32 index of the best-matching interest.
    """
    scores = tf.einsum("bkd,bd->bk", _l2(user_shared), _l2(item_shared))
    return tf.argmax(scores, axis=1, output_type=tf.int32)

  @property
  def multi_interest(self) -> bool:
    """Whether the user tower gives ``K`` interests, ``(B, K, d)``.

    Declared by the tower (``Tower.multi_interest``); a plain Keras tower
    without the attribute is single-interest.
    """
    return bool(getattr(self.user_tower, "multi_interest", False))

  def user_space_summary(self, user: tf.Tensor) -> tf.Tensor:
    """A single user-space vector: multi-interest -> mean of unit interests."""
    if self.multi_interest:
      return tf.reduce_mean(_l2(user), axis=1)
    return user

  # ----------------------------------------------------------- step 4: losses
  def basic_loss(self, user_shared: tf.Tensor, item_shared: tf.Tensor,
                 item_ids: tf.Tensor,
                 known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The basic user-item loss in the shared space (eq. 7 or softmax)."""
    c = self.config
    if c.basic_loss == "logistic":
      return L.logistic_loss(user_shared, item_shared, item_ids,
                             temperature=c.basic_temperature,
                             known_positives=known_positives)
    log_q = None
    if self._log_q is not None:
      log_q = tf.gather(self._log_q, item_ids)
    return L.softmax_loss(user_shared, item_shared, item_ids,
                          temperature=c.basic_temperature, log_q=log_q,
                          known_positives=known_positives)

  def contrastive_losses(self, views: Views) -> Dict[str, tf.Tensor]:
    """The enabled contrastive terms over two views per side.

    Args:
      views: The batch's ``Views`` (two views per side in the user, item and
        shared spaces, ids and known positives).

    Returns:
      Term name -> scalar loss.
    """
    c = self.config
    out = {}
    if "ui" in c.terms:
      out["ui"] = L.user_item_loss(views.user_shared, views.item_shared,
                                   views.item_ids, user_ids=views.user_ids,
                                   temperature=c.temperature_of("ui"),
                                   known_positives=views.known_positives)
    if "uu" in c.terms:
      out["uu"] = L.user_user_loss(views.user[0], views.user[1],
                                   views.user_ids,
                                   temperature=c.temperature_of("uu"))
    if "ii" in c.terms:
      # Co-occurrence positives (MICConfig.ii_positives): a view of each
      # item against a view of one of its co-chosen items.
      other = views.item[1] if views.item_positive is None else (
          views.item_positive)
      out["ii"] = L.item_item_loss(views.item[0], other, views.item_ids,
                                   temperature=c.temperature_of("ii"),
                                   known_positives=views.known_positives,
                                   positive_ids=views.item_positive_ids)
    return out

  def known_positives(self, inputs: Mapping[str, tf.Tensor],
                      user_ids: tf.Tensor, item_ids: tf.Tensor
                      ) -> Optional[tf.Tensor]:
    """(B, B) in-batch pairs that are known positives (None: masking off)."""
    if not self.config.mask_false_negatives:
      return None
    return L.known_positives(user_ids, item_ids, inputs.get(F.HISTORY),
                             padding_id=F.PAD_ID)

  @property
  def distill_teacher(self) -> Optional[TeacherTable]:
    """The teacher lists (None unless ``MICConfig.distill_weight > 0``)."""
    return self._teacher.table

  def distill_loss(self, inputs: Mapping[str, tf.Tensor],
                   user_shared: tf.Tensor, user_ids: Optional[tf.Tensor],
                   training: Optional[bool] = None) -> tf.Tensor:
    """The teacher term (``mic_tf.losses.distill``) of a batch.

    Args:
      inputs: The batch.
      user_shared: ``(B, d)`` or ``(B, K, d)`` users in the shared space
        (a multi-interest user contributes the interest that best matches
        its teacher item).
      user_ids: ``(B,)`` user keys of the rows; None (no user key in the
        batch): no row has a teacher and the term is 0.
      training: Keras training flag.

    Returns:
      A float32 scalar.
    """
    if user_ids is None:
      return tf.constant(0.0)
    teacher_ids, has = self.distill_teacher.sample(user_ids)
    if F.HISTORY in inputs:  # a teacher item the row already chose: none
      seen = tf.reduce_any(tf.equal(
          tf.cast(inputs[F.HISTORY], tf.int32), teacher_ids[:, None]), axis=1)
      has = tf.logical_and(has, tf.logical_not(seen))
    item = self.project_item(self.encode_item(teacher_ids, 0, training)[0])
    if self.multi_interest:
      pick = self.select_interest(user_shared, item)
      user_shared = tf.gather(user_shared, pick, axis=1, batch_dims=1)
    g = distribute.gather
    history = {k: inputs[k] for k in (F.HISTORY,) if k in inputs}
    known = self.known_positives(g(history), g(user_ids), g(teacher_ids))
    return L.teacher_loss(g(user_shared), g(item), g(teacher_ids), g(has),
                          temperature=self.config.basic_temperature,
                          known_positives=known)

  def contrastive_ramp(self) -> tf.Tensor:
    """Factor in [0, 1] on the contrastive terms (warm-up ramp)."""
    steps = self.config.contrastive_warmup_steps
    if not steps or self.optimizer is None:
      return tf.constant(1.0)
    done = tf.cast(self.optimizer.iterations, tf.float32)
    return tf.minimum(1.0, done / float(steps))

  def compute_loss(self, inputs, training: bool = False) -> tf.Tensor:
    """The total loss of a batch (eq. 8); see the module docstring."""
    c = self.config
    item_ids = tf.cast(inputs[F.ITEM_ID], tf.int32)
    has_users = F.USER_KEY in inputs
    user_ids = tf.cast(inputs[F.USER_KEY], tf.int32) if has_users \
        else tf.range(tf.shape(item_ids)[0])
    num_views = c.num_views if c.contrastive else 0
    rows = c.contrastive_batch_size
    users = self.encode_user(inputs, num_views, training, rows)
    items = self.encode_item(item_ids, num_views, training, rows)
    users_shared = [self.project_user(u) for u in users]
    items_shared = [self.project_item(v) for v in items]
    user_anchor_shared = users_shared[0]  # before an interest is selected

    if self.multi_interest:
      pick = self.select_interest(users_shared[0], items_shared[0])
      users_shared = [
          tf.gather(u, pick[:tf.shape(u)[0]], axis=1, batch_dims=1)
          for u in users_shared]
      users = [self.user_space_summary(u) for u in users]

    # Under a tf.distribute strategy the losses see the global batch
    # (mic_tf.distribute); without one, `g` is the identity.
    g = distribute.gather
    history = {k: inputs[k] for k in (F.HISTORY,) if k in inputs}
    known = self.known_positives(g(history),
                                 g(user_ids) if has_users else None,
                                 g(item_ids))
    basic = self.basic_loss(g(users_shared[0]), g(items_shared[0]),
                            g(item_ids), known)
    self._trackers["basic"].update_state(basic)
    terms = {}
    if c.contrastive:
      n = tf.shape(users[1])[0]  # rows that have views
      if c.num_views == 2:
        pair = lambda views: views[1:3]
      else:  # the anchor against its one perturbed view (eq. 5 as written)
        pair = lambda views: [views[0][:n], views[1]]
      positive = positive_ids = None
      if self.ii_cooccurrence:  # a perturbed view of a co-chosen item
        positive_ids = self.sample_item_positives(item_ids[:n])
        positive = g(self.encode_item(positive_ids, 1, training,
                                      with_anchor=False)[0])
        positive_ids = g(positive_ids)
      terms = self.contrastive_losses(Views(
          user=g(pair(users)), item=g(pair(items)),
          user_shared=g(pair(users_shared)),
          item_shared=g(pair(items_shared)), user_ids=g(user_ids[:n]),
          item_ids=g(item_ids[:n]),
          known_positives=None if known is None else self.known_positives(
              g({k: v[:n] for k, v in history.items()}),
              g(user_ids[:n]) if has_users else None, g(item_ids[:n])),
          item_positive=positive, item_positive_ids=positive_ids))
      for name, value in terms.items():
        self._trackers[name].update_state(value)
      ramp = self.contrastive_ramp()
      terms = {name: ramp * value for name, value in terms.items()}
    total = self.combiner({"basic": basic, **terms})
    if c.distill:
      distill = self.distill_loss(inputs, user_anchor_shared,
                                  user_ids if has_users else None, training)
      self._trackers["distill"].update_state(distill)
      total = total + c.distill_weight * distill
    return total

  def train_step(self, inputs):
    """TFRS's training step; under a strategy the gradient of the global
    loss is applied once (see ``mic_tf.distribute``) and every replica
    reports the global loss."""
    with tf.GradientTape() as tape:
      loss = self.compute_loss(inputs, training=True)
      regularization_loss = tf.reduce_sum(
          [tf.reduce_sum(l) for l in self.losses])
      total_loss = loss + regularization_loss
      scaled = distribute.replica_share(total_loss)
    gradients = tape.gradient(scaled, self.trainable_variables)
    self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
    metrics = {metric.name: metric.result() for metric in self.metrics}
    metrics["loss"] = loss
    metrics["regularization_loss"] = regularization_loss
    metrics["total_loss"] = total_loss
    return metrics

  # -------------------------------------------------------------- inference
  def user_representation(self, features: Mapping[str, tf.Tensor]
                          ) -> tf.Tensor:
    """User space (U2U channel); multi-interest towers give ``(B, K, d)``.

    Ids outside a field's vocabulary (unknown users, items, attribute
    values) are read as 0, "missing" (``mic_tf.layers.unknown_ids``).
    """
    features = known_features(features, self.spec.user_fields)
    return self.encode_user(features, 0, training=False)[0]

  def user_query(self, features: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """Shared-space user query for U2I retrieval, L2-normalised."""
    return _l2(self.project_user(self.user_representation(features)))

  def item_representation(self, item_ids: tf.Tensor) -> tf.Tensor:
    """Item space (I2I channel)."""
    return self.encode_item(item_ids, 0, training=False)[0]

  def item_candidate(self, item_ids: tf.Tensor) -> tf.Tensor:
    """Shared-space item vector for U2I retrieval, L2-normalised."""
    return _l2(self.project_item(self.item_representation(item_ids)))

  def call(self, inputs, training=None):
    """Shared-space user query of a features dict (for Keras tooling)."""
    return self.user_query(inputs)
