"""MICModel with co-occurrence positives in the II term."""

import os

import numpy as np
import pytest
import tensorflow as tf
from absl.testing import parameterized

import mic_tf  # noqa: F401
from mic_tf import features as F
from mic_tf import losses as L
from mic_tf import pipeline
from mic_tf.mining import cooccurrence
from mic_tf.mining.config import MiningConfig
from mic_tf.models import MICConfig, MICModel
from mic_tf.models.mined import MinedMICModel
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers import build_towers

_NO_NOISE = dict(user_attribute_mask=0.0, history_mask=0.0,
                 item_attribute_mask=0.0, item_users_mask=0.0,
                 embedding_dropout=0.0)


def _data():
  ds = synthetic_dataset(num_users=80, num_items=40, length=10, seed=3)
  tables = F.build_feature_tables(ds, maxlen=5, max_item_users=6)
  return ds, tables


def _towers(tables):
  return build_towers("dssm", tables.spec, embedding_dim=12, output_dim=12,
                      hidden_units=(12,), dropout=0.0)


def _model(config, neighbours=None, cls=MICModel, **kwargs):
  tf.keras.utils.set_random_seed(3)
  ds, tables = _data()
  model = cls(*_towers(tables), tables.spec, tables.item_table, config,
              item_neighbours=neighbours, **kwargs)
  batch = next(iter(pipeline.training_dataset(tables, ds, batch_size=24,
                                              seed=3)))
  return model, batch, ds, tables


def _cooc(**kwargs):
  return MICConfig(ii_positives="cooccurrence", **kwargs)


class CooccurrenceModelTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters((2, None), (1, None), (2, 16))
  def test_ii_contrasts_each_item_with_its_neighbour(self, views, rows):
    ds, tables = _data()
    # One neighbour per item: the sampled positive is known.
    table = cooccurrence.dataset_neighbours(ds, tables.spec.num_items, 1)
    model, batch, _, _ = _model(_cooc(ii_neighbors=1, num_views=views,
                                      contrastive_batch_size=rows,
                                      **_NO_NOISE), table)
    model.compute_loss(batch, training=True)
    got = float(model._trackers["ii"].result())
    batch = {k: v[:rows] for k, v in batch.items()}  # the rows with views
    item_ids = tf.cast(batch[F.ITEM_ID], tf.int32)
    positive_ids = table.ids[item_ids.numpy(), 0]
    self.assertTrue((positive_ids != item_ids.numpy()).any())
    known = L.known_positives(batch[F.USER_KEY], item_ids, batch[F.HISTORY])
    item = model.item_representation(item_ids)
    want = L.item_item_loss(item, model.item_representation(positive_ids),
                            item_ids, 0.1, known, positive_ids=positive_ids)
    self.assertAllClose(got, want, rtol=1e-5)
    # Eq. 6 (own views) gives another value: the test can fail.
    self.assertNotAllClose(got, L.item_item_loss(item, item, item_ids, 0.1,
                                                 known))

  def test_positives_are_drawn_uniformly_from_the_real_neighbours(self):
    # Item 1: three neighbours; item 2: one (its other slots are itself);
    # items 3 and 7: none.
    ids = np.array([[0, 0, 0], [2, 3, 4], [1, 2, 2], [3, 3, 3]], np.int32)
    real = np.array([0, 3, 1, 0], np.int32)
    ds, tables = _data()
    n = tables.spec.num_items
    full = np.repeat(np.arange(n, dtype=np.int32)[:, None], 3, axis=1)
    full[:4] = ids
    counts = np.zeros(n, np.int32)
    counts[:4] = real
    model, _, _, _ = _model(_cooc(ii_neighbors=3),
                            cooccurrence.ItemNeighbours(full, counts))
    tf.random.set_seed(0)
    draws = model.sample_item_positives(
        tf.constant([1] * 3000 + [2] * 50 + [3] * 50 + [7] * 50)).numpy()
    freq = np.bincount(draws[:3000], minlength=5)[2:5] / 3000
    self.assertAllClose(freq, [1 / 3] * 3, atol=0.04)
    self.assertAllEqual(draws[3000:3050], [1] * 50)  # its one neighbour
    self.assertAllEqual(draws[3050:], [3] * 50 + [7] * 50)  # none: itself

  def test_the_table_is_no_variable_and_views_stay_the_default(self):
    ds, tables = _data()
    table = cooccurrence.dataset_neighbours(ds, tables.spec.num_items, 4)
    cooc, batch, _, _ = _model(_cooc(), table)
    views, _, _, _ = _model(MICConfig())
    for model in (cooc, views):
      model.compute_loss(batch, training=True)
    names = lambda m: sorted(v.name for v in m.variables)
    self.assertEqual(names(cooc), names(views))
    self.assertIsNone(views._neighbour_ids)
    self.assertFalse(views.ii_cooccurrence)
    # Co-occurrence without the II term: no table needed.
    MICModel(*_towers(tables), tables.spec, tables.item_table,
             _cooc(terms=("ui", "uu")))

  def test_missing_or_mismatched_table_is_refused(self):
    _, tables = _data()
    with self.assertRaisesRegex(ValueError, "needs item_neighbours"):
      MICModel(*_towers(tables), tables.spec, tables.item_table, _cooc())
    small = cooccurrence.ItemNeighbours(np.zeros((3, 2), np.int32),
                                        np.zeros(3, np.int32))
    with self.assertRaisesRegex(ValueError, "rows, the item vocabulary"):
      MICModel(*_towers(tables), tables.spec, tables.item_table, _cooc(),
               item_neighbours=small)

  def test_mining_ii_and_cooccurrence_positives_are_exclusive(self):
    ds, tables = _data()
    table = cooccurrence.dataset_neighbours(ds, tables.spec.num_items, 2)
    with self.assertRaisesRegex(ValueError, "cannot take"):
      MinedMICModel(*_towers(tables), tables.spec, tables.item_table,
                    _cooc(), item_neighbours=table,
                    mining=MiningConfig(channels=("ii",)))

  def test_config_round_trip_and_validation(self):
    config = _cooc(ii_neighbors=7)
    self.assertEqual(MICConfig.from_dict(config.to_dict()), config)
    self.assertEqual(MICConfig().ii_positives, "views")
    with self.assertRaisesRegex(ValueError, "ii_positives must be one of"):
      MICConfig(ii_positives="users")
    for bad in (0, 2.5, True):
      with self.assertRaisesRegex(ValueError, "ii_neighbors must be"):
        MICConfig(ii_neighbors=bad)


