"""Process-level settings that must be in place before TensorFlow starts.

TensorFlow Recommenders 0.7.7 is written against Keras 2 (``tf_keras``). Under
TensorFlow 2.16+ ``tf.keras`` resolves to Keras 3 unless ``TF_USE_LEGACY_KERAS``
is set before ``tf.keras`` is first touched. ``tf.keras`` is resolved lazily, so
setting the variable here works even when the user imported ``tensorflow``
before ``mic_tf``, as long as nothing touched ``tf.keras`` in between.

TensorFlow reads a few more variables once, when it loads, before any absl
flag is parsed; a variable the user already set is never changed:

* ``TF_CPP_MIN_LOG_LEVEL`` (TensorFlow's C++ log): ``3`` on a machine without
  an NVIDIA device (it hides the meaningless "failed call to cuInit" error
  line), else ``2``; ``0`` when the command line asks for detail
  (``--verbosity=1`` or ``--v=1``).
* With ``--deterministic`` on the command line, or ``MIC_TF_DETERMINISTIC=1``
  in the environment: ``ONEDNN_MAX_CPU_ISA=AVX2`` (see
  ``mic_tf.reproducibility``).
"""

import os
import re
import sys
from typing import Dict, Optional, Sequence

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

DETERMINISTIC_ENV = "MIC_TF_DETERMINISTIC"
# The oneDNN instruction set of --deterministic (mic_tf.reproducibility
# explains why): every x86-64 CPU TensorFlow 2.20 runs on fast has AVX2.
DETERMINISTIC_ISA = "AVX2"

_VERBOSITY = re.compile(r"^--?(?:v|verbosity)(?:=(-?\d+))?$")
_NVIDIA_DEVICES = ("/dev/nvidiactl", "/dev/dxg")


def requested_verbosity(argv: Sequence[str]) -> Optional[int]:
  """The ``--verbosity`` / ``--v`` value on a command line (None if absent)."""
  value = None
  for i, arg in enumerate(argv):
    match = _VERBOSITY.match(arg)
    if not match:
      continue
    text = match.group(1)
    if text is None and i + 1 < len(argv):
      text = argv[i + 1]
    try:
      value = int(text)
    except (TypeError, ValueError):
      pass  # absl reports the bad value when it parses the flags
  return value


def requested_determinism(argv: Sequence[str],
                          environ: Optional[Dict[str, str]] = None) -> bool:
  """True if ``--deterministic`` is on the command line or in the env."""
  environ = os.environ if environ is None else environ
  on = environ.get(DETERMINISTIC_ENV, "").lower() in ("1", "true", "yes")
  for arg in argv:
    if arg in ("--deterministic", "--deterministic=true",
               "--deterministic=1"):
      on = True
    elif arg in ("--nodeterministic", "--deterministic=false",
                 "--deterministic=0"):
      on = False
  return on


def startup_environment(argv: Sequence[str],
                        environ: Optional[Dict[str, str]] = None,
                        has_gpu: Optional[bool] = None) -> Dict[str, str]:
  """The variables to set before TensorFlow loads (user values win)."""
  environ = os.environ if environ is None else environ
  if has_gpu is None:
    has_gpu = any(os.path.exists(p) for p in _NVIDIA_DEVICES)
  wanted = {}
  verbosity = requested_verbosity(argv)
  if verbosity is not None and verbosity >= 1:
    wanted["TF_CPP_MIN_LOG_LEVEL"] = "0"
  else:
    wanted["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_gpu else "3"
  if requested_determinism(argv, environ):
    wanted["ONEDNN_MAX_CPU_ISA"] = DETERMINISTIC_ISA
  return {k: v for k, v in wanted.items() if k not in environ}


if "tensorflow" not in sys.modules:
  os.environ.update(startup_environment(sys.argv))


def check_keras() -> None:
  """Raises a clear error if ``tf.keras`` was already bound to Keras 3."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  module = tf.keras.layers.Layer.__module__
  if not module.startswith("tf_keras"):
    raise ImportError(
        "mic_tf needs Keras 2 (tf_keras) but tf.keras resolves to "
        f"{module!r}: something touched tf.keras before mic_tf was imported. "
        "Import mic_tf first, or set TF_USE_LEGACY_KERAS=1 in the environment, "
        "and make sure `pip install tf-keras~=2.20.0` is done.")


if "tensorflow" in sys.modules:
  # TensorFlow came first: fail now, with the fix, if it already bound Keras 3.
  check_keras()
