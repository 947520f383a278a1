"""ComiRecSATower: the shared tower contract plus self-attention specifics."""

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
import numpy as np
import tensorflow as tf

from mic_tf import features as F
from mic_tf.towers import ComiRecSATower, build_towers
import tower_test_lib as lib


class ComiRecSAContractTest(lib.TowerContractTest):

  TOWER = "comirec_sa"
  TOWER_KWARGS = {"num_interests": 3}


class ComiRecSATowerTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    tf.keras.utils.set_random_seed(0)
    self.fields = lib.data()[1].spec.user_fields

  def tower(self, **kwargs):
    kwargs.setdefault("dropout", 0.0)
    return ComiRecSATower(self.fields, 8, 8, num_interests=3, **kwargs)

  def test_attention_is_a_softmax_over_real_positions(self):
    tower = self.tower()
    feats = lib.user_batch()
    mask = tf.not_equal(feats[F.HISTORY], 0)
    history = tower.embed(feats)[F.HISTORY] * tf.cast(mask, tf.float32)[
        ..., None]
    weights = tower.attention(history, mask).numpy()
    self.assertEqual(weights.shape, (8, 3, lib.MAXLEN))
    has_items = mask.numpy().any(axis=1)
    self.assertAllClose(weights[has_items].sum(-1),
                        np.ones((has_items.sum(), 3)), atol=1e-6)
    padded = np.broadcast_to(~mask.numpy()[:, None, :], weights.shape)
    padded = padded & has_items[:, None, None]
    self.assertGreater(padded.sum(), 0)
    self.assertAllEqual(weights[padded], np.zeros(padded.sum()))
    # Interests are attention-weighted sums of the item embeddings.
    interests = tower.extract_interests(history, mask)
    self.assertAllClose(interests, np.einsum("bkt,btd->bkd", weights,
                                             history.numpy()), atol=1e-5)
    # The heads attend differently, so the interests differ.
    self.assertNotAllClose(interests[:, 0], interests[:, 1])

  def test_position_embeddings_enter_the_attention(self):
    tower = self.tower()
    feats = lib.user_batch()
    before = tower(feats)
    tower.position_embedding.assign(tf.zeros_like(tower.position_embedding))
    self.assertNotAllClose(before, tower(feats))
    plain = self.tower(add_positions=False)
    plain(feats)
    self.assertNotIn("position_embedding",
                     " ".join(w.name for w in plain.weights))

  def test_output_projection(self):
    tower = ComiRecSATower(self.fields, 8, 5, num_interests=2)
    self.assertEqual(tower(lib.user_batch()).shape, (8, 2, 5))
    self.assertIsNotNone(tower.interest_projection)
    self.assertIsNone(self.tower().interest_projection)
    forced = self.tower(output_projection=True)
    self.assertEqual(forced(lib.user_batch()).shape, (8, 3, 8))
    with self.assertRaisesRegex(ValueError, "output_projection=False"):
      ComiRecSATower(self.fields, 8, 5, output_projection=False)

  def test_attributes_shift_every_interest_equally(self):
    tower = self.tower()
    feats = lib.user_batch()
    other = dict(feats)
    other["age"] = (feats["age"] % 4) + 1
    delta = (tower(other) - tower(feats)).numpy()
    self.assertGreater(np.abs(delta).max(), 0.0)
    self.assertAllClose(delta, np.repeat(delta[:, :1], 3, axis=1), atol=1e-6)

  def test_history_only_variant_ignores_attributes(self):
    tower = self.tower(use_attributes=False)
    self.assertEqual([f.name for f in tower.fields], [F.HISTORY])
    feats = lib.user_batch()
    other = dict(feats)
    other["age"] = (feats["age"] % 4) + 1
    self.assertAllClose(tower(feats), tower(other))
    clone = ComiRecSATower.from_config(tower.get_config())
    self.assertEqual(clone.fields, tower.fields)

  def test_builder_and_errors(self):
    spec = lib.data()[1].spec
    user, item = build_towers("comirec_sa", spec, 8, 8, 0.1,
                              hidden_units=(64,), num_interests=2,
                              attention_units=6)
    self.assertTrue(user.multi_interest)
    self.assertEqual((user.num_interests, user.attention_units), (2, 6))
    self.assertEqual(type(item).__name__, "DSSMTower")
    with self.assertRaisesRegex(ValueError, "num_interests"):
      ComiRecSATower(self.fields, num_interests=0)
    with self.assertRaisesRegex(ValueError, "history field"):
      ComiRecSATower([f for f in self.fields if f.name != F.HISTORY])
    short = dict(lib.user_batch())
    short[F.HISTORY] = short[F.HISTORY][:, 2:]
    with self.assertRaisesRegex(ValueError, "length"):
      self.tower()(short)


if __name__ == "__main__":
  tf.test.main()
