"""End to end on real MovieLens-100k: train, select, evaluate, reload."""

import functools
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import baselines
from mic_tf import errors
from mic_tf import pipeline
from mic_tf import training
from mic_tf.data import protocol
from mic_tf.features import prepare_data
from mic_tf.models.build import build_model
from mic_tf.models.build import build_variables
from mic_tf.models.config import MICConfig



def _config(tmp_path, **kwargs):
  defaults = dict(dataset="ml-100k", epochs=2, batch_size=256, maxlen=10,
                  learning_rate=3e-3,
                  embedding_dim=32, output_dim=32, hidden_units=(64,),
                  max_item_users=10, seed=0, output_dir=str(tmp_path),
                  mic=MICConfig.base(projection_dim=32))
  defaults.update(kwargs)
  return training.ExperimentConfig.from_settings(**defaults)


@pytest.mark.slow
def test_short_real_run_learns_writes_and_reloads(prepared, tmp_path):
  # A seed other than the one `prepared` was built with: reloading must
  # rebuild the very features the run trained on.
  config = _config(tmp_path, seed=1)
  tf.keras.utils.set_random_seed(0)
  untrained = build_model(config, prepared.tables)
  build_variables(untrained, prepared.tables)
  before = training.evaluate_u2i(untrained, prepared.valid)
  results = training.run_experiment(config, prepared, verbose=0)
  # It learned something: far better than the same model untrained.
  assert results["valid"]["recall@50"] > before["recall@50"] + 5.0
  # The reference rows run on the same prepared data.
  popular = baselines.run_baseline("mostpop", prepared)
  assert 0 < popular["test"]["recall@50"] < 100
  with open(os.path.join(tmp_path, "metrics.json")) as f:
    saved = json.load(f)
  assert set(saved["test"]) == {f"{m}@{n}" for m in
                                ("recall", "hr", "ndcg", "ndcg_gt")
                                for n in (20, 50)}
  assert saved["best_epoch"] in (1, 2)
  assert os.path.isdir(os.path.join(tmp_path, "tensorboard"))
  # Reloading the selected checkpoint gives the same test metrics.
  _, _, model = training.load_run(str(tmp_path))  # rebuilds the data
  again = training.evaluate_u2i(model, prepared.test)
  for k, v in saved["test"].items():
    np.testing.assert_allclose(again[k], v, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_mic_run_reports_every_term(prepared, tmp_path):
  config = _config(tmp_path, epochs=1, examples_per_epoch=4096,
                   mic=MICConfig(projection_dim=32, contrastive_batch_size=128))
  results = training.run_experiment(config, prepared, verbose=0)
  model = results["model"]
  names = {m.name for m in model.metrics}
  assert {"basic_loss", "ui_loss", "uu_loss", "ii_loss"} <= names
  assert np.isfinite(results["test"]["recall@50"])


def test_mismatched_prepared_data_are_refused(prepared, tmp_path):
  with pytest.raises(ValueError, match="do not match the config"):
    training.run_experiment(_config(tmp_path, maxlen=7), prepared, verbose=0)


def test_load_run_errors_name_the_problem(tmp_path):
  with pytest.raises(FileNotFoundError, match="not a run directory"):
    training.load_run(str(tmp_path))


def test_config_validation():
  with pytest.raises(ValueError, match="epochs"):
    training.ExperimentConfig.from_settings(epochs=0)
  with pytest.raises(ValueError, match="dropout"):
    training.ExperimentConfig.from_settings(dropout=1.0)
  with pytest.raises(ValueError, match="weight_decay must be >= 0"):
    training.ExperimentConfig.from_settings(weight_decay=-1e-3)
  c = training.ExperimentConfig.from_settings(
      mic=MICConfig(terms=("uu",)).to_dict())
  assert c.mic.terms == ("uu",)
  assert training.ExperimentConfig.from_dict(
      json.loads(json.dumps(c.to_dict()))) == c


class _Crash(tf.keras.callbacks.Callback):

  def on_epoch_begin(self, epoch, logs=None):
    if epoch == 1:
      raise RuntimeError("simulated crash")


class _EpochCounter(tf.keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.epochs = []

  def on_epoch_begin(self, epoch, logs=None):
    self.epochs.append(epoch)


@pytest.mark.slow
def test_crashed_run_resumes_and_keeps_its_best_epoch(prepared, tmp_path):
  config = _config(tmp_path, epochs=3, examples_per_epoch=2048)
  with pytest.raises(RuntimeError, match="simulated crash"):
    training.run_experiment(config, prepared, verbose=0, callbacks=[_Crash()])
  with open(os.path.join(tmp_path, "checkpoints",
                         "best.history.json")) as f:
    before = json.load(f)["history"]
  assert [h["epoch"] for h in before] == [1]
  counter = _EpochCounter()
  resumed = training.run_experiment(config, prepared, verbose=0,
                                    callbacks=[counter])
  assert counter.epochs == [1, 2]  # 0-based: epoch 1 was not trained again
  assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
  assert resumed["history"][0] == before[0]
  # The time of every epoch is kept, those before the crash included.
  assert resumed["resumed"]
  seconds = [h["seconds"] for h in resumed["history"]]
  assert all(x > 0 for x in seconds)
  assert resumed["train_seconds_all_epochs"] == pytest.approx(sum(seconds))
  assert resumed["train_seconds_all_epochs"] > seconds[0]
  assert training.whole_train_seconds(resumed) == pytest.approx(sum(seconds))
  assert "seconds" not in resumed["valid"]
  # A resumed run of an older version, without per-epoch seconds: unknown.
  assert training.whole_train_seconds(
      {"resumed": True, "train_seconds": 5.0,
       "train_seconds_all_epochs": None}) is None
  assert training.whole_train_seconds({"train_seconds": 5.0}) == 5.0


@pytest.mark.slow
def test_crash_between_backup_and_record_loses_no_epoch(prepared, tmp_path,
                                                        monkeypatch):
  # Killed after epoch 2's backup was committed but before its record (the
  # history and best checkpoint) reached the disk.
  config = _config(tmp_path, epochs=3, examples_per_epoch=2048)
  persist = training.EvaluationCallback.persist

  def crash_at_epoch_2(self):
    if max(h["epoch"] for h in self.history) == 2:
      raise RuntimeError("simulated crash")
    persist(self)

  monkeypatch.setattr(training.EvaluationCallback, "persist",
                      crash_at_epoch_2)
  with pytest.raises(RuntimeError, match="simulated crash"):
    training.run_experiment(config, prepared, verbose=0)
  monkeypatch.setattr(training.EvaluationCallback, "persist", persist)
  with open(os.path.join(tmp_path, "checkpoints",
                         "best.history.json")) as f:
    before = json.load(f)["history"]
  assert [h["epoch"] for h in before] == [1]
  counter = _EpochCounter()
  resumed = training.run_experiment(config, prepared, verbose=0,
                                    callbacks=[counter])
  assert counter.epochs == [2]  # epoch 2 was backed up: not trained again
  assert [h["epoch"] for h in resumed["history"]] == [1, 2, 3]
  assert resumed["history"][0] == before[0]
  # Epoch 2 was evaluated from its backed-up weights; its time was lost.
  assert resumed["history"][1]["seconds"] is None
  assert resumed["train_seconds_all_epochs"] is None
  # The selected checkpoint on disk is the epoch the record names.
  _, _, model = training.load_run(str(tmp_path), prepared)
  valid = training.evaluate_u2i(model, prepared.valid)
  assert valid["recall@50"] == pytest.approx(resumed["valid"]["recall@50"])


@pytest.mark.slow
def test_crash_after_the_last_epoch_resumes_with_nothing_to_train(
    prepared, tmp_path, monkeypatch):
  config = _config(tmp_path, epochs=2, examples_per_epoch=2048)
  message = training.kept_epoch_message

  def crash(*args, **kwargs):
    raise RuntimeError("simulated crash")

  monkeypatch.setattr(training, "kept_epoch_message", crash)
  with pytest.raises(RuntimeError, match="simulated crash"):
    training.run_experiment(config, prepared, verbose=0)
  monkeypatch.setattr(training, "kept_epoch_message", message)
  assert not os.path.exists(os.path.join(tmp_path, "metrics.json"))
  with open(os.path.join(tmp_path, "checkpoints",
                         "best.history.json")) as f:
    before = json.load(f)["history"]
  counter = _EpochCounter()
  resumed = training.run_experiment(config, prepared, verbose=0,
                                    callbacks=[counter])
  assert counter.epochs == []
  assert resumed["resumed"] and resumed["history"] == before
  # Complete on disk: the backup is gone, so a rerun starts over.
  assert os.path.exists(os.path.join(tmp_path, "metrics.json"))
  assert not os.path.exists(os.path.join(tmp_path, "backup"))


@pytest.mark.slow
def test_rerun_removes_what_an_interrupted_write_left(prepared, tmp_path):
  stale = os.path.join(tmp_path, "checkpoints", "best_temp")
  os.makedirs(stale)
  with open(os.path.join(stale, "part-00000-of-00001.data-00000-of-00001"),
            "w") as f:
    f.write("half a checkpoint")
  training.run_experiment(_config(tmp_path, epochs=1,
                                  examples_per_epoch=1024), prepared,
                          verbose=0)
  assert not os.path.exists(stale)


@pytest.mark.slow
def test_rerun_in_a_finished_directory_starts_fresh(prepared, tmp_path):
  config = _config(tmp_path, epochs=1, examples_per_epoch=2048)
  training.run_experiment(config, prepared, verbose=0)
  again = training.run_experiment(config, prepared, verbose=0)
  assert [h["epoch"] for h in again["history"]] == [1]


@pytest.mark.slow
def test_early_stopping_keeps_the_best_epoch_and_flags_convergence(
    prepared, tmp_path):
  # A large learning rate on a small stream: validation peaks early.
  config = _config(tmp_path, epochs=12, patience=2, steps_per_epoch=20,
                   learning_rate=3e-2)
  results = training.run_experiment(config, prepared, verbose=0)
  run = results["epochs_run"]
  assert len(results["history"]) == run
  assert results["stopped_early"] and run < 12
  assert run - results["best_epoch"] == 2
  assert results["converged"]
  best = max(h["recall@50"] for h in results["history"])
  assert results["valid"]["recall@50"] == best
  # Capped at the last allowed epoch while still improving: not converged.
  capped = training.run_experiment(
      _config(tmp_path / "capped", epochs=1, patience=2), prepared, verbose=0)
  assert capped["best_epoch"] == 1 and not capped["converged"]


def test_is_converged():
  assert training.is_converged(3, 10) is True
  assert training.is_converged(10, 10) is False
  assert training.is_converged(None, 10) is None
  assert training.is_converged(2, None) is None
  with pytest.raises(ValueError, match="outside 1 .. 3"):
    training.is_converged(4, 3)


def test_kept_epoch_line_says_whether_the_peak_was_confirmed():
  line = functools.partial(training.kept_epoch_message, monitor="recall@50",
                           best=24.33)
  assert line(9, 10, 10, 2, False) == (
      "Kept epoch 9 of 10 run (max 10; valid recall@50 = 24.330): the "
      "--epochs cap ended the run 1 epoch after it, before --patience=2 "
      "confirmed the peak (raise --epochs to confirm it).")
  assert "3 epochs after it" in line(7, 10, 10, 5, False)
  assert line(10, 10, 10, 2, False).endswith(
      ": the last allowed epoch, NOT converged (raise --epochs).")
  assert line(7, 9, 40, 2, True) == (
      "Kept epoch 7 of 9 run (max 40; valid recall@50 = 24.330).")
  # No early stopping asked for: every epoch ran, the best is interior.
  assert line(7, 10, 10, None, False).endswith("= 24.330).")


@pytest.mark.slow
def test_select_on_other_channels_selects_their_mean_and_restores_it(
    prepared, tmp_path):
  from mic_tf.channels.assets import ChannelAssets
  from mic_tf.channels.evaluate import evaluate_channels
  config = _config(tmp_path, epochs=4, patience=2, steps_per_epoch=20,
                   learning_rate=3e-2, select_on=("u2i", "u2u"))
  assert config.selection_metric == "selection"
  results = training.run_experiment(config, prepared, verbose=0)
  history = results["history"]
  for h in history:
    assert h["selection"] == pytest.approx(
        (h["recall@50"] + h["u2u_recall@50"]) / 2)
  # The selected epoch is the best mean, not the best U2I.
  best = max(history, key=lambda h: h["selection"])
  assert results["best_epoch"] == best["epoch"]
  assert results["valid"]["selection"] == best["selection"]
  # The restored weights are that epoch's: U2U of the returned model on the
  # valid users is what the history recorded for it.
  assets = ChannelAssets(results["model"], prepared.tables,
                         prepared.dataset)
  again, _ = evaluate_channels(assets, prepared.valid, ["u2u"])
  assert again["u2u"]["recall@50"] == pytest.approx(
      best["u2u_recall@50"], abs=1e-6)
  with pytest.raises(ValueError, match="select_on must name distinct"):
    _config(tmp_path, select_on=("u2x",))
  with pytest.raises(ValueError, match="select_on must name distinct"):
    _config(tmp_path, select_on=("u2u", "u2u"))
  assert _config(tmp_path).selection_metric == "recall@50"
  assert training.selection_description(("u2i",), (20, 50)) == "recall@50"
  assert training.selection_description(("u2i", "u2u"), (10,)) == (
      "recall@10 (mean of u2i,u2u)")


class ResumeCheckTest(tf.test.TestCase):
  """``_check_resumable``: settings added after a run started."""

  def _stored(self, directory, config, drop=()):
    stored = config.to_dict()
    for key in drop:
      stored["training"].pop(key)
    with open(os.path.join(directory, "config.json"), "w") as f:
      json.dump(stored, f, default=list)

  def test_settings_added_later_take_their_defaults(self):
    config = training.ExperimentConfig.from_settings(dataset="ml-100k")
    directory = self.get_temp_dir()
    self._stored(directory, config,
                 drop=("optimizer", "strategy", "weight_decay"))
    training._check_resumable(config, directory)  # No error.
    other = config.replace_settings(optimizer="lazy_adam")
    with self.assertRaisesRegex(errors.UserError, "optimizer: 'auto' there"):
      training._check_resumable(other, directory)


@pytest.mark.slow
def test_weight_decay_reaches_the_optimizer_and_shrinks_weights(prepared):
  # Same seed, same batches: the decayed model's tower weights end smaller.
  norms = {}
  for decay in (0.0, 20.0):  # 2 % of every weight a step at lr 1e-3
    config = training.ExperimentConfig.from_settings(
        dataset="ml-100k", maxlen=10, max_item_users=10, embedding_dim=16,
        output_dim=16, hidden_units=(16,), weight_decay=decay,
        mic=MICConfig.base(projection_dim=16))
    tf.keras.utils.set_random_seed(0)
    model = build_model(config, prepared.tables)
    assert (model.optimizer.weight_decay or 0.0) == decay
    batches = pipeline.training_dataset(prepared.tables, prepared.dataset,
                                        batch_size=64, seed=0)
    model.fit(batches.take(3), verbose=0)
    norms[decay] = float(tf.linalg.global_norm(
        model.user_tower.trainable_variables))
  assert norms[20.0] < 0.97 * norms[0.0]


def _tower_weights(model):
  return [v.numpy() for part in (model.user_tower, model.item_tower,
                                 model.user_projection, model.item_projection)
          for v in part.trainable_variables]


@pytest.mark.parametrize("init_order", ["lazy", "towers_first"])
def test_towers_first_gives_base_and_mic_the_same_initial_weights(
    prepared, tmp_path, init_order):
  weights = {}
  for name, mic in (("base", MICConfig.base(projection_dim=32)),
                    ("mic", MICConfig.tuned(projection_dim=32))):
    config = _config(tmp_path, mic=mic, init_order=init_order)
    tf.keras.utils.set_random_seed(config.training.seed)
    model = build_model(config, prepared.tables)
    build_variables(model, prepared.tables,
                             towers_first=init_order == "towers_first")
    weights[name] = _tower_weights(model)
  same = [np.array_equal(a, b) for a, b in zip(weights["base"],
                                               weights["mic"])]
  assert len(same) == len(weights["mic"]) > 0
  if init_order == "towers_first":
    assert all(same)
  else:  # MIC's perturbations draw first: this is why the option exists.
    assert not all(same)


def test_init_order_is_checked():
  with pytest.raises(ValueError, match="init_order must be one of"):
    training.ExperimentConfig.from_settings(init_order="eager")


@pytest.mark.slow
def test_a_fraction_of_the_training_users_trains_and_reloads(
    ml100k_protocol, tmp_path):
  full = ml100k_protocol
  config = _config(tmp_path, epochs=1, train_user_fraction=0.25, data_seed=2)
  prepared = prepare_data(config, full)
  kept = prepared.dataset.train_users
  assert len(kept) == int(round(0.25 * len(full.train_users)))
  np.testing.assert_array_equal(prepared.valid.users,
                                prepare_data(
                                    _config(tmp_path), full).valid.users)
  # The items' user bags hold kept training users only (tokens are u + 1).
  bags = prepared.tables.item_table["item_users"]
  assert set(np.unique(bags[bags > 0]) - 1) <= set(kept)
  results = training.run_experiment(config, prepared, verbose=0)
  assert results["config"]["data"]["train_user_fraction"] == 0.25
  # Reloading rebuilds the same subset from the saved config.
  _, again, _ = training.load_run(str(tmp_path))
  np.testing.assert_array_equal(again.dataset.train_users, kept)
  # Data prepared for another fraction are refused, not silently reused.
  with pytest.raises(ValueError, match="keep 0.25 of the training users; "
                     "the config asks for train_user_fraction=1.0"):
    training.run_experiment(_config(tmp_path / "other"), prepared, verbose=0)
