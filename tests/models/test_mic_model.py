"""MICModel: loss assembly, view batching, training, save/reload."""

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

import mic_tf  # noqa: F401
from mic_tf import features as F
from mic_tf import losses as L
from mic_tf import pipeline
from mic_tf.models import MICConfig, MICModel, encode_items, encode_users
from mic_tf.models import load_parts, save_parts
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers import build_towers


def _setup(config, seed=0, dim=16):
  tf.keras.utils.set_random_seed(seed)
  ds = synthetic_dataset(num_users=120, num_items=50, length=12, seed=seed)
  tables = F.build_feature_tables(ds, maxlen=6, max_item_users=8)
  user, item = build_towers("dssm", tables.spec, embedding_dim=dim,
                            output_dim=dim, hidden_units=(dim,))
  model = MICModel(user, item, tables.spec, tables.item_table, config,
                   item_counts=tables.item_counts)
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
  data = pipeline.training_dataset(tables, ds, batch_size=32, seed=seed)
  return ds, tables, model, data


class MICModelTest(tf.test.TestCase, parameterized.TestCase):

  def test_base_loss_is_the_basic_softmax_of_the_anchors(self):
    _, _, model, data = _setup(MICConfig.base(mask_false_negatives=False))
    batch = next(iter(data))
    loss = model.compute_loss(batch, training=False)
    users = model.project_user(model.user_representation(batch))
    items = model.project_item(model.item_representation(batch["item_id"]))
    expected = L.softmax_loss(users, items, batch["item_id"], temperature=0.1)
    self.assertAllClose(loss, expected, rtol=1e-5)

  def test_base_loss_masks_known_positives_of_the_batch(self):
    _, _, model, data = _setup(MICConfig.base())
    batch = next(iter(data))
    loss = model.compute_loss(batch, training=False)
    users = model.project_user(model.user_representation(batch))
    items = model.project_item(model.item_representation(batch["item_id"]))
    known = L.known_positives(batch[F.USER_KEY], batch["item_id"],
                              batch[F.HISTORY])
    # The synthetic batch has same-user rows and history hits to mask.
    self.assertGreater(int(tf.reduce_sum(tf.cast(known, tf.int32))), 32)
    expected = L.softmax_loss(users, items, batch["item_id"], temperature=0.1,
                              known_positives=known)
    unmasked = L.softmax_loss(users, items, batch["item_id"], temperature=0.1)
    self.assertAllClose(loss, expected, rtol=1e-5)
    self.assertNotAllClose(loss, unmasked)

  def test_contrastive_ramp_scales_terms_from_zero(self):
    _, _, model, data = _setup(MICConfig(contrastive_warmup_steps=10))
    batch = next(iter(data))
    total = model.compute_loss(batch, training=True)
    basic = float(model._trackers["basic"].result())
    self.assertAllClose(total, 0.7 * basic, rtol=1e-5)  # step 0: ramp is 0
    model.optimizer.iterations.assign(5)
    self.assertAllClose(model.contrastive_ramp(), 0.5)
    model.optimizer.iterations.assign(50)
    self.assertAllClose(model.contrastive_ramp(), 1.0)

  def test_full_loss_combines_terms_with_lambda(self):
    _, _, model, data = _setup(MICConfig())
    batch = next(iter(data))
    total = model.compute_loss(batch, training=True)
    parts = {t.name: float(t.result()) for t in model._trackers.values()}
    expected = 0.7 * parts["basic_loss"] + 0.3 * (
        parts["ui_loss"] + parts["uu_loss"] + parts["ii_loss"])
    self.assertAllClose(total, expected, rtol=1e-5)

  def test_views_differ_from_anchor_only_when_training(self):
    _, _, model, data = _setup(MICConfig())
    batch = next(iter(data))
    anchor, v1, v2 = model.encode_user(batch, 2, training=True)
    self.assertEqual(v1.shape, anchor.shape)
    self.assertNotAllClose(v1, v2)
    a, w1, _ = model.encode_user(batch, 2, training=False)
    self.assertAllClose(a, w1)  # perturbation is identity at inference

  def test_contrastive_batch_size_limits_view_rows(self):
    _, _, model, data = _setup(MICConfig(contrastive_batch_size=8))
    batch = next(iter(data))
    anchor, v1, v2 = model.encode_item(batch["item_id"], 2, training=True,
                                       view_rows=8)
    self.assertEqual(anchor.shape[0], 32)
    self.assertEqual(v1.shape[0], 8)
    self.assertEqual(v2.shape[0], 8)
    self.assertTrue(np.isfinite(model.compute_loss(batch, training=True)))

  @parameterized.parameters(
      dict(config=MICConfig.base()),
      dict(config=MICConfig()),
      dict(config=MICConfig(num_views=1, basic_loss="logistic")),
      dict(config=MICConfig(terms=("uu",), weighting="uncertainty")),
  )
  @pytest.mark.slow
  def test_fit_in_graph_mode_reduces_loss_and_reports_terms(self, config):
    _, _, model, data = _setup(config)
    hist = model.fit(data, epochs=4, verbose=0).history
    self.assertLess(hist["basic_loss"][-1], hist["basic_loss"][0])
    for term in config.terms:
      self.assertIn(f"{term}_loss", hist)
      self.assertTrue(np.all(np.isfinite(hist[f"{term}_loss"])))

  def test_gradients_reach_every_trainable_variable(self):
    _, _, model, data = _setup(MICConfig())
    batch = next(iter(data))
    with tf.GradientTape() as tape:
      loss = model.compute_loss(batch, training=True)
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.name for v, g in zip(model.trainable_variables, grads)
               if g is None]
    self.assertEqual(missing, [])

  def test_log_q_needs_counts(self):
    ds = synthetic_dataset(num_users=20)
    tables = F.build_feature_tables(ds, maxlen=4)
    user, item = build_towers("dssm", tables.spec, embedding_dim=4,
                              output_dim=4)
    with self.assertRaisesRegex(ValueError, "item_counts"):
      MICModel(user, item, tables.spec, tables.item_table,
               MICConfig(log_q_correction=True))

  @pytest.mark.slow
  def test_save_and_reload_parts_give_identical_embeddings(self):
    ds, tables, model, data = _setup(MICConfig())
    model.fit(data, epochs=1, verbose=0)
    ev = F.eval_users(tables, ds, ds.valid_users)
    feats = {k: tf.constant(v) for k, v in ev.features.items()}
    ids = tf.range(1, tables.spec.num_items)
    item_feats = model.item_lookup(ids)
    directory = self.get_temp_dir()
    save_parts(model, directory)
    parts = load_parts(directory)
    u = model.user_representation(feats)
    v = model.item_representation(ids)
    self.assertAllEqual(parts["user_tower"](feats), u)
    self.assertAllEqual(parts["item_tower"](item_feats), v)
    self.assertAllEqual(parts["user_projection"](u), model.project_user(u))
    self.assertAllEqual(parts["item_projection"](v), model.project_item(v))

  def test_encode_helpers_normalise_and_zero_padding(self):
    ds, tables, model, _ = _setup(MICConfig.base())
    ev = F.eval_users(tables, ds, ds.valid_users)
    q = encode_users(model, ev.features, "shared", batch_size=5)
    self.assertEqual(q.shape, (len(ev.users), model.config.projection_dim))
    self.assertAllClose(np.linalg.norm(q, axis=1), np.ones(len(q)))
    items = encode_items(model, "item", batch_size=7)
    self.assertEqual(items.shape, (tables.spec.num_items, 16))
    self.assertAllEqual(items[0], np.zeros(16))
    with self.assertRaisesRegex(ValueError, "space"):
      encode_items(model, "user")


class MICConfigTest(parameterized.TestCase):

  @parameterized.parameters(
      dict(kwargs=dict(terms=("xx",)), match="Unknown contrastive"),
      dict(kwargs=dict(lambda_=1.5), match="lambda_"),
      dict(kwargs=dict(num_views=3), match="num_views"),
      dict(kwargs=dict(history_mask=1.0), match="history_mask"),
      dict(kwargs=dict(basic_loss="hinge"), match="basic_loss"),
      dict(kwargs=dict(contrastive_batch_size=1), match="contrastive_batch"),
  )
  def test_bad_values_raise(self, kwargs, match):
    with self.assertRaisesRegex(ValueError, match):
      MICConfig(**kwargs)

  def test_json_round_trip(self):
    c = MICConfig(terms=("ui",), weights={"ui": 2.0, "uu": 1.0, "ii": 1.0})
    self.assertEqual(MICConfig.from_dict(c.to_dict()), c)


if __name__ == "__main__":
  tf.test.main()
