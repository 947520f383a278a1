"""Same seed, same numbers; the main job's table repeats; runs are recorded."""

import concurrent.futures
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

import mic_tf  # noqa: F401
from mic_tf import run_record
from mic_tf import training
from mic_tf.models.config import MICConfig

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(prepared, output_dir, seed):  # output_dir None: nothing on disk
  # A MIC term on: the seed must also fix the masks and dropout of the views
  # (one term keeps the traced graph, and the test, small).
  config = training.ExperimentConfig.from_settings(
      dataset="ml-100k", epochs=1, batch_size=256, maxlen=10,
      embedding_dim=16, output_dim=16, hidden_units=(32,), max_item_users=10,
      examples_per_epoch=1024, seed=seed,
      output_dir=str(output_dir) if output_dir else None,
      mic=MICConfig(terms=("uu",), projection_dim=16,
                    contrastive_batch_size=64))
  results = training.run_experiment(config, prepared, verbose=0)
  results.pop("model")
  return results


@pytest.mark.slow
def test_same_seed_same_numbers_other_seed_other_numbers(prepared, tmp_path):
  a = _run(prepared, tmp_path / "a", seed=0)
  b = _run(prepared, None, seed=0)
  c = _run(prepared, None, seed=1)
  assert a["valid"] == b["valid"] and a["test"] == b["test"]
  # Every metric of every epoch repeats; wall seconds are not a result.
  drop = lambda history: [{k: v for k, v in h.items()
                           if k != training.HISTORY_SECONDS}
                          for h in history]
  assert drop(a["history"]) == drop(b["history"])
  assert a["test"] != c["test"]
  # The run records what reproduces it.
  with open(tmp_path / "a" / run_record.FILENAME) as f:
    record = json.load(f)
  assert record["config"]["training"]["seed"] == 0
  assert record["config"]["mic"]["contrastive_batch_size"] == 64
  for package in ("tensorflow", "tf-keras", "tensorflow-recommenders",
                  "scann", "numpy"):
    assert record["packages"][package], package
  files = record["data"]["files"]
  assert sorted(os.path.basename(p) for p in files) == [
      "ml-100k.inter", "ml-100k.item", "ml-100k.user"]
  for path, sha in files.items():  # the pinned hashes are the real ones
    with open(path, "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest() == sha
  hardware = record["hardware"]
  assert hardware["cpu_cores"] >= 1 and "gpus" in hardware
  assert "cpu_isa" in hardware and "onednn_opts" in record["numerics"]
  if (_ROOT / ".git").exists():
    assert re.fullmatch(r"[0-9a-f]{40}", record["code"]["commit"])
    assert isinstance(record["code"]["dirty"], bool)


def test_record_hashes_files_the_user_names(tmp_path):
  path = tmp_path / "interactions.csv"
  path.write_text("user,item,timestamp\n1,2,3\n")
  data = run_record.data_checksums("custom", None, {"path": str(path)})
  assert data["files"] == {
      str(path): hashlib.sha256(path.read_bytes()).hexdigest()}


def _main_job_flags():
  """The flags experiments/run_main.sh passes to experiments/main.py."""
  script = (_ROOT / "experiments" / "run_main.sh").read_text()
  command = script[script.index(".venv/bin/python experiments/main.py"):]
  command = command[:command.index('"$@"')]
  return [f for f in re.findall(r"--[a-z_]+=[^\s\"\\]+|--[a-z_]+(?=\s)",
                                command)
          if not f.startswith("--output_dir")]


@pytest.mark.slow
def test_main_job_prints_the_same_table_twice(tmp_path):
  """Two invocations of the main job's command print one table.

  The main job itself (ML-1M, minutes) is too long for the suite: this runs
  its exact flags on ML-100k with one short epoch, in two processes side by
  side; the second with ``--threads=1`` (how two runs share a 2-core
  machine), which must not change a number.
  """
  flags = _main_job_flags()
  assert "--dataset=ml-1m" in flags and "--mic_preset=tuned" in flags
  assert "--deterministic" in flags
  short = ["--dataset=ml-100k", "--epochs=1", "--examples_per_epoch=4096"]
  env = dict(os.environ, PYTHONPATH=str(_ROOT))
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)

  def invocation(name):
    threads = ["--threads=1"] if name == "b" else []
    return subprocess.run(
        [sys.executable, str(_ROOT / "experiments" / "main.py"), *flags,
         *short, *threads, f"--output_dir={tmp_path / name}"], env=env,
        capture_output=True, text=True, timeout=1200, check=False)

  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    first, second = pool.map(invocation, ["a", "b"])
  for done in (first, second):
    assert done.returncode == 0, done.stderr[-3000:]
  table = [l for l in first.stdout.splitlines() if l.startswith("|")]
  # Header, rule, the four reference rows, then DSSM+MIC's four channels.
  assert len(table) == 10, first.stdout
  names = [l.split("|")[1].strip() for l in table[2:]]
  assert names[0] == "MostPopular" and names[1] == "ItemKNN"
  assert names[2].startswith("UserKNN (neighbours=")
  assert names[3].startswith("EASE (l2=")
  assert names[4:] == ["DSSM+MIC(UI+UU+II) U2I", "DSSM+MIC(UI+UU+II) U2U", "DSSM+MIC(UI+UU+II) I2I",
                       "DSSM+MIC(UI+UU+II) fused"]
  results = lambda out: [l for l in out.splitlines()
                         if l.startswith("|") or " tuned on valid users: "
                         in l or l.startswith("Best list")]
  assert results(first.stdout) == results(second.stdout)
  # The quiet console: data, protocol, one Keras line per epoch, the kept
  # epoch, the settings tuned on valid users, the table, the summary, where
  # the run is, the ablation command; nothing from TensorFlow's internals.
  # (Keras prints no "Epoch 1/1" header line when there is one epoch.)
  lines = first.stdout.splitlines()
  assert lines[0].startswith("ml-100k: using the cached files"), lines[0]
  assert lines[1].startswith("ml-100k: 943 users"), lines[1]
  assert "val_recall@50" in lines[2] and "basic_loss" in lines[2], lines[2]
  assert "ii_loss" in lines[2], lines[2]  # MIC's terms are trained
  assert lines[3].startswith("Kept epoch 1 of 1 run (max 1; valid recall@50")
  tuned = lines[4:lines.index(table[0])]
  assert [l.split(" tuned on valid users: ")[0] for l in tuned] == [
      "U2I", "U2U", "I2I", "ItemKNN", "UserKNN", "EASE", "fused"], tuned
  end = 4 + len(tuned) + len(table)
  assert lines[4 + len(tuned):end] == table
  blank, summary, where, ablation, *command = lines[end:]
  assert blank == ""
  assert summary.startswith("Best list on the test users (recall@50): ")
  assert re.search(r"\d\.\d\dx EASE", summary), summary
  run_dir = str(tmp_path / "a")
  assert where.startswith(f"Run: {run_dir} ")
  assert f"tensorboard --logdir {run_dir}/tensorboard" in where
  assert where.endswith(f"learning curve: {run_dir}/learning_curve.png")
  assert ablation.startswith("DSSM against DSSM+MIC")
  assert any("experiments/ablation.py" in l for l in command)
  # stderr: at most the progress lines of long work (a loaded machine can
  # make the reference rows or the fusion tuning last over a minute).
  progress = r"(reference rows|fusion tuning): \d+/\d+ \w+.*"
  assert all(re.fullmatch(progress, l) for l in first.stderr.splitlines()), (
      first.stderr[-3000:])
  assert (tmp_path / "a" / "learning_curve.png").stat().st_size > 0
  assert (tmp_path / "a" / "tensorboard").is_dir()
  with open(tmp_path / "a" / "main_job.json") as f:
    assert json.load(f)["summary"] == summary
  numerics = {}
  for name in ("a", "b"):
    with open(tmp_path / name / "run_record.json") as f:
      numerics[name] = json.load(f)["numerics"]
  assert numerics["b"]["intra_op_threads"] == 1
  assert numerics["b"]["inter_op_threads"] == 1
  assert numerics["a"]["intra_op_threads"] == 0  # TensorFlow's default


