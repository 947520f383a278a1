"""Tests of U2U-teacher distillation: the table, the loss, the teacher lists,
the config and flags, and a short training run."""

import json
import os

import mic_tf  # noqa: F401  (Keras-2 environment first)
import numpy as np
import pytest
import tensorflow as tf

from mic_tf import features as F
from mic_tf import losses as L
from mic_tf import pipeline
from mic_tf import training
from mic_tf.channels.u2u import U2UConfig
from mic_tf.distill import DistillationCallback
from mic_tf.distill import TeacherTable
from mic_tf.distill import teacher_lists
from mic_tf.distill.lists import history_cuts
from mic_tf.models.config import MICConfig
from mic_tf.models.mic_model import MICModel
from mic_tf.testing.synthetic import synthetic_dataset
from mic_tf.towers.dssm import DSSMTower

DIM = 16
DATASET = synthetic_dataset(num_users=150, num_items=60, length=10, seed=0)
TABLES = F.build_feature_tables(DATASET, maxlen=6, max_item_users=6)


def _model(mic):
  tf.keras.utils.set_random_seed(5)
  spec = TABLES.spec
  towers = (DSSMTower(spec.user_fields, DIM, DIM, dropout=0.0,
                      name="user_tower"),
            DSSMTower(spec.item_fields, DIM, DIM, dropout=0.0,
                      name="item_tower"))
  return MICModel(*towers, spec, TABLES.item_table, config=mic,
                  item_counts=TABLES.item_counts)


def _batch(size=16):
  ds = pipeline.training_dataset(TABLES, DATASET, batch_size=size, seed=0)
  return next(iter(ds))


def _softmax_rows(logits, valid):
  """numpy: per-row -log softmax of the diagonal over the valid columns."""
  out = []
  for i in range(len(logits)):
    keep = valid[i].copy()
    keep[i] = True
    row = logits[i][keep]
    m = row.max()
    out.append(m + np.log(np.exp(row - m).sum()) - logits[i, i])
  return np.array(out)


class TeacherTableTest(tf.test.TestCase):

  def test_assign_compacts_lists_and_unknown_users_have_none(self):
    table = TeacherTable(3)
    table.assign([4, 1], [[7, -1, 9, 2], [-1, -1, -1, -1]])
    items, counts = table.lookup(tf.constant([4, 1, 0, 9, -2]))
    self.assertAllEqual(items[0], [7, 9, 2])
    self.assertAllEqual(counts, [3, 0, 0, 0, 0])

  def test_sample_matches_a_numpy_draw(self):
    table = TeacherTable(4)
    lists = np.array([[5, 6, 7, -1], [8, 9, 10, 11], [-1, -1, -1, -1]])
    table.assign([0, 1, 2], lists)
    users = np.array([0, 1, 1, 2, 0, 3])
    u = np.array([0.0, 0.5, 0.99, 0.3, 0.7, 0.2], np.float32)
    ids, has = table.sample(tf.constant(users), tf.constant(u))
    counts = np.array([3, 4, 0, 0])[users]
    want = [lists[users[r]][int(np.floor(u[r] * counts[r]))]
            if counts[r] else 0 for r in range(len(users))]
    self.assertAllEqual(ids, want)
    self.assertAllEqual(has, counts > 0)

  def test_sampling_covers_the_list_uniformly(self):
    table = TeacherTable(4)
    table.assign([0], [[3, 5, 8, 13]])
    ids, _ = table.sample(tf.zeros([8000], tf.int32))
    values, freq = np.unique(ids.numpy(), return_counts=True)
    self.assertAllEqual(values, [3, 5, 8, 13])
    self.assertAllClose(freq / 8000, [0.25] * 4, atol=0.03)

  def test_table_is_not_in_checkpoints_or_weights(self):
    model = _model(MICConfig(projection_dim=DIM, distill_weight=1.0,
                             distill_items=5))
    model.compute_loss(_batch(), training=True)
    names = [v.name for v in model.variables]
    self.assertFalse([n for n in names if "teacher" in n])


class TeacherLossTest(tf.test.TestCase):

  def test_matches_numpy_with_rows_without_teacher_and_known_positives(self):
    rng = np.random.default_rng(0)
    b, d, tau = 6, 4, 0.5
    user = rng.normal(size=(b, d)).astype(np.float32)
    item = rng.normal(size=(b, d)).astype(np.float32)
    ids = np.array([3, 4, 3, 5, 6, 7])
    has = np.array([True, True, True, False, True, True])
    known = np.zeros((b, b), bool)
    known[0, 4] = known[5, 1] = True
    got = L.teacher_loss(tf.constant(user), tf.constant(item),
                         tf.constant(ids), tf.constant(has), tau,
                         tf.constant(known)).numpy()
    un = user / np.linalg.norm(user, axis=1, keepdims=True)
    vn = item / np.linalg.norm(item, axis=1, keepdims=True)
    logits = un @ vn.T / tau
    valid = (~known) & has[None, :] & (ids[:, None] != ids[None, :])
    per_row = _softmax_rows(logits, valid)
    self.assertAllClose(got, per_row[has].mean(), rtol=1e-5)

  def test_no_teacher_anywhere_is_zero(self):
    got = L.teacher_loss(tf.ones([3, 2]), tf.ones([3, 2]),
                         tf.constant([1, 2, 3]), tf.zeros([3], tf.bool))
    self.assertEqual(float(got), 0.0)


