"""A run directory's files: checks before writing, full disks, bad checkpoints.

``mic_tf.training`` writes a run under ``output_dir`` and ``mic_tf.runs``
reads it back; this module holds what both need to fail clearly (a
``UserError`` naming the path and the fix) instead of with a TensorFlow
traceback:

* ``check_output_dir``: before any data is loaded, the directory must be a
  directory (not a file) that this process can write;
* ``check_free_space``: once the model is built, the disk must hold at least
  one copy of its weights for ``checkpoints/best`` and one for ``backup/``
  (a lower bound: optimizer slots and logs need more);
* ``stop_when_disk_full``: a disk that fills up during training stops the
  run with the last good checkpoint intact (TensorFlow writes a checkpoint
  into ``<prefix>_temp/`` first, and that folder is removed) and says how to
  resume;
* ``check_checkpoint``: a checkpoint whose files are truncated or damaged is
  named as corrupt, with whether ``backup/`` holds a readable one.

Only local paths are checked; a path with a scheme (``gs://``) is left to
TensorFlow.
"""

import contextlib
import errno
import os
import shutil
import tempfile
from typing import Iterator, Optional

import numpy as np
import tensorflow as tf

from mic_tf import errors

BACKUP = "backup"
# Where tf.keras.callbacks.BackupAndRestore keeps the chief's checkpoints.
BACKUP_CHECKPOINTS = os.path.join(BACKUP, "chief")
_SAVED_EPOCH = "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


def _local(path: str) -> bool:
  return "://" not in path


def check_output_dir(path: str) -> None:
  """Refuses an output path that is a file or cannot be written.

  Creates the directory when it does not exist.

  Raises:
    UserError: If ``path`` (or a folder above it) is a file, or the
      directory cannot be created or written.
  """
  if not _local(path):
    return
  above = path
  while above and not os.path.exists(above):
    above = os.path.dirname(above.rstrip(os.sep))
  if above and not os.path.isdir(above):
    raise errors.UserError(
        f"--output_dir={path}: {above} is a file, not a directory; pass a "
        "directory for the run (it is created if missing).")
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as error:
    raise errors.UserError(
        f"--output_dir={path} cannot be written ({error.strerror or error}); "
        "pass a directory you can write, or fix its permissions.") from error


def weight_bytes(model: tf.keras.Model) -> int:
  """Bytes of the model's weights (one checkpoint copy, without slots)."""
  return int(sum(np.prod(v.shape) * v.dtype.size for v in model.weights))


def check_free_space(path: str, needed: int) -> None:
  """Refuses to train into a disk with less than ``needed`` bytes free.

  Raises:
    UserError: If the disk holding ``path`` has less room.
  """
  if not _local(path) or not os.path.isdir(path):
    return
  free = shutil.disk_usage(path).free
  if free < needed:
    raise errors.UserError(
        f"--output_dir={path} has {_size(free)} free, less than the "
        f"{_size(needed)} its checkpoints need at least (the model's "
        "weights for checkpoints/best and for backup/); free space there or "
        "pass another --output_dir.")


def _size(n: float) -> str:
  for unit in ("bytes", "KiB", "MiB", "GiB"):
    if n < 1024 or unit == "GiB":
      return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
    n /= 1024
  raise AssertionError("unreachable")


def is_disk_full(error: BaseException) -> bool:
  """True for a write that failed because the disk (or quota) is full."""
  if isinstance(error, OSError) and error.errno in _DISK_FULL:
    return True
  return (isinstance(error, (OSError, tf.errors.OpError))
          and any(text in str(error) for text in _DISK_FULL_TEXT))


def remove_temp_checkpoints(run_dir: str) -> None:
  """Deletes the ``*_temp`` folders of checkpoint writes that did not end."""
  for root, folders, _ in os.walk(run_dir):
    for folder in list(folders):
      if folder.endswith("_temp"):
        shutil.rmtree(os.path.join(root, folder), ignore_errors=True)
        folders.remove(folder)


def saved_backup_epoch(run_dir: str) -> Optional[int]:
  """The last epoch (1-based) in ``backup/`` if its checkpoint reads whole."""
  prefix = tf.train.latest_checkpoint(os.path.join(run_dir,
                                                   BACKUP_CHECKPOINTS))
  if prefix is None or checkpoint_problem(prefix) is not None:
    return None
  reader = tf.train.load_checkpoint(prefix)
  if not reader.has_tensor(_SAVED_EPOCH):
    return None
  return int(reader.get_tensor(_SAVED_EPOCH)) + 1


@contextlib.contextmanager
def stop_when_disk_full(run_dir: Optional[str]) -> Iterator[None]:
  """Turns a full disk inside the block into a ``UserError``.

  The unfinished checkpoint write (``*_temp/``) is removed; the checkpoints
  written before it are intact, so the same command resumes the run once
  there is room.
  """
  try:
    yield
  except (OSError, tf.errors.OpError) as error:
    if not run_dir or not _local(run_dir) or not is_disk_full(error):
      raise
    remove_temp_checkpoints(run_dir)
    epoch = saved_backup_epoch(run_dir)
    resume = (f"it resumes after epoch {epoch}, the last one saved in "
              f"{os.path.join(run_dir, BACKUP)}" if epoch else
              "no epoch was saved yet, so it starts over")
    raise errors.UserError(
        f"The disk holding {run_dir} is full ({_size(_free(run_dir))} free): "
        "training stopped, the checkpoints written before are intact. Free "
        f"space there and rerun the same command: {resume}.") from error


def _free(path: str) -> int:
  try:
    return shutil.disk_usage(path).free
  except OSError:
    return 0


def checkpoint_problem(prefix: str) -> Optional[str]:
  """Why the checkpoint at ``prefix`` cannot be read whole, or None.

  Reads every tensor: a truncated or damaged data or index file fails here.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except (IndexError, ValueError, tf.errors.OpError) as error:
    return " ".join(str(error).split())[:160] or type(error).__name__
  return None


def check_checkpoint(prefix: str, run_dir: str) -> None:
  """Raises a ``UserError`` naming the checkpoint if it is corrupt.

  The message says whether ``backup/`` (the state ``BackupAndRestore`` left
  after an interrupted run) holds a readable checkpoint, and of which epoch.
  """
  problem = checkpoint_problem(prefix)
  if problem is None:
    return
  epoch = saved_backup_epoch(run_dir)
  backup = (f" A good backup checkpoint exists: "
            f"{os.path.join(run_dir, BACKUP)} holds epoch {epoch}, the last "
            "one trained, which is not necessarily the selected epoch."
            if epoch else "")
  raise errors.UserError(
      f"The checkpoint {prefix} is corrupt ({problem}): its files are "
      "truncated or damaged. Copy the run directory again from a good copy "
      f"or retrain the run.{backup}")
