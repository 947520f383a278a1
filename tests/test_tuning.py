"""The tuner: settings applied, trials written, pruning, resume, test once.

The search's bookkeeping (trial records, seeded draws, resuming, pruning,
re-scoring, selection, the one test evaluation) is tested with a stub
trainer (``stub_trainer``): each run's validation score is a made-up but
fixed function of its settings and seed, so a study of many trials takes
milliseconds. ``test_tune_binary_runs_end_to_end`` runs one real study,
trained on ML-100k, through the binary.
"""

import dataclasses
import hashlib
import json
import os
import types

import pytest

import mic_tf  # noqa: F401
from mic_tf import training
from mic_tf import tuning
from mic_tf.models.config import MICConfig

#: Stands in for prepared data: the stub trainer never reads it.
_PREPARED = types.SimpleNamespace(test="test users")


def _score(config):
  """A made-up valid score in [10, 30): fixed by the settings and seed."""
  settings = config.to_dict()
  settings.pop("output_dir")
  text = json.dumps(settings, sort_keys=True, default=str)
  return 10 + 20 * int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / (
      2 ** 32)


@pytest.fixture
def stub_trainer(monkeypatch):
  """Replaces training's run, reload and test evaluation with stand-ins.

  A run reports ``_score(config) - 0.5 * (epochs left)`` after each epoch
  to the callbacks (so the tuner's reporter and Optuna's pruner see a
  rising curve), stops when a callback asks, and writes its config and an
  empty checkpoint index, as a run directory has. Reloading returns the
  run's config with a stand-in model; the test evaluation of that model
  scores ``_score - 1``. Returns the calls made, by kind.
  """
  calls = {"run": [], "test": []}

  def run_experiment(config, prepared=None, verbose=0, callbacks=(),
                     evaluate_test=True, **kwargs):
    del prepared, verbose, kwargs
    calls["run"].append((config, evaluate_test))
    model = types.SimpleNamespace(stop_training=False)
    monitor = config.evaluation.selection_metric
    values = []
    for epoch in range(config.training.epochs):
      values.append(_score(config) - 0.5 * (config.training.epochs - 1 - epoch))
      for callback in callbacks:
        callback.set_model(model)
        callback.on_epoch_end(epoch, {f"val_{monitor}": values[-1]})
      if model.stop_training:
        break
    os.makedirs(os.path.join(config.output_dir, "checkpoints"),
                exist_ok=True)
    with open(os.path.join(config.output_dir, "config.json"), "w") as f:
      json.dump(config.to_dict(), f, default=str)
    open(os.path.join(config.output_dir, "checkpoints", "best.index"),
         "w").close()
    best = max(range(len(values)), key=values.__getitem__)
    return {"model": model, "best_epoch": best + 1,
            "epochs_run": len(values),
            "valid": {monitor: values[best], "recall@20": values[best] / 2},
            "test": None}

  def load_run(output_dir, prepared=None):
    with open(os.path.join(output_dir, "config.json")) as f:
      config = training.ExperimentConfig.from_dict(json.load(f))
    return config, prepared, types.SimpleNamespace(config=config)

  def evaluate_u2i(model, users, cutoffs=(20, 50), exclude_history=True,
                   batch_size=1024):
    del exclude_history, batch_size
    calls["test"].append(users)
    return {f"recall@{k}": _score(model.config) - 1 for k in cutoffs}

  monkeypatch.setattr(training, "run_experiment", run_experiment)
  monkeypatch.setattr(training, "load_run", load_run)
  monkeypatch.setattr(training, "evaluate_u2i", evaluate_u2i)
  return calls


def _base(**kwargs):
  defaults = dict(dataset="ml-100k", epochs=2, patience=1, batch_size=512,
                  maxlen=10, learning_rate=3e-3, embedding_dim=16,
                  output_dim=16, hidden_units=(16,), max_item_users=10,
                  examples_per_epoch=4096,
                  mic=MICConfig(projection_dim=16, contrastive_batch_size=64))
  defaults.update(kwargs)
  return training.ExperimentConfig.from_settings(**defaults)


