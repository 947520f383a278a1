"""YouTubeDNNTower: the shared tower contract plus its own architecture."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers import YouTubeDNNTower, build_towers
from mic_tf.towers import youtube_dnn
import tower_test_lib as lib


class YouTubeDNNContractTest(lib.TowerContractTest):

  TOWER = "youtube_dnn"


class YouTubeDNNTowerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    tf.keras.utils.set_random_seed(0)
    self.fields = lib.data()[1].spec.user_fields

  def test_user_vector_is_the_top_relu_layer(self):
    relu = YouTubeDNNTower(self.fields, 8, 6, hidden_units=(12,), dropout=0.0)
    linear = YouTubeDNNTower(self.fields, 8, 6, hidden_units=(12,),
                             dropout=0.0, output_activation=None)
    feats = lib.user_batch(32)
    self.assertGreaterEqual(float(tf.reduce_min(relu(feats))), 0.0)
    self.assertLess(float(tf.reduce_min(linear(feats))), 0.0)

  def test_default_tower_is_covington_pyramid(self):
    tower = YouTubeDNNTower(self.fields, 8, 6)
    tower(lib.user_batch())
    dense = [l for l in tower.tower.layers
             if isinstance(l, tf.keras.layers.Dense)]
    self.assertEqual([l.units for l in dense], [24, 12, 6])
    self.assertEqual([l.activation.__name__ for l in dense],
                     ["relu", "relu", "relu"])

  def test_input_is_watch_vector_and_attributes(self):
    tower = YouTubeDNNTower(self.fields, 8, 6, hidden_units=(12,))
    feats = lib.user_batch()
    embedded = tower.embed(feats)
    first = tower.tower.layers[0]
    tower.encode(embedded, feats)
    # 2 scalar attributes + the averaged history, each 8 wide.
    self.assertEqual(first.kernel.shape[0], 3 * 8)
    other = dict(feats)
    other["age"] = (feats["age"] % 4) + 1
    self.assertNotAllClose(tower(feats), tower(other))

  def test_missing_history_is_a_clear_error(self):
    scalars = [f for f in self.fields if f.name != F.HISTORY]
    with self.assertRaisesRegex(ValueError, "history field"):
      YouTubeDNNTower(scalars)
    with self.assertRaisesRegex(ValueError, "sequence field"):
      YouTubeDNNTower(scalars, history_field="age")

  def test_builder_uses_hidden_units_and_rejects_interests(self):
    spec = lib.data()[1].spec
    user, _ = build_towers("youtube_dnn", spec, 8, 6, 0.1,
                           hidden_units=(10, 7))
    self.assertEqual(user.hidden_units, (10, 7))
    self.assertEqual(user.name, "user_tower")
    with self.assertRaisesRegex(ValueError, "num_interests"):
      youtube_dnn.build_youtube_dnn(spec.user_fields, 8, 6, 0.1,
                                    num_interests=4)

  def test_config_round_trip(self):
    tower = YouTubeDNNTower(self.fields, 8, 6, hidden_units=(5,),
                            dropout=0.3, output_activation=None, name="u")
    clone = YouTubeDNNTower.from_config(tower.get_config())
    self.assertEqual(clone.get_config(), tower.get_config())
    self.assertEqual(clone.fields, tower.fields)
    np.testing.assert_equal(clone.output_activation, None)


if __name__ == "__main__":
  tf.test.main()
