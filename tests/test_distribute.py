"""tf.distribute: strategies, cross-replica negatives, two workers on localhost.

The two-worker test launches ``tests/distribute_worker.py`` twice with a
``TF_CONFIG`` cluster of two workers on 127.0.0.1 (MultiWorkerMirrored,
gRPC). It checks that a global batch of 16 split over the two workers gives
the loss and gradients of the same batch on one worker, that Keras' ``fit``
logs the same numbers, and that training under the strategy writes only
from the chief and resumes after a crash.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import distribute
from mic_tf import training

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import distribute_worker  # noqa: E402  pylint: disable=g-import-not-at-top


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_match_one_worker_and_resume(tmp_path):
  loss, grads, fit_logs = distribute_worker.reference(str(tmp_path))
  cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
  env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="",
             TF_CPP_MIN_LOG_LEVEL="2")
  procs = []
  for index in range(2):
    env["TF_CONFIG"] = json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": index}})
    procs.append(subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "distribute_worker.py"),
         str(tmp_path)], env=dict(env), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True))
  logs = []
  try:
    for p in procs:
      logs.append(p.communicate(timeout=900)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  for p, log in zip(procs, logs):
    assert p.returncode == 0, log[-3000:]

  for index in range(2):
    got = np.load(tmp_path / f"worker{index}.npz")
    np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
    for i, g in enumerate(grads):
      np.testing.assert_allclose(got[f"g{i}"], g, rtol=1e-4,
                                 atol=1e-6 * np.abs(g).max())
  seen = [json.loads((tmp_path / f"worker{i}.json").read_text())
          for i in range(2)]
  assert [s["chief"] for s in seen] == [True, False]
  for s in seen:
    assert s["replicas"] == 2
    # Keras' fit under the strategy logs the one-worker loss and terms
    # (the second step follows an update: the updates matched too).
    assert set(s["fit_logs"]) == set(fit_logs)
    for key, value in fit_logs.items():
      np.testing.assert_allclose(s["fit_logs"][key], value, rtol=1e-4,
                                 atol=1e-6, err_msg=key)
    assert s["crashed"]
    assert s["first_epoch"] == 1  # resumed after the finished epoch 1
    assert s["best_epoch"] in (1, 2)
  assert seen[0]["test_recall"] == seen[1]["test_recall"]
  run = tmp_path / "run"
  assert (run / "metrics.json").exists()
  assert json.loads((run / "metrics.json").read_text())["config"]["training"][
      "strategy"] == "multi_worker"
  assert (run / "checkpoints" / "best.index").exists()
  # Only the chief wrote into the run directory.
  assert not any("worker" in p.name for p in run.rglob("*")
                 if "backup" not in p.parts)


def test_identity_without_a_strategy():
  x = tf.constant([[1.0, 2.0]])
  ids = tf.constant([3])
  assert distribute.gather((x, ids)) == (x, ids)
  assert distribute.replica_share(x) is x
  assert distribute.num_replicas() == 1
  assert distribute.is_chief()
  assert distribute.worker_path("/tmp/a") == "/tmp/a"


def test_make_strategy_default_and_mirrored():
  assert distribute.make_strategy("default") is tf.distribute.get_strategy()
  mirrored = distribute.make_strategy("mirrored")
  assert isinstance(mirrored, tf.distribute.MirroredStrategy)
  assert distribute.is_chief(mirrored)


def test_bad_strategy_and_missing_tf_config(monkeypatch):
  with pytest.raises(ValueError, match="Unknown strategy"):
    distribute.make_strategy("parameter_server")
  with pytest.raises(ValueError, match="strategy must be one of"):
    training.ExperimentConfig.from_settings(strategy="tpu")
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(ValueError, match="needs the TF_CONFIG"):
    distribute.make_strategy("multi_worker")
  monkeypatch.setenv("TF_CONFIG", '{"cluster": {}}')
  with pytest.raises(ValueError, match="TF_CONFIG is not valid"):
    distribute.make_strategy("multi_worker")