def test_apply_params_routes_each_name():
  config = tuning.apply_params(_base(), {
      "lambda_": 0.9, "w_ii": 0.25, "tau_ii": 0.5, "learning_rate": 1e-2,
      "num_views": 1})
  assert config.mic.lambda_ == 0.9
  assert config.mic.weights["ii"] == 0.25
  assert config.mic.weights["ui"] == 1.0
  assert config.mic.temperature_of("ii") == 0.5
  assert config.mic.temperature_of("ui") == config.mic.temperature
  assert config.training.learning_rate == 1e-2
  assert config.mic.num_views == 1
  with pytest.raises(ValueError, match="not a searchable setting"):
    tuning.apply_params(_base(), {"lamda": 0.5})
  with pytest.raises(ValueError, match="lambda_ must be in"):
    tuning.apply_params(_base(), {"lambda_": 1.5})


def test_dimensions_draw_from_their_distribution_and_reject_bad_bounds():
  optuna = pytest.importorskip("optuna")
  space = {"lr": tuning.log_uniform(1e-4, 1e-2),
           "dropout": tuning.uniform(0.0, 0.5),
           "layers": tuning.Dimension("int", 1, 3),
           "loss": tuning.one_of("softmax", "logistic")}
  study = optuna.create_study(
      sampler=optuna.samplers.RandomSampler(seed=0))
  for _ in range(5):
    trial = study.ask()
    params = {name: dim.suggest(trial, name) for name, dim in space.items()}
    for name, dim in space.items():
      assert trial.distributions[name] == dim.distribution()
    assert 1e-4 <= params["lr"] <= 1e-2
    assert 0.0 <= params["dropout"] <= 0.5
    assert params["layers"] in (1, 2, 3)
    assert params["loss"] in ("softmax", "logistic")
  with pytest.raises(ValueError, match="Unknown dimension kind 'floats'"):
    tuning.Dimension("floats", 0.0, 1.0)
  with pytest.raises(ValueError, match="is above high"):
    tuning.uniform(1.0, 0.5)
  with pytest.raises(ValueError, match="at least one choice"):
    tuning.one_of()


def test_study_writes_trials_resumes_and_scores_test_once(stub_trainer,
                                                          tmp_path):
  space = {"lambda_": tuning.uniform(0.6, 0.95),
           "num_views": tuning.one_of(1, 2)}
  seen = []
  study_dir = str(tmp_path / "study")
  tuning.run_study(_base(), space, study_dir, num_trials=2, seed=3,
                   prepared=_PREPARED, startup_trials=2,
                   on_trial=seen.append)
  assert [r["number"] for r in seen] == [0, 1]
  for r in seen:
    assert 0.6 <= r["params"]["lambda_"] <= 0.95
    assert r["value"] == r["valid"]["recall@50"] > 0
    assert r["valid_by_epoch"] == [r["value"] - 0.5, r["value"]]
    assert "test" not in r  # the search never looks at test users
    with open(os.path.join(study_dir, "trials", f"{r['number']:03d}.json")
              ) as f:
      assert json.load(f)["params"] == r["params"]
    # Each trial trained with its own settings, in its own run directory.
    assert r["config"] == tuning.apply_params(_base(), r["params"]).to_dict(
        ) | {"output_dir": os.path.join(study_dir, "trials",
                                        f"{r['number']:03d}")}
  # Same seed, same first draws: the sampler is seeded.
  again = []
  tuning.run_study(_base(), space, str(tmp_path / "other"), num_trials=1,
                   seed=3, prepared=_PREPARED, startup_trials=2,
                   on_trial=again.append)
  assert again[0]["params"] == seen[0]["params"]
  # Resuming with a larger budget runs only the missing trial.
  more = []
  tuning.run_study(_base(), space, study_dir, num_trials=3, seed=3,
                   prepared=_PREPARED, startup_trials=2, on_trial=more.append)
  assert [r["number"] for r in more] == [2]
  assert all(not evaluate_test for _, evaluate_test in stub_trainer["run"])
  assert not stub_trainer["test"]
  # The test users are scored once, with the selected trial's run.
  best = tuning.evaluate_best(study_dir, _PREPARED)
  values = {r["number"]: r["value"] for r in seen + more}
  selected = max(values, key=values.get)
  assert best["selected_trial"] == selected
  assert stub_trainer["test"] == [_PREPARED.test]
  assert best["test"] == {"recall@20": values[selected] - 1,
                          "recall@50": values[selected] - 1}
  assert "retrained" not in best
  with open(os.path.join(study_dir, "best.json")) as f:
    assert json.load(f)["selected_trial"] == selected


