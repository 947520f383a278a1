"""Faults of a run directory: a corrupt checkpoint, a full disk.

Each fault ends in a ``UserError`` naming the path and the fix (the
binaries print it as one line and exit 2), and loses nothing that was
written before it: the last good checkpoint stays and the run resumes.
The disk-full cases mount a small tmpfs, which needs root; elsewhere they
are skipped.
"""

import glob
import os
import shutil
import subprocess
import uuid

import pytest
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import errors
from mic_tf import run_files
from mic_tf import runs
from mic_tf import training
from mic_tf.models.config import MICConfig


def _config(csv, output_dir, **kwargs):
  values = dict(dataset="custom", dataset_kwargs={"path": csv}, epochs=1,
                batch_size=64, embedding_dim=8, output_dim=8,
                hidden_units=(8,), maxlen=5, max_item_users=4, seed=0,
                output_dir=str(output_dir),
                mic=MICConfig.base(projection_dim=8))
  values.update(kwargs)
  return training.ExperimentConfig.from_settings(**values)


class _Interrupt(tf.keras.callbacks.Callback):
  """Stops training at the start of epoch ``epoch`` (1-based), or runs
  ``action`` there instead."""

  def __init__(self, epoch, action=None):
    super().__init__()
    self.epoch, self.action = epoch, action

  def on_epoch_begin(self, epoch, logs=None):
    if epoch + 1 == self.epoch:
      if self.action is None:
        raise KeyboardInterrupt
      self.action()


@pytest.fixture(scope="module")
def finished_run(interactions_csv, tmp_path_factory):
  directory = tmp_path_factory.mktemp("finished")
  training.run_experiment(_config(interactions_csv, directory), verbose=0)
  return directory


@pytest.fixture(scope="module")
def interrupted_run(interactions_csv, tmp_path_factory):
  """Two epochs asked, interrupted at the start of the second."""
  directory = tmp_path_factory.mktemp("interrupted")
  with pytest.raises(KeyboardInterrupt):
    training.run_experiment(_config(interactions_csv, directory, epochs=2),
                            verbose=0, callbacks=[_Interrupt(2)])
  return directory


def _truncated_copy(run, tmp_path):
  copy = tmp_path / "run"
  shutil.copytree(run, copy)
  (data,) = glob.glob(str(copy / "checkpoints" / "best.data-*"))
  size = os.path.getsize(data)
  with open(data, "r+b") as f:
    f.truncate(size // 2)
  return copy


def test_a_truncated_checkpoint_is_named_corrupt(finished_run, tmp_path):
  run = _truncated_copy(finished_run, tmp_path)
  ckpt = os.path.join(run, "checkpoints", "best")
  with pytest.raises(errors.UserError) as caught:
    runs.evaluate_run(str(run), write=False)
  message = str(caught.value)
  assert message.startswith(f"The checkpoint {ckpt} is corrupt ("), message
  assert "Copy the run directory again from a good copy or retrain" in message
  assert "backup" not in message  # a finished run keeps none
  with pytest.raises(errors.UserError, match="is corrupt"):
    runs.export_run(str(run), str(tmp_path / "export"))
  assert not os.path.exists(tmp_path / "export")
  # The intact run reads back: the check names corruption only.
  assert run_files.checkpoint_problem(
      os.path.join(finished_run, "checkpoints", "best")) is None


def test_a_corrupt_checkpoint_names_a_good_backup(interrupted_run, tmp_path):
  assert run_files.saved_backup_epoch(str(interrupted_run)) == 1
  run = _truncated_copy(interrupted_run, tmp_path)
  with pytest.raises(errors.UserError) as caught:
    training.load_run(str(run))
  message = str(caught.value)
  assert "is corrupt" in message
  assert message.endswith(
      f"A good backup checkpoint exists: {run}/backup holds epoch 1, the "
      "last one trained, which is not necessarily the selected epoch."), (
          message)


def test_output_dir_that_is_a_file_is_refused(interactions_csv, tmp_path):
  path = tmp_path / "taken"
  path.write_text("keep me")
  with pytest.raises(errors.UserError,
                     match=f"--output_dir={path}: {path} is a file, not a "
                     "directory; pass a directory"):
    training.run_experiment(_config(interactions_csv, path), verbose=0)
  with pytest.raises(errors.UserError, match="is a file, not a directory"):
    run_files.check_output_dir(str(path / "run"))
  assert path.read_text() == "keep me"


@pytest.fixture()
def small_disk(tmp_path):
  """Mounts a tmpfs of a given size; unmounts it afterwards (root only)."""
  mounted = []

  def mount(size):
    point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                           "tmpfs", str(point)], capture_output=True,
                          check=False)
    if done.returncode != 0:
      pytest.skip(f"cannot mount a tmpfs here: {done.stderr[-200:]!r}")
    mounted.append(point)
    return point

  yield mount
  for point in mounted:
    subprocess.run(["umount", "--lazy", str(point)], check=False)


def test_too_small_a_disk_is_refused_before_training(interactions_csv,
                                                     small_disk):
  # Room for the run's JSON files, not for two copies of 256-d embeddings.
  disk = small_disk("64k")
  with pytest.raises(errors.UserError) as caught:
    training.run_experiment(_config(interactions_csv, disk / "run",
                                    embedding_dim=256), verbose=0)
  message = str(caught.value)
  assert message.startswith(f"--output_dir={disk}/run has "), message
  assert "its checkpoints need at least" in message
  assert "free space there or pass another --output_dir" in message
  assert not os.path.exists(disk / "run" / "checkpoints")


def test_a_disk_filling_up_stops_resumably(interactions_csv, small_disk):
  disk = small_disk("1m")
  run = disk / "run"
  filler = disk / "filler"

  def fill():
    with open(filler, "wb") as f:
      try:
        while True:
          f.write(b"\0" * 4096)
          f.flush()
      except OSError:
        pass

  config = _config(interactions_csv, run, epochs=3)
  with pytest.raises(errors.UserError) as caught:
    training.run_experiment(config, verbose=0, callbacks=[_Interrupt(2, fill)])
  message = str(caught.value)
  assert message.startswith(f"The disk holding {run} is full ("), message
  assert message.endswith(
      "Free space there and rerun the same command: it resumes after epoch "
      f"1, the last one saved in {run}/backup."), message
  assert not glob.glob(str(run / "**" / "*_temp"), recursive=True)
  assert run_files.checkpoint_problem(str(run / "checkpoints" / "best")) is None
  os.remove(filler)
  results = training.run_experiment(config, verbose=0)
  assert results["resumed"]
  assert [h["epoch"] for h in results["history"]] == [1, 2, 3]
