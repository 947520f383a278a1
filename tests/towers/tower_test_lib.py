"""The contract every registered user tower must meet, as reusable tests.

Each ``tests/towers/test_<name>_tower.py`` subclasses ``TowerContractTest``
with its registry name; the subclass then runs the shared checks (output
shape, padding masking, a short ``MICModel`` training run whose loss falls for
the base and the full MIC objective, weight save/reload, SavedModel serving,
exact top-k on the tower's queries) and adds tower-specific ones.

Kept out of pytest's collection (no ``test_`` prefix); import it as a module
(``import tower_test_lib as lib``) so that the abstract base class itself is
not collected.
"""

import functools
import os
from typing import Any, Dict, Tuple

import mic_tf  # noqa: F401  (sets up Keras 2 before TensorFlow is used)
from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from mic_tf import channels
from mic_tf import features as F
from mic_tf import pipeline
from mic_tf.models import MICConfig, MICModel, encode_items, encode_users
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers import Tower, build_towers

EMBEDDING_DIM = 16
OUTPUT_DIM = 16
MAXLEN = 10
BATCH = 64
PROJECTION_DIM = 12

CONFIGS = (("base", lambda: MICConfig.base()),
           ("full_mic", lambda: MICConfig(contrastive_batch_size=BATCH)))


@functools.lru_cache(maxsize=None)
def data() -> Tuple[Any, F.FeatureTables, F.EvalUsers]:
  """The synthetic dataset, its feature tables and its valid users."""
  dataset = synthetic_dataset(num_users=200, num_items=60, length=12, seed=0)
  tables = F.build_feature_tables(dataset, maxlen=MAXLEN, max_item_users=10)
  valid = F.eval_users(tables, dataset, dataset.valid_users)
  return dataset, tables, valid


def user_batch(size: int = 8, seed: int = 0) -> Dict[str, tf.Tensor]:
  """Training-user features with histories of varied length (some empty)."""
  dataset, tables, _ = data()
  rng = np.random.default_rng(seed)
  users = rng.choice(dataset.train_users, size, replace=False)
  ends = np.arange(size) % (MAXLEN + 2)  # 0 (empty) .. MAXLEN + 1 (full)
  histories = np.stack([F.pad_history(dataset.sequences[u], e, MAXLEN)
                        for u, e in zip(users, ends)])
  feats = tables.user_features(users, histories)
  feats["unused_key"] = np.zeros(size, np.int32)  # towers must ignore it
  return {k: tf.constant(v) for k, v in feats.items()}


def fit(model: MICModel, epochs: int, max_examples: int, seed: int = 0):
  """Fits ``model`` on the synthetic training pipeline; returns the history."""
  dataset, tables, _ = data()
  ds = pipeline.training_dataset(tables, dataset, batch_size=BATCH, seed=seed,
                                 max_examples=max_examples)
  return model.fit(ds, epochs=epochs, verbose=0)