def test_trials_that_fall_behind_are_pruned_and_never_selected(
    stub_trainer, tmp_path):
  space = {"lambda_": tuning.uniform(0.5, 0.95),
           "temperature": tuning.log_uniform(0.05, 0.5)}
  seen = []
  tuning.run_study(_base(epochs=4), space, str(tmp_path), num_trials=12,
                   seed=0, prepared=_PREPARED, startup_trials=2,
                   on_trial=seen.append)
  pruned = [r for r in seen if r["state"] == "pruned"]
  assert pruned, "a trial below the median after an epoch is pruned"
  for r in pruned:
    # Stopped after the epoch it fell behind at; scored on what it ran.
    assert r["pruned_at_epoch"] == len(r["valid_by_epoch"]) < 4
    assert r["epochs_run"] == r["pruned_at_epoch"]
    assert r["value"] == max(r["valid_by_epoch"])
  complete = [r for r in seen if r["state"] == "complete"]
  assert all(r["epochs_run"] == 4 for r in complete)
  assert tuning.best_trial_record(str(tmp_path))["number"] == max(
      complete, key=lambda r: r["value"])["number"]


def test_a_resumed_study_does_not_draw_its_first_trials_again(stub_trainer,
                                                            tmp_path):
  # Every trial random (startup_trials > trials), one trial a run: without
  # reseeding, the resumed sampler would repeat trial 0's draw.
  space = {"lambda_": tuning.uniform(0.6, 0.95),
           "temperature": tuning.log_uniform(0.05, 0.5)}
  seen = []
  for n in (1, 2):
    tuning.run_study(_base(epochs=1), space, str(tmp_path), num_trials=n,
                     seed=0, prepared=_PREPARED, startup_trials=10,
                     on_trial=seen.append)
  assert [r["number"] for r in seen] == [0, 1]
  assert seen[1]["params"] != seen[0]["params"]
  # A new study keeps its seed even with its first trial enqueued: its
  # first draw is the unqueued study's first (searches recorded before the
  # reseeding repeat exactly).
  queued = []
  tuning.run_study(_base(epochs=1), space, str(tmp_path / "queued"),
                   num_trials=2, seed=0, prepared=_PREPARED,
                   startup_trials=10, on_trial=queued.append,
                   enqueue_base=True)
  assert queued[1]["params"] == seen[0]["params"]


@pytest.mark.slow
def test_tune_binary_runs_end_to_end(ml100k, tmp_path):
  del ml100k  # fetched into the cache by the fixture
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = os.path.join(os.path.dirname(__file__), "..")
  out = subprocess.run(
      [sys.executable, os.path.join(root, "experiments", "tune.py"),
       "--dataset=ml-100k", "--mic_terms=ii", "--space=mic",
       "--num_trials=1", "--epochs=1", "--steps_per_epoch=3",
       "--batch_size=256", "--maxlen=5", "--embedding_dim=8",
       "--output_dim=8", "--hidden_units=8", "--projection_dim=8",
       "--rescore_top=1", "--rescore_seeds=1", "--select_on=u2i,u2u",
       f"--study_dir={tmp_path}"],
      capture_output=True, text=True, timeout=300,
      env={**os.environ, "PYTHONPATH": root})
  assert out.returncode == 0, out.stderr[-2000:]
  # Trials are ranked on (and named by) the --select_on score.
  assert ("trial 0 complete: valid recall@50 (mean of u2i,u2u)"
          in out.stdout)
  assert "selected trial 0: valid recall@50 (mean of u2i,u2u)" in out.stdout
  assert "mean over seeds [0, 1]" in out.stdout
  assert "test (evaluated once)" in out.stdout
  # The selected trial as flags: all 14 searched MIC settings.
  line, = [l for l in out.stdout.splitlines() if l.startswith("flags: ")]
  assert "--mic_lambda=" in line and "--w_ii=" in line
  assert len(line.split()) == 1 + 14