class TeacherListsTest(tf.test.TestCase):

  def test_history_cuts(self):
    seqs = [np.arange(10), np.arange(1), np.arange(0), np.arange(4)]
    self.assertAllEqual(history_cuts(seqs, 0.2), [8, 1, 0, 3])
    self.assertAllEqual(history_cuts(seqs, 0.0), [10, 1, 0, 4])

  def _check_lists(self, holdout):
    model = _model(MICConfig.base(projection_dim=DIM))
    model.compute_loss(_batch(), training=True)
    k, n = 8, 5
    u2u = U2UConfig(num_neighbours=n, alpha=0.5, gamma=1.0)
    users, lists, _ = teacher_lists(model, TABLES, DATASET, k, u2u,
                                    holdout=holdout)
    self.assertAllEqual(users, np.sort(DATASET.train_users))
    # numpy reference of the U2U formula (mic_tf.channels.u2u).
    maxlen = TABLES.spec.maxlen
    seqs = [np.asarray(DATASET.sequences[u]) for u in users]
    cuts = [len(s) - int(np.rint(holdout * len(s))) for s in seqs]

    def encode(histories):
      feats = TABLES.user_features(users, np.stack(histories))
      feats = {k_: tf.constant(v) for k_, v in feats.items()}
      space = tf.math.l2_normalize(model.user_representation(feats), -1)
      return space.numpy(), model.user_query(feats).numpy()

    index, _ = encode([F.pad_history(s, len(s), maxlen) for s in seqs])
    space, query = encode([F.pad_history(s, c, maxlen)
                           for s, c in zip(seqs, cuts)])
    items = model.item_candidate(tf.range(TABLES.spec.num_items)).numpy()
    sims = space @ index.T
    compared = 0
    for row, u in enumerate(users):
      seen = set(seqs[row][:cuts[row]].tolist())
      got = [i for i in lists[row] if i > 0]
      self.assertFalse(seen & set(got), f"user {u}")
      nbrs = [v for v in np.argsort(-sims[row], kind="stable")[:n + 1]
              if v != row]
      score = {}
      for v in nbrs:
        for i in set(seqs[v].tolist()) - seen - {0}:
          score[i] = score.get(i, 0.0) + max(sims[row, v], 0.0)
      if not score:
        self.assertEqual(got, [])
        continue
      top = max(score.values())
      blended = {i: 0.5 * s / top + 0.5 * float(query[row] @ items[i])
                 for i, s in score.items()}
      want = sorted(blended, key=lambda i: -blended[i])[:k]
      self.assertEqual(len(got), len(want))
      self.assertAllClose([blended[i] for i in got],
                          [blended[i] for i in want], atol=1e-4)
      compared += 1
    self.assertGreater(compared, len(users) // 2)
    return users, lists, cuts, seqs

  def test_lists_exclude_the_whole_history_and_match_a_numpy_u2u(self):
    self._check_lists(0.0)

  def test_holdout_lists_match_a_numpy_u2u_and_may_hold_later_items(self):
    _, lists, cuts, seqs = self._check_lists(0.3)
    later = sum(len(set(l.tolist()) & set(s[c:].tolist()))
                for l, s, c in zip(lists, seqs, cuts))
    self.assertGreater(later, 0)

  def test_callback_waits_for_the_start_epoch(self):
    model = _model(MICConfig.base(projection_dim=DIM, distill_weight=1.0,
                                  distill_items=4, distill_start_epoch=2))
    model.compute_loss(_batch(), training=True)
    callback = DistillationCallback(TABLES, DATASET, verbose=False,
                                    every_steps=3)
    callback.set_model(model)
    callback.on_train_begin()
    for epoch in range(4):
      callback.on_epoch_begin(epoch)
      for step in range(2):
        callback.on_train_batch_end(step)
    got = [(t["epoch"], t["step"]) for t in callback.timings]
    self.assertEqual(got, [(2, 4), (2, 6), (3, 6)])
    self.assertEqual(model.distill_teacher.refreshes, 3)

  def test_callback_needs_a_distilling_model(self):
    with self.assertRaisesRegex(ValueError, "distill_weight > 0"):
      DistillationCallback(TABLES, DATASET).set_model(
          _model(MICConfig.base(projection_dim=DIM)))


class ModelTest(tf.test.TestCase):

  def test_unrefreshed_teacher_adds_nothing(self):
    batch = _batch()
    base = _model(MICConfig(projection_dim=DIM))
    base.compute_loss(batch, training=True)
    want = base.compute_loss(batch, training=True).numpy()
    distill = _model(MICConfig(projection_dim=DIM, distill_weight=1.0))
    distill.compute_loss(batch, training=True)
    self.assertAllClose(distill.compute_loss(batch, training=True), want,
                        rtol=1e-6)

  def test_refreshed_teacher_adds_weight_times_its_term(self):
    batch = _batch()
    losses, terms = {}, {}
    for w in (1.0, 3.0):
      model = _model(MICConfig.base(projection_dim=DIM, distill_weight=w))
      model.compute_loss(batch, training=True)
      users, lists, _ = teacher_lists(model, TABLES, DATASET, 5)
      model.distill_teacher.assign(users, lists)
      model.reset_metrics()
      tf.random.set_seed(1)  # the same teacher draws for both weights
      losses[w] = float(model.compute_loss(batch, training=True))
      terms[w] = float(model._trackers["distill"].result())  # pylint: disable=protected-access
    self.assertGreater(terms[1.0], 0.0)
    self.assertAllClose(terms[3.0], terms[1.0], rtol=1e-5)
    # total = basic + w * term: the same basic loss for both weights.
    self.assertAllClose(losses[3.0] - losses[1.0], 2.0 * terms[1.0],
                        rtol=1e-4)

  def test_off_means_no_table_and_no_metric(self):
    model = _model(MICConfig(projection_dim=DIM))
    self.assertIsNone(model.distill_teacher)
    self.assertNotIn("distill", model._trackers)  # pylint: disable=protected-access


class ConfigTest(tf.test.TestCase):

  def test_defaults_are_off_and_json_round_trips(self):
    self.assertEqual(MICConfig().distill_weight, 0.0)
    self.assertFalse(MICConfig().distill)
    c = MICConfig.tuned(distill_weight=0.5, distill_items=20)
    self.assertEqual(MICConfig.from_dict(json.loads(c.to_json())), c)

  def test_bad_values_give_one_line_errors(self):
    for kwargs, pattern in (({"distill_weight": -1.0}, "distill_weight"),
                            ({"distill_weight": float("nan")},
                             "distill_weight"),
                            ({"distill_items": 0}, "distill_items"),
                            ({"distill_holdout": 1.0}, "distill_holdout"),
                            ({"distill_start_epoch": -1},
                             "distill_start_epoch")):
      with self.assertRaisesRegex(ValueError, pattern) as ctx:
        MICConfig(**kwargs)
      self.assertNotIn("\n", str(ctx.exception))


@pytest.mark.slow
def test_short_run_trains_refreshes_and_reloads(prepared, tmp_path):
  out = str(tmp_path / "run")
  config = training.ExperimentConfig.from_settings(
      dataset="ml-100k", maxlen=10, max_item_users=10, tower="dssm",
      epochs=2, batch_size=256, embedding_dim=16, output_dim=16,
      hidden_units=(32,), examples_per_epoch=2048, eval_batch_size=512,
      seed=0, output_dir=out,
      mic=MICConfig(terms=("ui", "uu", "ii"), projection_dim=16,
                    contrastive_batch_size=64, distill_weight=1.0,
                    distill_items=10, distill_holdout=0.2))
  results = training.run_experiment(config, prepared, verbose=0)
  model = results["model"]
  assert model.distill_teacher.refreshes == 2  # one per epoch
  items, counts = model.distill_teacher.lookup(
      tf.constant(prepared.dataset.train_users[:20]))
  assert (counts.numpy() == 10).all()
  test_users = prepared.dataset.test_users[:20]
  _, cold = model.distill_teacher.lookup(tf.constant(test_users))
  assert (cold.numpy() == 0).all()
  for row, u in enumerate(prepared.dataset.train_users[:20]):
    seq = np.asarray(prepared.dataset.sequences[u])
    seen = seq[:len(seq) - int(np.rint(0.2 * len(seq)))]
    assert not set(items[row].numpy()) & set(seen)
  assert np.isfinite(results["valid"]["recall@50"])
  _, _, loaded = training.load_run(out)
  assert loaded.distill_teacher is not None
  assert os.path.exists(os.path.join(out, "metrics.json"))


class _CrashAtEpochOne(tf.keras.callbacks.Callback):

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == 1:
      raise RuntimeError("simulated crash")


@pytest.mark.slow
def test_crashed_distilling_run_resumes_and_refreshes_first(prepared,
                                                            tmp_path):
  config = training.ExperimentConfig.from_settings(
      dataset="ml-100k", maxlen=10, max_item_users=10, tower="dssm",
      epochs=2, batch_size=256, embedding_dim=16, output_dim=16,
      hidden_units=(32,), examples_per_epoch=1024, eval_batch_size=512,
      seed=0, output_dir=str(tmp_path),
      mic=MICConfig.base(projection_dim=16, distill_weight=1.0,
                         distill_items=10))
  with pytest.raises(RuntimeError, match="simulated crash"):
    training.run_experiment(config, prepared, verbose=0,
                            callbacks=[_CrashAtEpochOne()])
  resumed = training.run_experiment(config, prepared, verbose=0)
  assert resumed["resumed"]
  assert [h["epoch"] for h in resumed["history"]] == [1, 2]
  # The untracked table came back empty and was refreshed before epoch 2.
  assert resumed["model"].distill_teacher.refreshes == 1
  assert np.isfinite(resumed["history"][-1]["recall@50"])
