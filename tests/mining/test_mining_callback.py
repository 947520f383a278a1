"""Tests of MiningCallback: the refresh schedule and a short mined training."""

import types

import mic_tf  # noqa: F401  (Keras-2 environment first)
import numpy as np
import pytest
import tensorflow as tf

from mic_tf import features as F
from mic_tf import pipeline
from mic_tf.mining import MiningCallback
from mic_tf.mining import MiningConfig
from mic_tf.models.config import MICConfig
from mic_tf.models.mined import build_mined_model
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers.dssm import DSSMTower

DIM = 16


class _FakeModel:
  """Counts refreshes; stands in for a MinedMICModel."""

  def __init__(self, every_steps=None, every_epoch=True):
    self.mining = types.SimpleNamespace(refresh_every_steps=every_steps,
                                        refresh_every_epoch=every_epoch)
    self.refreshes = 0

  def refresh_mining_bank(self):
    self.refreshes += 1
    return {"encode_s": 0.0, "knn_s": 0.0, "kmeans_s": 0.0}


def _simulate(callback, epochs, steps):
  callback.on_train_begin()
  for epoch in range(epochs):
    callback.on_epoch_begin(epoch)
    for step in range(steps):
      callback.on_train_batch_end(step)
  return [(t["epoch"], t["step"]) for t in callback.timings]


class ScheduleTest(tf.test.TestCase):

  def test_per_epoch_only(self):
    callback = MiningCallback(verbose=False)
    callback.set_model(_FakeModel())
    self.assertEqual(_simulate(callback, 3, 5), [(0, 0), (1, 5), (2, 10)])

  def test_steps_only_still_refreshes_once_at_the_start(self):
    callback = MiningCallback(verbose=False)
    callback.set_model(_FakeModel(every_steps=4, every_epoch=False))
    self.assertEqual(_simulate(callback, 2, 5), [(0, 0), (0, 4), (1, 8)])

  def test_warmup_delays_the_first_refresh(self):
    model = _FakeModel()
    model.mining.warmup_steps = 7
    counter = tf.Variable(0, dtype=tf.int64)
    model.optimizer = types.SimpleNamespace(iterations=counter)
    callback = MiningCallback(verbose=False)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(3):
      callback.on_epoch_begin(epoch)
      for step in range(5):
        counter.assign_add(1)
        callback.on_train_batch_end(step)
    got = [(t["epoch"], t["step"]) for t in callback.timings]
    self.assertEqual(got, [(1, 7), (2, 10)])

  def test_arguments_override_the_model_config(self):
    callback = MiningCallback(every_steps=2, every_epoch=False, verbose=False)
    callback.set_model(_FakeModel(every_steps=100, every_epoch=True))
    self.assertEqual(_simulate(callback, 2, 3),
                     [(0, 0), (0, 2), (1, 4), (1, 6)])

  def test_needs_a_model_that_can_refresh(self):
    with self.assertRaisesRegex(ValueError, "refresh_mining_bank"):
      MiningCallback().set_model(tf.keras.Sequential())
    with self.assertRaisesRegex(ValueError, "every_steps"):
      MiningCallback(every_steps=0)


def _towers(tables):
  spec = tables.spec
  return (DSSMTower(spec.user_fields, DIM, DIM, dropout=0.0,
                    name="user_tower"),
          DSSMTower(spec.item_fields, DIM, DIM, dropout=0.0,
                    name="item_tower"))


class MinedTrainingTest(tf.test.TestCase):

  @pytest.mark.slow
  def test_fit_refreshes_on_schedule_and_trains(self):
    tf.keras.utils.set_random_seed(0)
    dataset = synthetic_dataset(num_users=150, num_items=60, length=10, seed=0)
    tables = F.build_feature_tables(dataset, maxlen=6, max_item_users=6)
    mining = MiningConfig(num_neighbours=3, num_clusters=4, hard_negatives=2,
                          index="exact", refresh_every_steps=4)
    model = build_mined_model(*_towers(tables), tables, dataset,
                              MICConfig(projection_dim=DIM), mining)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    ds = pipeline.training_dataset(tables, dataset, batch_size=64, seed=0,
                                   max_examples=640)  # 10 steps per epoch
    with self.assertRaisesRegex(ValueError, "MiningCallback"):
      model.fit(ds, epochs=1, verbose=0)
    callback = MiningCallback(verbose=False)
    history = model.fit(ds, epochs=2, callbacks=[callback], verbose=0)
    # One refresh per epoch start + one every 4 steps (steps 4, 8, 12, 16, 20).
    self.assertLen(callback.timings, 2 + 5)
    self.assertEqual([t["step"] for t in callback.timings],
                     [0, 4, 8, 10, 12, 16, 20])
    for name in ("loss", "uu_nn_loss", "ii_nn_loss", "ui_nn_loss"):
      values = history.history[name]
      self.assertTrue(np.all(np.isfinite(values)), name)
      self.assertGreater(values[0], 0.0, name)
    self.assertLess(history.history["loss"][-1], history.history["loss"][0])


if __name__ == "__main__":
  tf.test.main()