def _write_trial(study_dir, number, value, state="complete"):
  os.makedirs(os.path.join(study_dir, "trials"), exist_ok=True)
  with open(os.path.join(study_dir, "trials", f"{number:03d}.json"), "w") as f:
    json.dump({"number": number, "state": state, "value": value,
               "params": {"lambda_": 0.5 + number / 10}}, f)


def _write_rescore(study_dir, number, by_seed):
  os.makedirs(os.path.join(study_dir, "rescore"), exist_ok=True)
  with open(os.path.join(study_dir, "rescore", f"{number:03d}.json"),
            "w") as f:
    json.dump({"number": number, "valid_by_seed": by_seed,
               "mean": sum(by_seed.values()) / len(by_seed),
               "seeds": sorted(int(k) for k in by_seed)}, f)


def test_best_trial_record_selects_on_the_rescored_mean(tmp_path):
  study_dir = str(tmp_path)
  _write_trial(study_dir, 0, 25.0)
  _write_trial(study_dir, 1, 24.0)
  _write_trial(study_dir, 2, 26.0, state="pruned")
  _write_trial(study_dir, 3, 20.0)
  # On the search seed alone trial 0 wins (pruned trials never do).
  assert tuning.best_trial_record(study_dir)["number"] == 0
  assert "rescore" not in tuning.best_trial_record(study_dir)
  # Re-scored, trial 0 was a lucky seed: trial 1 has the better mean, and
  # trial 3 (not re-scored) is no longer a candidate.
  _write_rescore(study_dir, 0, {"0": 25.0, "1": 23.0, "2": 23.5})
  _write_rescore(study_dir, 1, {"0": 24.0, "1": 24.2, "2": 24.1})
  best = tuning.best_trial_record(study_dir)
  assert best["number"] == 1
  assert best["rescore"]["mean"] == pytest.approx(24.1)
  # A trial that finishes later among the two best on the search seed must
  # be re-scored before anything is selected.
  _write_trial(study_dir, 4, 24.5)
  with pytest.raises(ValueError, match=r"Trial\(s\) \[4\] finished after"):
    tuning.best_trial_record(study_dir)
  _write_rescore(study_dir, 4, {"0": 24.5, "1": 23.5, "2": 23.6})
  assert tuning.best_trial_record(study_dir)["number"] == 1


