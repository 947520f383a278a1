"""mic_tf makes tf.keras resolve to Keras 2 whatever the import order."""

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("first", ["import mic_tf\nimport tensorflow as tf",
                                   "import tensorflow as tf\nimport mic_tf"])
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
