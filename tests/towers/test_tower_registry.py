"""The tower registry: names, builders, item-side default, trainer wiring."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import tensorflow as tf

from mic_tf import towers
from mic_tf import training
from mic_tf.models import MICModel
from mic_tf.models.build import build_model
from mic_tf.towers import registry
import tower_test_lib as lib

BUILT_IN = (("dssm", towers.DSSMTower, False),
            ("youtube_dnn", towers.YouTubeDNNTower, False),
            ("comirec_sa", towers.ComiRecSATower, True),
            ("comirec_dr", towers.ComiRecDRTower, True))


class TowerRegistryTest(tf.test.TestCase, parameterized.TestCase):

  def test_built_in_names(self):
    self.assertContainsSubset([n for n, _, _ in BUILT_IN],
                              towers.available_towers())

  @parameterized.named_parameters(*[(n, n, c, m) for n, c, m in BUILT_IN])
  def test_build_towers(self, name, cls, multi_interest):
    _, tables, _ = lib.data()
    # The trainer passes hidden_units to every builder.
    user, item = towers.build_towers(name, tables.spec, 8, 6, dropout=0.1,
                                     hidden_units=(12,))
    self.assertIsInstance(user, cls)
    self.assertIs(type(item), towers.DSSMTower)
    self.assertEqual((user.name, item.name), ("user_tower", "item_tower"))
    self.assertEqual(user.fields, tables.spec.user_fields)
    self.assertEqual(item.fields, tables.spec.item_fields)
    self.assertEqual(user.multi_interest, multi_interest)
    rank = 3 if multi_interest else 2
    self.assertEqual(user(lib.user_batch()).shape.rank, rank)

  @parameterized.named_parameters(("sa", "comirec_sa"), ("dr", "comirec_dr"))
  def test_trainer_builds_multi_interest_models(self, name):
    _, tables, _ = lib.data()
    config = training.ExperimentConfig.from_settings(
        tower=name, embedding_dim=8, output_dim=8, hidden_units=(16,),
        tower_kwargs={"num_interests": 2})
    model = build_model(config, tables)
    self.assertIsInstance(model, MICModel)
    self.assertEqual(model.user_tower.num_interests, 2)
    rep = model.user_representation(lib.user_batch())
    self.assertEqual(rep.shape, (8, 2, 8))

  def test_unknown_name_lists_the_available_towers(self):
    _, tables, _ = lib.data()
    with self.assertRaisesRegex(ValueError, "comirec_sa.*register_tower"):
      towers.build_towers("no_such_tower", tables.spec)

  def test_duplicate_names_need_overwrite(self):
    with self.assertRaisesRegex(ValueError, "overwrite=True"):
      towers.register_tower("comirec_dr", lambda *a, **k: None)

  def test_custom_item_builder(self):
    def item_builder(fields, embedding_dim, output_dim, dropout, name=None,
                     **kwargs):
      del kwargs  # e.g. hidden_units, which this linear tower ignores
      return towers.DSSMTower(fields, embedding_dim, output_dim,
                              hidden_units=(), dropout=dropout, name=name)

    # pylint: disable=protected-access
    towers.register_tower("test_linear_items", registry._dssm, item_builder,
                          overwrite=True)
    self.addCleanup(registry._USER_BUILDERS.pop, "test_linear_items")
    self.addCleanup(registry._ITEM_BUILDERS.pop, "test_linear_items")
    # pylint: enable=protected-access
    _, tables, _ = lib.data()
    user, item = towers.build_towers("test_linear_items", tables.spec, 8, 6,
                                     hidden_units=(12,))
    self.assertEqual((user.hidden_units, item.hidden_units), ((12,), ()))


if __name__ == "__main__":
  tf.test.main()