def test_rescore_trains_extra_seeds_resumes_and_rejects_bad_input(
    stub_trainer, tmp_path, monkeypatch):
  study_dir = str(tmp_path / "study")
  with pytest.raises(ValueError, match="holds no study"):
    tuning.rescore_top_trials(study_dir, 1, [1], prepared=_PREPARED)
  tuning.run_study(_base(), {"lambda_": tuning.uniform(0.6, 0.95)},
                   study_dir, num_trials=2, seed=5, prepared=_PREPARED,
                   startup_trials=2)
  with pytest.raises(ValueError, match="re-score at least one"):
    tuning.rescore_top_trials(study_dir, 0, [1], prepared=_PREPARED)
  with pytest.raises(ValueError, match="distinct extra seeds"):
    tuning.rescore_top_trials(study_dir, 1, [], prepared=_PREPARED)
  with pytest.raises(ValueError, match="search's own seed"):
    tuning.rescore_top_trials(study_dir, 1, [0], prepared=_PREPARED)
  records = tuning.rescore_top_trials(study_dir, 2, [1], prepared=_PREPARED)
  trials = {}
  for name in os.listdir(os.path.join(study_dir, "trials")):
    if name.endswith(".json"):
      with open(os.path.join(study_dir, "trials", name)) as f:
        r = json.load(f)
      trials[r["number"]] = r
  assert sorted(r["number"] for r in records) == [0, 1]
  for r in records:
    assert r["seeds"] == [0, 1]
    # The search seed's score is the trial's own; seed 1 is a new run.
    assert r["valid_by_seed"]["0"] == trials[r["number"]]["value"]
    assert r["valid_by_seed"]["1"] == _score(
        training.ExperimentConfig.from_dict(
            trials[r["number"]]["config"]).replace_settings(seed=1))
    assert r["mean"] == pytest.approx(
        (r["valid_by_seed"]["0"] + r["valid_by_seed"]["1"]) / 2)
    assert os.path.isdir(os.path.join(study_dir, "rescore",
                                      f"{r['number']:03d}_s1"))
  best = tuning.best_trial_record(study_dir)
  assert best["number"] == max(records, key=lambda r: r["mean"])["number"]
  # Resuming trains nothing that was already scored.
  def fail(*args, **kwargs):
    raise AssertionError("a scored seed was trained again")
  monkeypatch.setattr(training, "run_experiment", fail)
  again = tuning.rescore_top_trials(study_dir, 2, [1], prepared=_PREPARED)
  assert again == records
  assert tuning.evaluate_best(study_dir, _PREPARED)["rescore"] == best[
      "rescore"]


def test_current_params_inverts_apply_params_and_seeds_the_study(
    stub_trainer, tmp_path):
  base = _base(mic=MICConfig.tuned())
  params = tuning.current_params(base, tuning.MIC_SPACE)
  assert set(params) == set(tuning.MIC_SPACE)
  assert params["lambda_"] == base.mic.lambda_
  assert params["w_ii"] == base.mic.weights["ii"]
  assert params["tau_ii"] == base.mic.temperature_of("ii")
  assert tuning.apply_params(base, params).to_dict() == base.to_dict()
  base_params = tuning.current_params(base, tuning.BASE_SPACE)
  assert base_params["learning_rate"] == base.training.learning_rate
  assert base_params["dropout"] == base.model.dropout
  assert tuning.apply_params(base, {"dropout": 0.35}).model.dropout == 0.35
  assert tuning.apply_params(
      base, {"weight_decay": 0.01}).training.weight_decay == 0.01
  decayed = base.replace_settings(weight_decay=1e-3)
  wd_params = tuning.current_params(decayed, tuning.BASE_WD_SPACE)
  assert wd_params["weight_decay"] == 1e-3
  assert set(wd_params) == set(tuning.BASE_SPACE) | {"weight_decay"}
  # The undecayed default is a candidate, so --enqueue_base can start there.
  assert tuning.current_params(base, tuning.BASE_WD_SPACE)[
      "weight_decay"] == 0.0
  with pytest.raises(ValueError, match="weight_decay=0.005 is outside"):
    tuning.current_params(base.replace_settings(weight_decay=0.005),
                          tuning.BASE_WD_SPACE)
  with pytest.raises(ValueError, match="outside the searched range"):
    tuning.current_params(_base(mic=MICConfig(lambda_=0.3)),
                          {"lambda_": tuning.uniform(0.5, 0.95)})
  with pytest.raises(ValueError, match="not a searchable setting"):
    tuning.current_params(base, {"lamda": tuning.uniform(0.5, 0.95)})
  # A new study's first trial is the starting point; a resumed one is not
  # seeded again.
  space = {"lambda_": tuning.uniform(0.5, 0.95),
           "num_views": tuning.one_of(1, 2)}
  start = _base(mic=MICConfig(projection_dim=16, contrastive_batch_size=64,
                              lambda_=0.85, num_views=1))
  seen = []
  study_dir = str(tmp_path / "seeded")
  tuning.run_study(start, space, study_dir, num_trials=1, prepared=_PREPARED,
                   enqueue_base=True, on_trial=seen.append)
  assert seen[0]["params"] == {"lambda_": 0.85, "num_views": 1}
  tuning.run_study(start, space, study_dir, num_trials=2, prepared=_PREPARED,
                   enqueue_base=True, on_trial=seen.append)
  assert seen[1]["params"] != seen[0]["params"]


