"""Process-level settings that must be in place before TensorFlow starts.

TensorFlow Recommenders 0.7.7 is written against Keras 2 (``tf_keras``). Under
TensorFlow 2.16+ ``tf.keras`` resolves to Keras 3 unless ``TF_USE_LEGACY_KERAS``
is set before ``tf.keras`` is first touched. ``tf.keras`` is resolved lazily, so
setting the variable here works even when the user imported ``tensorflow``
before ``mic_tf``, as long as nothing touched ``tf.keras`` in between.

TensorFlow reads a few more variables once, when it loads. Importing
``mic_tf`` sets only what the environment asks for; the binaries
(``mic_tf.cli.run``) set the rest after parsing their flags and before
TensorFlow loads. A variable the user already set is never changed, except
the two that deterministic mode pins:

* ``TF_CPP_MIN_LOG_LEVEL`` (TensorFlow's C++ log; binaries only): ``3`` on
  a machine without an NVIDIA device (it hides the meaningless "failed call
  to cuInit" error line), else ``2``; ``0`` when the command line asks for
  detail (``--verbosity=1`` or ``--v=1``).
* With ``MIC_TF_DETERMINISTIC=1`` in the environment (at import), or
  ``--deterministic`` on a binary's command line: ``ONEDNN_MAX_CPU_ISA=AVX2``
  and ``TF_ENABLE_ONEDNN_OPTS=1`` (see ``mic_tf.reproducibility``). These
  two are pinned: deterministic mode replaces another value the user set,
  says so on stderr, and the run record keeps what was replaced
  (``PINNED_OVERRIDES``).

Nothing here reads ``sys.argv``: ``startup_environment`` and
``apply_startup_environment`` take the command line they are given.
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
# What --deterministic pins before TensorFlow loads. TensorFlow turns its
# oneDNN graph rewrites on by default on some CPUs only, so the default of
# TF_ENABLE_ONEDNN_OPTS differs between machines; the pin removes that.
DETERMINISTIC_ENVIRONMENT = {
    "ONEDNN_MAX_CPU_ISA": DETERMINISTIC_ISA,
    "TF_ENABLE_ONEDNN_OPTS": "1",
}
# Variable -> the user's value that deterministic mode replaced (this
# process); mic_tf.reproducibility.describe records it.
PINNED_OVERRIDES: Dict[str, str] = {}

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
  """The variables a binary run with ``argv`` sets before TensorFlow loads.

  User values win, except for the settings deterministic mode pins
  (``DETERMINISTIC_ENVIRONMENT``), which replace any other value.
  """
  return startup_settings(requested_verbosity(argv),
                          requested_determinism(argv, environ), environ,
                          has_gpu)


def startup_settings(verbosity: Optional[int], deterministic: bool,
                     environ: Optional[Dict[str, str]] = None,
                     has_gpu: Optional[bool] = None) -> Dict[str, str]:
  """``startup_environment`` from parsed values (``--verbosity``, mode)."""
  environ = os.environ if environ is None else environ
  if has_gpu is None:
    has_gpu = any(os.path.exists(p) for p in _NVIDIA_DEVICES)
  wanted = {}
  if verbosity is not None and verbosity >= 1:
    wanted["TF_CPP_MIN_LOG_LEVEL"] = "0"
  else:
    wanted["TF_CPP_MIN_LOG_LEVEL"] = "2" if has_gpu else "3"
  out = {k: v for k, v in wanted.items() if k not in environ}
  if deterministic:
    out.update(deterministic_environment(environ))
  return out


def deterministic_environment(environ: Optional[Dict[str, str]] = None
                              ) -> Dict[str, str]:
  """The pinned variables (``DETERMINISTIC_ENVIRONMENT``) ``environ`` lacks."""
  environ = os.environ if environ is None else environ
  return {name: value for name, value in DETERMINISTIC_ENVIRONMENT.items()
          if environ.get(name, "").upper() != value}


def pinned_overrides(wanted: Dict[str, str],
                     environ: Optional[Dict[str, str]] = None
                     ) -> Dict[str, str]:
  """The user's values that ``wanted`` replaces among the pinned settings."""
  environ = os.environ if environ is None else environ
  return {k: environ[k] for k in DETERMINISTIC_ENVIRONMENT
          if k in wanted and k in environ and environ[k] != wanted[k]}


def apply_startup_environment(argv: Sequence[str]) -> None:
  """Sets ``startup_environment(argv)``; says on stderr what it replaced."""
  apply_environment(startup_environment(argv))


def apply_environment(wanted: Dict[str, str]) -> None:
  """Sets ``wanted``; says on stderr which pinned user values it replaced."""
  replaced = pinned_overrides(wanted)
  for name, old in replaced.items():
    print(f"mic_tf: deterministic mode sets {name}={wanted[name]} (was "
          f"{old!r} in the environment): the same numbers on every x86-64 "
          "CPU need it.", file=sys.stderr, flush=True)
  PINNED_OVERRIDES.update(replaced)
  os.environ.update(wanted)


if "tensorflow" not in sys.modules and requested_determinism(()):
  # MIC_TF_DETERMINISTIC=1 (notebooks): pinned before TensorFlow loads.
  apply_environment(deterministic_environment())


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
