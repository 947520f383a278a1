"""Tests of MinedMICModel: equivalence with MICModel, mined terms, training."""

import mic_tf  # noqa: F401  (Keras-2 environment first)
from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from mic_tf import features as F
from mic_tf import pipeline
from mic_tf.mining import MiningConfig
from mic_tf.mining import pool as pool_lib
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel
from mic_tf.models.views import Views
from mic_tf.models.mined import MinedMICModel
from mic_tf.models.mined import build_mined_model
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers.dssm import DSSMTower

DIM = 16


def _data():
  ds = synthetic_dataset(num_users=150, num_items=60, length=10, seed=0)
  tables = F.build_feature_tables(ds, maxlen=6, max_item_users=6)
  return ds, tables


DATASET, TABLES = _data()
MIC = MICConfig(projection_dim=DIM)


def _towers():
  spec = TABLES.spec
  return (DSSMTower(spec.user_fields, DIM, DIM, dropout=0.0,
                    name="user_tower"),
          DSSMTower(spec.item_fields, DIM, DIM, dropout=0.0,
                    name="item_tower"))


def _mining(**kwargs):
  defaults = dict(num_neighbours=3, num_clusters=4, hard_negatives=2,
                  index="exact", encode_batch_size=64)
  defaults.update(kwargs)
  return MiningConfig(**defaults)


def _batch(size=16):
  ds = pipeline.training_dataset(TABLES, DATASET, batch_size=size, seed=0)
  return next(iter(ds))


def _loss_after_warmup(model, batch, refresh=False):
  """Builds every variable and RNG with one call, then returns a loss.

  Random layers draw their generator seeds when first called, so both
  models are warmed up identically before the compared call.
  """
  model.compute_loss(batch, training=True)
  if refresh:
    model.refresh_mining_bank()
  return model.compute_loss(batch, training=True).numpy()