@pytest.mark.slow
def test_a_cooccurrence_run_trains_resumes_reloads_and_exports(prepared,
                                                               tmp_path):
  from mic_tf import runs  # pylint: disable=g-import-not-at-top
  from mic_tf import training  # pylint: disable=g-import-not-at-top

  class _Crash(tf.keras.callbacks.Callback):

    def on_epoch_begin(self, epoch, logs=None):
      if epoch == 1:
        raise RuntimeError("simulated crash")

  config = training.ExperimentConfig.from_settings(
      dataset="ml-100k", epochs=2, batch_size=256, maxlen=10,
      learning_rate=3e-3, embedding_dim=16, output_dim=16,
      hidden_units=(16,), max_item_users=10, seed=0,
      examples_per_epoch=2048, output_dir=str(tmp_path),
      mic=MICConfig.tuned(projection_dim=16, ii_positives="cooccurrence",
                          ii_neighbors=5))
  with pytest.raises(RuntimeError, match="simulated crash"):
    training.run_experiment(config, prepared, verbose=0, callbacks=[_Crash()])
  results = training.run_experiment(config, prepared, verbose=0)
  assert results["resumed"]
  assert [h["epoch"] for h in results["history"]] == [1, 2]
  ii = {m.name: m for m in results["model"].metrics}["ii_loss"]
  assert np.isfinite(float(ii.result())) and float(ii.result()) > 0
  saved_config, _, model = training.load_run(str(tmp_path), prepared)
  assert saved_config.mic.ii_positives == "cooccurrence"
  again = training.evaluate_u2i(model, prepared.test)
  np.testing.assert_allclose(again["recall@50"],
                             results["test"]["recall@50"], rtol=1e-5)
  paths = runs.export_run(str(tmp_path), str(tmp_path / "export"),
                          ("u2i", "i2i"), 10, prepared=prepared)
  assert all(os.path.isdir(p) for p in paths.values())
