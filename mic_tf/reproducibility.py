"""What makes two runs give the same numbers, and the ``--deterministic`` mode.

A run repeats exactly on one machine: the seed fixes the weights'
initialisation, the shuffling, the example subset and every perturbation
(``tf.keras.utils.set_random_seed`` in ``run_experiment``), tf.data keeps its
order (``deterministic=True``), and the CPU kernels reduce in a fixed order
on a fixed machine.

Across machines it need not, for two reasons:

* TensorFlow's matrix products on x86 run in oneDNN, which picks its
  kernels at run time for the CPU's instruction set (AVX-512 on one EPYC
  generation, AVX2 on another; a VM may only say "AMD EPYC"). The kernels
  sum in different orders, so float32 results differ in the last bits, and
  training amplifies that into different metrics. This holds with
  ``TF_ENABLE_ONEDNN_OPTS=0`` too: TensorFlow's own matmul then still calls
  oneDNN's sgemm.
* TensorFlow turns its oneDNN graph rewrites (``TF_ENABLE_ONEDNN_OPTS``) on
  by default on some CPUs only. The rewritten graph fuses ops and rounds
  differently, so a machine whose default is off trains another model.

The number of threads did not change any number here (1 or 2 cores, oneDNN
on or off).

``--deterministic`` (or ``MIC_TF_DETERMINISTIC=1`` in the environment before
``mic_tf`` is imported) takes the instruction set out:

* ``ONEDNN_MAX_CPU_ISA=AVX2``: the same oneDNN kernels on every x86-64 CPU
  with AVX2 (every EPYC, every Intel CPU since 2013);
* ``TF_ENABLE_ONEDNN_OPTS=1``: the same graph rewrites on every CPU;
* both are set by ``mic_tf._env`` before TensorFlow loads, replacing a
  value the user set (it says so on stderr; the run record keeps it);
* ``tf.config.experimental.enable_op_determinism()``: TensorFlow raises on
  an op without a deterministic implementation instead of running it.

docs/guides/reproducibility.md gives what was measured, the cost, and
what still differs (other TensorFlow builds or versions, GPUs).
"""

import os
from typing import Any, Dict, Optional

from mic_tf import _env
from mic_tf import errors

DETERMINISTIC_ENV = _env.DETERMINISTIC_ENV
DETERMINISTIC_ISA = _env.DETERMINISTIC_ISA


def onednn_enabled() -> bool:
  """Whether this process's TensorFlow runs oneDNN's graph rewrites."""
  try:
    from tensorflow.python.util import _pywrap_util_port  # pylint: disable=g-import-not-at-top
    return bool(_pywrap_util_port.IsMklEnabled())
  except (ImportError, AttributeError):  # another TensorFlow build
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"


def enable_determinism() -> None:
  """Turns on deterministic ops; checks the start-up settings.

  Raises:
    UserError: If ``ONEDNN_MAX_CPU_ISA`` is not ``AVX2`` or oneDNN's graph
      rewrites are off (TensorFlow was started without ``--deterministic``
      / ``MIC_TF_DETERMINISTIC=1``).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
  if (isa or "").upper() != DETERMINISTIC_ISA:
    raise errors.UserError(
        "Deterministic mode must be chosen before TensorFlow starts "
        f"(ONEDNN_MAX_CPU_ISA is {isa!r}, not {DETERMINISTIC_ISA!r}): pass "
        "--deterministic on the command line, or set "
        f"{DETERMINISTIC_ENV}=1 in the environment before importing "
        "tensorflow or mic_tf.")
  if not onednn_enabled():
    raise errors.UserError(
        "Deterministic mode needs oneDNN's graph rewrites on, and this "
        "TensorFlow started with them off (TF_ENABLE_ONEDNN_OPTS="
        f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS')!r}): pass --deterministic "
        f"on the command line, or set {DETERMINISTIC_ENV}=1 in the "
        "environment before importing tensorflow or mic_tf.")
  tf.config.experimental.enable_op_determinism()


def set_threads(threads: int) -> None:
  """Caps TensorFlow's intra- and inter-op thread pools at ``threads``.

  Raises:
    UserError: If ``threads`` < 1, or TensorFlow has already run an op (its
      thread pools are fixed when it starts).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if threads < 1:
    raise errors.UserError(f"threads={threads}: give 1 or more (0 keeps "
                           "TensorFlow's default).")
  try:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
  except RuntimeError as error:
    raise errors.UserError(
        "TensorFlow's thread pools are fixed once it has run an op: set the "
        "threads (--threads) before building data or models.") from error


def op_determinism_enabled() -> Optional[bool]:
  """Whether TensorFlow's op determinism is on (None: cannot tell)."""
  try:
    from tensorflow.python.framework import config as tf_config  # pylint: disable=g-import-not-at-top
    return bool(tf_config.is_op_determinism_enabled())
  except (ImportError, AttributeError):  # another TensorFlow version
    return None


def describe() -> Dict[str, Any]:
  """The settings that decide whether numbers repeat (for run records)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  op_determinism = op_determinism_enabled()
  isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
  return {
      "deterministic_mode": bool(op_determinism) and (
          (isa or "").upper() == DETERMINISTIC_ISA) and onednn_enabled(),
      "onednn_opts": onednn_enabled(),
      "onednn_opts_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
      "onednn_max_cpu_isa": isa,
      # The user's values that deterministic mode replaced at start-up.
      "pinned_overrides": dict(_env.PINNED_OVERRIDES),
      "op_determinism": op_determinism,
      # 0: TensorFlow's default (one thread per core).
      "intra_op_threads":
          tf.config.threading.get_intra_op_parallelism_threads(),
      "inter_op_threads":
          tf.config.threading.get_inter_op_parallelism_threads(),
  }