def test_threads_are_set_before_tensorflow_runs_or_refused():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mic_tf import errors  # pylint: disable=g-import-not-at-top
  from mic_tf import reproducibility  # pylint: disable=g-import-not-at-top
  with pytest.raises(errors.UserError, match="give 1 or more"):
    reproducibility.set_threads(0)
  (tf.constant(1.0) + 1.0).numpy()  # the runtime has started
  with pytest.raises(errors.UserError, match="before building data"):
    reproducibility.set_threads(1)


@pytest.mark.slow
def test_deterministic_mode_pins_onednn_on_cpus_of_either_default(tmp_path):
  """TensorFlow turns oneDNN's graph rewrites on by default on some CPUs
  only. ``TF_ENABLE_ONEDNN_OPTS=0`` stands for a CPU whose default is off:
  without ``--deterministic`` it trains another model here; with it, the
  setting is pinned and both give the same numbers to the last digit."""
  # The default model sizes: at tiny widths the two settings can round alike.
  flags = ["--dataset=ml-100k", "--epochs=1", "--examples_per_epoch=8192",
           "--seed=0", "--verbose=0"]
  base = dict(os.environ, PYTHONPATH=str(_ROOT))
  for name in ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA",
               "MIC_TF_DETERMINISTIC"):
    base.pop(name, None)

  def invocation(args):
    name, extra, env = args
    done = subprocess.run(
        [sys.executable, str(_ROOT / "experiments" / "train.py"), *flags,
         *extra, f"--output_dir={tmp_path / name}"], env=env,
        capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / name / "metrics.json") as f:
      metrics = json.load(f)
    with open(tmp_path / name / "run_record.json") as f:
      numerics = json.load(f)["numerics"]
    return metrics["valid"], metrics["test"], numerics, done.stderr

  off = dict(base, TF_ENABLE_ONEDNN_OPTS="0")
  runs = [("default_det", ["--deterministic"], base),
          ("off_det", ["--deterministic"], off),
          ("off", [], off),
          # On explicitly: TensorFlow's own default is off on some CPUs
          # (an AMD EPYC without AVX-512), and this run stands for "on".
          ("on_isa", [], dict(base, TF_ENABLE_ONEDNN_OPTS="1",
                              ONEDNN_MAX_CPU_ISA="AVX2"))]
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    (det, det_off, plain_off, plain_on) = pool.map(invocation, runs)
  assert det[:2] == det_off[:2]
  assert det[2]["deterministic_mode"] and det_off[2]["deterministic_mode"]
  assert det_off[2]["onednn_opts"] and det_off[2]["onednn_opts_env"] == "1"
  assert det_off[2]["pinned_overrides"] == {"TF_ENABLE_ONEDNN_OPTS": "0"}
  assert "sets TF_ENABLE_ONEDNN_OPTS=1 (was '0'" in det_off[3]
  assert det[2]["pinned_overrides"] == {}
  # The pin is what makes them agree: the two oneDNN settings alone, at
  # the deterministic instruction set, train different models.
  assert not plain_off[2]["onednn_opts"] and plain_on[2]["onednn_opts"]
  assert plain_off[:2] != plain_on[:2]
