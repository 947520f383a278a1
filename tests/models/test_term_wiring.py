"""Each contrastive term sees the space and view pairing config.py documents.

With masking, embedding dropout and tower dropout at 0, both perturbed views
equal the anchor, so every term the model reports must equal the
``mic_tf.losses`` function applied to the anchor's vectors in the documented
space: UI in the shared space, UU in the user space, II in the item space,
with the batch's known positives masked in UI and II.
"""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

import mic_tf  # noqa: F401
from mic_tf import features as F
from mic_tf import losses as L
from mic_tf import pipeline
from mic_tf.models import MICConfig, MICModel
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers import build_towers

_NO_NOISE = dict(user_attribute_mask=0.0, history_mask=0.0,
                 item_attribute_mask=0.0, item_users_mask=0.0,
                 embedding_dropout=0.0)


def _model_and_batch(config):
  tf.keras.utils.set_random_seed(3)
  ds = synthetic_dataset(num_users=80, num_items=40, length=10, seed=3)
  tables = F.build_feature_tables(ds, maxlen=5, max_item_users=6)
  user, item = build_towers("dssm", tables.spec, embedding_dim=12,
                            output_dim=12, hidden_units=(12,), dropout=0.0)
  model = MICModel(user, item, tables.spec, tables.item_table, config)
  batch = next(iter(pipeline.training_dataset(tables, ds, batch_size=24,
                                              seed=3)))
  return model, batch


class TermWiringTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(True, False)
  def test_each_term_matches_its_loss_on_the_documented_space(self, masked):
    config = MICConfig(terms=("ui", "uu", "ii"), mask_false_negatives=masked,
                       term_temperatures={"ii": 0.3}, **_NO_NOISE)
    model, batch = _model_and_batch(config)
    model.compute_loss(batch, training=True)
    got = {t: float(model._trackers[t].result()) for t in ("ui", "uu", "ii")}

    item_ids = tf.cast(batch[F.ITEM_ID], tf.int32)
    user_ids = batch[F.USER_KEY]
    user = model.user_representation(batch)
    item = model.item_representation(item_ids)
    user_shared = model.project_user(user)
    item_shared = model.project_item(item)
    known = (L.known_positives(user_ids, item_ids, batch[F.HISTORY])
             if masked else None)
    want = {
        "ui": L.user_item_loss([user_shared, user_shared],
                               [item_shared, item_shared], item_ids,
                               user_ids=user_ids, temperature=0.1,
                               known_positives=known),
        "uu": L.user_user_loss(user, user, user_ids, temperature=0.1),
        "ii": L.item_item_loss(item, item, item_ids, temperature=0.3,
                               known_positives=known),
    }
    for term in want:
      self.assertAllClose(got[term], want[term], rtol=1e-5, msg=term)
    # The wrong space gives another value (the test can fail).
    self.assertNotAllClose(
        got["uu"], L.user_user_loss(user_shared, user_shared, user_ids, 0.1))
    self.assertNotAllClose(
        got["ii"], L.item_item_loss(item_shared, item_shared, item_ids, 0.3,
                                    known_positives=known))

  def test_masking_changes_the_terms_it_should(self):
    on, batch = _model_and_batch(MICConfig(**_NO_NOISE))
    on.compute_loss(batch, training=True)
    off, _ = _model_and_batch(MICConfig(mask_false_negatives=False,
                                        **_NO_NOISE))
    off.compute_loss(batch, training=True)
    value = lambda m, t: float(m._trackers[t].result())
    for term in ("basic", "ui", "ii"):
      self.assertNotAllClose(value(on, term), value(off, term), msg=term)
    self.assertAllClose(value(on, "uu"), value(off, "uu"))


if __name__ == "__main__":
  tf.test.main()