def test_a_study_is_rebuilt_from_its_records_alone(stub_trainer, tmp_path):
  """Committed trial JSON, without study.db or run dirs, resume a search."""
  import shutil  # pylint: disable=g-import-not-at-top
  space = {"lambda_": tuning.uniform(0.6, 0.95),
           "num_views": tuning.one_of(1, 2)}
  base = _base(epochs=1)
  first = str(tmp_path / "first")
  seen = []
  tuning.run_study(base, space, first, num_trials=2, seed=3,
                   prepared=_PREPARED, startup_trials=2, on_trial=seen.append)
  # Another machine gets trial 1's record only (trial 0 was cut off
  # there): trial 0's number stays taken, by a failed trial.
  moved = tmp_path / "moved"
  os.makedirs(moved / "trials")
  shutil.copy(os.path.join(first, "trials", "001.json"), moved / "trials")
  with pytest.raises(ValueError, match=r"other settings than this search "
                     r"\(learning_rate\): pass the flags"):
    tuning.run_study(_base(epochs=1, learning_rate=1e-3), space, str(moved),
                     num_trials=2, prepared=_PREPARED, startup_trials=2)
  with pytest.raises(ValueError, match="use the same --space"):
    tuning.run_study(base, {"lambda_": space["lambda_"]}, str(moved),
                     num_trials=2, prepared=_PREPARED, startup_trials=2)
  more = []
  study = tuning.run_study(base, space, str(moved), num_trials=2,
                           prepared=_PREPARED, startup_trials=2,
                           on_trial=more.append)
  assert [r["number"] for r in more] == [2]  # after the last record
  trials = study.get_trials(deepcopy=False)
  assert trials[0].state.name == "FAIL"
  assert trials[1].params == seen[1]["params"]
  assert trials[1].value == pytest.approx(seen[1]["value"])
  assert list(trials[1].intermediate_values.values()) == pytest.approx(
      seen[1]["valid_by_epoch"])
  # A database that lags behind the records would overwrite them: refused.
  shutil.copy(moved / "trials" / "002.json", os.path.join(first, "trials"))
  with pytest.raises(ValueError, match="move study.db away"):
    tuning.run_study(base, space, first, num_trials=3, prepared=_PREPARED,
                     startup_trials=2)
  # The selected trial has no run here: it is trained again, and said so.
  shutil.rmtree(moved / "trials" / "002")
  best = tuning.evaluate_best(str(moved), _PREPARED)
  values = {1: seen[1]["value"], 2: more[0]["value"]}
  assert best["selected_trial"] == max(values, key=values.get)
  selected = best["selected_trial"]
  assert best["retrained"]["valid"]["recall@50"] == values[selected]
  assert best["test"]["recall@50"] == values[selected] - 1
  assert best["retrained"]["valid"]["recall@50"] > 0
  assert set(best["test"]) >= {"recall@50"}


def test_tune_binary_offers_every_space():
  # experiments/tune.py names the spaces without importing mic_tf.tuning
  # (TensorFlow must wait for its start-up settings).
  import importlib.util  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  own = ("study_dir", "num_trials", "tune_seed", "startup_trials", "space",
         "enqueue_base", "rescore_top", "rescore_seeds", "evaluate_best")

  def drop():
    for name in own:
      if name in flags.FLAGS:
        delattr(flags.FLAGS, name)

  path = os.path.join(os.path.dirname(__file__), "..", "experiments",
                      "tune.py")
  spec = importlib.util.spec_from_file_location("tune_spaces_binary", path)
  binary = importlib.util.module_from_spec(spec)
  drop()
  try:
    spec.loader.exec_module(binary)
    assert binary.SPACES == tuple(sorted(tuning.SPACES))
  finally:
    drop()
