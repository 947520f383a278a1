"""mic_tf makes tf.keras resolve to Keras 2 whatever the import order."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("first", ["import mic_tf\nimport tensorflow as tf",
                                   "import tensorflow as tf\nimport mic_tf"])
@pytest.mark.slow
def test_tf_keras_is_keras_2(first):
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  code = first + """
import tensorflow_recommenders as tfrs
from mic_tf import _env
_env.check_keras()
assert tf.keras.layers.Layer.__module__.startswith("tf_keras"), tf.keras
print("ok")
"""
  out = subprocess.run([sys.executable, "-c", code], env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert out.stdout.strip().endswith("ok")


@pytest.mark.slow
def test_check_keras_names_the_fix_when_keras3_is_bound():
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  code = """
import tensorflow as tf
tf.keras.layers.Dense  # binds Keras 3 before mic_tf is imported
try:
  import mic_tf
except ImportError as e:
  print("raised:", e)
"""
  out = subprocess.run([sys.executable, "-c", code], env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  assert "raised:" in out.stdout and "TF_USE_LEGACY_KERAS" in out.stdout


def test_startup_environment_quiet_by_default_detail_on_request():
  from mic_tf import _env  # pylint: disable=g-import-not-at-top
  start = _env.startup_environment
  assert start(["train.py"], {}, has_gpu=False) == {
      "TF_CPP_MIN_LOG_LEVEL": "3"}  # hides the cuInit error line
  assert start(["train.py"], {}, has_gpu=True) == {
      "TF_CPP_MIN_LOG_LEVEL": "2"}
  for argv in (["t", "--v=1"], ["t", "--verbosity=2"], ["t", "-v", "1"]):
    assert start(argv, {}, has_gpu=False)["TF_CPP_MIN_LOG_LEVEL"] == "0"
  assert start(["t", "--v=-1"], {}, has_gpu=False) == {
      "TF_CPP_MIN_LOG_LEVEL": "3"}
  # What the user set is never changed.
  assert start(["t", "--v=1"], {"TF_CPP_MIN_LOG_LEVEL": "1"}) == {}


def test_startup_environment_deterministic():
  from mic_tf import _env  # pylint: disable=g-import-not-at-top
  start = _env.startup_environment
  det = {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "1"}
  assert det.items() <= start(["t", "--deterministic"], {}).items()
  assert det.items() <= start(["t"], {"MIC_TF_DETERMINISTIC": "1"}).items()
  for argv in (["t"], ["t", "--deterministic", "--nodeterministic"]):
    out = start(argv, {})
    assert "ONEDNN_MAX_CPU_ISA" not in out
    assert "TF_ENABLE_ONEDNN_OPTS" not in out
  # Deterministic mode pins both, replacing what the user set ...
  user = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "TF_ENABLE_ONEDNN_OPTS": "0"}
  out = start(["t", "--deterministic"], user)
  assert det.items() <= out.items()
  assert _env.pinned_overrides(out, user) == user
  # ... and leaves an equal value alone.
  assert start(["t", "--deterministic"], dict(det)).keys().isdisjoint(det)
  # Without it, the user's values win.
  assert start(["t"], user).keys().isdisjoint(user)


def _import_mic_tf(argv, extra_env):
  """``import mic_tf`` in a fresh process with ``argv``; what it changed."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_USE_LEGACY_KERAS", "TF_CPP_MIN_LOG_LEVEL",
                      "ONEDNN_MAX_CPU_ISA", "TF_ENABLE_ONEDNN_OPTS",
                      "MIC_TF_DETERMINISTIC")}
  env.update(extra_env)
  code = f"""
import json, os, sys
sys.argv = {argv!r}
before = dict(os.environ)
import mic_tf
from mic_tf import cli, config
changed = {{k: v for k, v in os.environ.items() if before.get(k) != v}}
print(json.dumps([changed, "tensorflow" in sys.modules]))
"""
  out = subprocess.run([sys.executable, "-c", code], env=env,
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_reads_no_command_line_and_loads_no_tensorflow():
  changed, tf_loaded = _import_mic_tf(
      ["prog", "--deterministic", "--verbosity=1"], {})
  assert changed == {"TF_USE_LEGACY_KERAS": "1"}
  assert not tf_loaded  # the flag module and the configs are TF-free
  # The documented environment setting still applies at import.
  changed, _ = _import_mic_tf(["prog"], {"MIC_TF_DETERMINISTIC": "1"})
  assert changed == {"TF_USE_LEGACY_KERAS": "1", "ONEDNN_MAX_CPU_ISA": "AVX2",
                     "TF_ENABLE_ONEDNN_OPTS": "1"}


def test_binaries_apply_the_start_up_settings_of_their_flags():
  env = {k: v for k, v in os.environ.items()
         if k not in ("TF_CPP_MIN_LOG_LEVEL", "ONEDNN_MAX_CPU_ISA",
                      "TF_ENABLE_ONEDNN_OPTS", "MIC_TF_DETERMINISTIC")}
  code = """
import os, sys
from mic_tf import cli

def main(argv):
  # cli.run parsed the flags and set the environment before TensorFlow
  # loaded (--deterministic loads it to turn on op determinism, which
  # refuses a TensorFlow started without the pins).
  print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
        os.environ.get("ONEDNN_MAX_CPU_ISA"), "tensorflow" in sys.modules)

cli.run(main)
"""
  for argv, want in (([], ("2|3", "None", "False")),
                     (["--verbosity=1"], ("0", "None", "False")),
                     (["--deterministic"], ("2|3", "AVX2", "True"))):
    out = subprocess.run([sys.executable, "-c", code, *argv], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = out.stdout.split()[-3:]
    assert got[0] in want[0].split("|") and tuple(got[1:]) == want[1:], got