class TowerContractTest(tf.test.TestCase, parameterized.TestCase):
  """Shared checks; subclasses set ``TOWER`` (a registry name)."""

  TOWER: str = ""
  TOWER_KWARGS: Dict[str, Any] = {}
  LEARNING_RATE = 0.01

  def setUp(self):
    super().setUp()
    if not self.TOWER:
      self.skipTest("abstract contract test")

  # ---------------------------------------------------------------- helpers
  def build(self, seed: int = 0) -> Tuple[tf.keras.Model, tf.keras.Model]:
    """(user tower, item tower) from the registry, seeded."""
    tf.keras.utils.set_random_seed(seed)
    _, tables, _ = data()
    return build_towers(self.TOWER, tables.spec, EMBEDDING_DIM, OUTPUT_DIM,
                        dropout=0.1, hidden_units=(32,),
                        **self.TOWER_KWARGS)

  def model(self, config: MICConfig, seed: int = 0) -> MICModel:
    user, item = self.build(seed)
    _, tables, _ = data()
    model = MICModel(user, item, tables.spec, tables.item_table,
                     config=config, item_counts=tables.item_counts)
    model.compile(optimizer=tf.keras.optimizers.Adam(self.LEARNING_RATE))
    return model

  def expected_shape(self, tower: tf.keras.Model,
                     batch: int) -> Tuple[int, ...]:
    if getattr(tower, "multi_interest", False):
      return (batch, self.TOWER_KWARGS.get("num_interests", 4), OUTPUT_DIM)
    return (batch, OUTPUT_DIM)

  def trained(self) -> MICModel:
    """One briefly trained base model per test class (shared, read-only)."""
    cls = type(self)
    if "_trained" not in cls.__dict__:
      model = self.model(MICConfig.base(projection_dim=PROJECTION_DIM))
      fit(model, epochs=1, max_examples=4 * BATCH)
      cls._trained = model
    return cls._trained

  # ----------------------------------------------------------------- checks
  def test_output_shape_and_kind(self):
    user, item = self.build()
    self.assertIsInstance(user, Tower)
    self.assertEqual(type(item).__name__, "DSSMTower")
    out = user(user_batch(), training=False)
    self.assertEqual(tuple(out.shape), self.expected_shape(user, 8))
    self.assertEqual(out.dtype, tf.float32)
    self.assertTrue(np.all(np.isfinite(out.numpy())))
    _, tables, _ = data()
    items = item(tables.item_features(np.arange(1, 6)), training=False)
    self.assertEqual(tuple(items.shape), (5, OUTPUT_DIM))

  def test_padding_does_not_change_output(self):
    user, _ = self.build()
    feats = user_batch()
    embedded = user.embed(feats)
    ids = feats[F.HISTORY]
    padded = tf.cast(tf.equal(ids, 0), tf.float32)[..., None]
    self.assertGreater(float(tf.reduce_sum(padded)), 0.0)
    noise = tf.random.stateless_normal(embedded[F.HISTORY].shape, [1, 2])
    changed = dict(embedded)
    changed[F.HISTORY] = embedded[F.HISTORY] + 10.0 * noise * padded
    base = user.encode(embedded, feats, training=False)
    self.assertAllClose(base, user.encode(changed, feats, training=False),
                        rtol=1e-5, atol=1e-5)
    # The padding row of the history table does not matter either.
    table = user.embedding.table(F.HISTORY)
    weights = table.get_weights()[0]
    weights[0] = 50.0
    table.set_weights([weights])
    self.assertAllClose(base, user(feats, training=False), rtol=1e-5,
                        atol=1e-5)
    # ... but a real (non-padding) position does: the history is used.
    real = 1.0 - padded
    moved = dict(embedded)
    moved[F.HISTORY] = embedded[F.HISTORY] + noise * real
    self.assertNotAllClose(base, user.encode(moved, feats, training=False))

  def test_empty_history_gives_finite_output(self):
    user, _ = self.build()
    feats = dict(user_batch())
    feats[F.HISTORY] = tf.zeros_like(feats[F.HISTORY])
    for training in (False, True):
      out = user(feats, training=training)
      self.assertEqual(tuple(out.shape), self.expected_shape(user, 8))
      self.assertTrue(np.all(np.isfinite(out.numpy())))

  @parameterized.named_parameters(*CONFIGS)
  @pytest.mark.slow
  def test_training_loss_falls(self, make_config):
    model = self.model(make_config())
    losses = fit(model, epochs=4, max_examples=8 * BATCH).history["loss"]
    self.assertTrue(np.all(np.isfinite(losses)), losses)
    self.assertLess(losses[-1], losses[0], losses)

  def test_save_weights_and_from_config_reload(self):
    tower = self.trained().user_tower
    feats = user_batch()
    expected = tower(feats, training=False)
    path = os.path.join(self.get_temp_dir(), "tower", "weights")
    tower.save_weights(path)
    clone = type(tower).from_config(tower.get_config())
    self.assertEqual(clone.get_config(), tower.get_config())
    fresh = clone(feats, training=False)  # builds the variables
    self.assertNotAllClose(expected, fresh)  # training moved the weights
    clone.load_weights(path).assert_existing_objects_matched()
    self.assertAllClose(expected, clone(feats, training=False), rtol=1e-6,
                        atol=1e-6)

  def test_saved_model_serving_signature(self):
    tower = self.trained().user_tower
    batch = user_batch()
    feats = {f.name: batch[f.name] for f in tower.fields}
    specs = {name: tf.TensorSpec([None] + list(v.shape[1:]), v.dtype, name)
             for name, v in feats.items()}

    @tf.function(input_signature=[specs])
    def serve(features):
      return {"representation": tower(features, training=False)}

    path = os.path.join(self.get_temp_dir(), "saved_tower")
    tf.saved_model.save(tower, path, signatures={"serving_default": serve})
    loaded = tf.saved_model.load(path)
    out = loaded.signatures["serving_default"](**feats)["representation"]
    self.assertAllClose(tower(feats, training=False), out, rtol=1e-5,
                        atol=1e-6)

  def test_exact_u2i_on_encoded_users(self):
    model = self.trained()
    _, _, valid = data()
    queries = encode_users(model, valid.features, "shared")
    shape = self.expected_shape(model.user_tower, len(valid.users))
    self.assertEqual(queries.shape, shape[:-1] + (PROJECTION_DIM,))
    items = encode_items(model, "shared")
    k = 5
    channel = channels.U2IChannel(channels.UserEncoder(model), items, k)
    ids, scores = channel.retrieve(valid.features, valid.histories)
    self.assertEqual(ids.shape, (len(valid.users), k))
    # Brute force: an item's score is its best interest's dot product.
    q = queries if queries.ndim == 3 else queries[:, None, :]
    best = np.einsum("ukd,nd->ukn", q, items).max(axis=1)
    best[:, 0] = -np.inf
    for row, history in enumerate(valid.histories):
      best[row, history] = -np.inf
    self.assertAllClose(np.sort(best, axis=1)[:, ::-1][:, :k], scores,
                        rtol=1e-5, atol=1e-5)
    for row in range(len(ids)):
      self.assertEmpty(np.intersect1d(ids[row], valid.histories[row]))
      self.assertAllClose(best[row, ids[row]], scores[row], rtol=1e-5,
                          atol=1e-5)