class MinedMICModelTest(tf.test.TestCase, parameterized.TestCase):

  def _base_loss(self, batch, mic=MIC):
    tf.keras.utils.set_random_seed(11)
    base = MICModel(*_towers(), TABLES.spec, TABLES.item_table, config=mic,
                    item_counts=TABLES.item_counts)
    return _loss_after_warmup(base, batch)

  def _mined(self, mining, mic=MIC):
    tf.keras.utils.set_random_seed(11)
    return build_mined_model(*_towers(), TABLES, DATASET, mic, mining)

  def test_every_channel_off_gives_exactly_the_mic_loss(self):
    batch = _batch()
    mined = self._mined(MiningConfig.off())
    self.assertEqual(_loss_after_warmup(mined, batch), self._base_loss(batch))

  def test_no_positive_weight_and_no_hard_negative_gives_the_mic_loss(self):
    # Exercises the mined code path of every channel, with a refreshed bank.
    batch = _batch()
    mined = self._mined(_mining(positive_weight=0.0, hard_negatives=0))
    got = _loss_after_warmup(mined, batch, refresh=True)
    self.assertAllClose(got, self._base_loss(batch), rtol=1e-6)

  @pytest.mark.slow
  def test_one_view_setting_and_contrastive_rows_are_supported(self):
    mic = MICConfig(projection_dim=DIM, num_views=1, contrastive_batch_size=8)
    batch = _batch()
    mined = self._mined(_mining(positive_weight=0.0, hard_negatives=0), mic)
    got = _loss_after_warmup(mined, batch, refresh=True)
    self.assertAllClose(got, self._base_loss(batch, mic), rtol=1e-6)
    mined = self._mined(_mining(), mic)
    self.assertTrue(np.isfinite(_loss_after_warmup(mined, batch, True)))

  @parameterized.parameters(("uu",), ("ii",), ("ui",))
  def test_a_mined_channel_changes_only_its_own_term(self, channel):
    batch = _batch()
    mined = self._mined(_mining(channels=(channel,)))
    mined.compute_loss(batch, training=True)
    mined.refresh_mining_bank()
    v = [tf.constant(np.random.default_rng(i).normal(size=(16, DIM)),
                     tf.float32) for i in range(8)]
    uid = batch[F.USER_KEY]
    iid = tf.cast(batch[F.ITEM_ID], tf.int32)
    views = Views(user=v[0:2], item=v[2:4], user_shared=v[4:6],
                  item_shared=v[6:8], user_ids=uid, item_ids=iid)
    plain = MICModel.contrastive_losses(mined, views)
    got = mined.contrastive_losses(views)
    for name in ("ui", "uu", "ii"):
      if name == channel:
        self.assertNotAllClose(got[name], plain[name])
        self.assertTrue(np.isfinite(got[name].numpy()))
      else:
        self.assertAllEqual(got[name], plain[name])
    names = [m.name for m in mined.metrics]
    self.assertIn(f"{channel}_nn_loss", names)

  def test_mined_terms_are_inactive_before_the_first_refresh(self):
    batch = _batch()
    mined = self._mined(_mining())
    got = _loss_after_warmup(mined, batch)
    self.assertAllClose(got, self._base_loss(batch), rtol=1e-6)
    self.assertFalse(mined.mining_bank.is_ready)

  def test_bank_is_not_a_weight_and_gets_no_gradient(self):
    batch = _batch()
    mined = self._mined(_mining())
    mined.compute_loss(batch, training=True)
    plain = MICModel(*_towers(), TABLES.spec, TABLES.item_table, config=MIC)
    plain.compute_loss(batch, training=True)
    self.assertLen(mined.trainable_weights, len(plain.trainable_weights))
    mined.refresh_mining_bank()
    bank_vars = [p.vectors for p in mined.mining_bank.pools.values()]
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([v.value() for v in bank_vars])
      loss = mined.compute_loss(batch, training=True)
    grads = tape.gradient(loss, mined.trainable_weights)
    self.assertTrue(all(g is not None for g in grads[:4]))
    for v in bank_vars:
      self.assertFalse(v.trainable)
      self.assertIsNone(tape.gradient(loss, v))

  def test_refresh_encodes_the_current_model(self):
    mined = self._mined(_mining())
    mined.compute_loss(_batch(), training=True)
    timings = mined.refresh_mining_bank()
    self.assertCountEqual(timings, ["encode_s", "knn_s", "kmeans_s"])
    ids, feats = pool_lib.training_user_pool(TABLES, DATASET)
    want_users = tf.math.l2_normalize(mined.user_representation(
        {k: tf.constant(v) for k, v in feats.items()}), axis=-1)
    self.assertAllClose(mined.mining_bank.pool("user").vectors, want_users,
                        atol=1e-5)
    want_items = tf.math.l2_normalize(mined.item_candidate(
        tf.range(1, TABLES.spec.num_items)), axis=-1)
    self.assertAllClose(mined.mining_bank.pool("shared_item").vectors,
                        want_items, atol=1e-5)
    self.assertAllEqual(mined.mining_bank.pool("user").row_ids, ids)

  def test_training_user_pool_uses_the_last_maxlen_items(self):
    ids, feats = pool_lib.training_user_pool(TABLES, DATASET)
    self.assertAllEqual(ids, np.sort(DATASET.train_users))
    maxlen = TABLES.spec.maxlen
    for row in (0, 7, len(ids) - 1):
      seq = DATASET.sequences[ids[row]]
      self.assertAllEqual(feats[F.HISTORY][row], seq[-maxlen:])
    self.assertAllEqual(feats["gender"], DATASET.user_features["gender"][ids])

  def test_configuration_errors_name_the_fix(self):
    with self.assertRaisesRegex(ValueError, "not MIC terms"):
      self._mined(_mining(channels=("uu",)),
                  MICConfig(projection_dim=DIM, terms=("ui", "ii")))
    with self.assertRaisesRegex(ValueError, "needs the user pool"):
      MinedMICModel(*_towers(), TABLES.spec, TABLES.item_table, config=MIC,
                    mining=_mining(channels=("uu",)))
    with self.assertRaisesRegex(ValueError, "Unknown mining channel"):
      MiningConfig(channels=("u2u",))
    # Item mining alone needs no user pool.
    model = MinedMICModel(*_towers(), TABLES.spec, TABLES.item_table,
                          config=MIC, mining=_mining(channels=("ii",)))
    self.assertEqual(model.mining_bank.required_vectors(), ("item",))


if __name__ == "__main__":
  tf.test.main()
