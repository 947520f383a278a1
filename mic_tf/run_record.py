"""What reproduces a run: written as ``run_record.json`` in every run dir.

``collect(config)`` gathers

* ``config``: the full ``ExperimentConfig`` (as in ``config.json``) and the
  command line;
* ``packages``: versions of Python, mic-tf, TensorFlow, tf-keras, TensorFlow
  Recommenders, ScaNN, NumPy, pandas and absl;
* ``code``: the git commit of the mic-tf checkout, whether its tracked files
  had uncommitted changes (and which), or None when mic-tf is not a git
  checkout (an installed wheel);
* ``data``: the SHA-256 of every data file the run read (for the fetched
  MovieLens files: the pinned hashes ``mic_tf.data.fetch`` verifies on every
  load);
* ``hardware``: CPU model and instruction sets (AVX2, AVX-512, ...), cores
  (and how many this process may use), memory, GPUs;
* ``numerics``: oneDNN, op determinism and thread settings
  (``mic_tf.reproducibility``), and the environment variables that change
  them.

Every part is best effort: what cannot be found is None, never an error.
"""

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any, Dict, List, Optional

from absl import logging

from mic_tf import reproducibility
from mic_tf.data import fetch
from mic_tf.data import registry as data_registry

FILENAME = "run_record.json"
FORMAT_VERSION = 1

# Distribution names; the first one installed is reported.
PACKAGES = {
    "mic-tf": ("mic-tf", "mic_tf"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                   "tf-nightly"),
    "tf-keras": ("tf-keras", "tf_keras"),
    "tensorflow-recommenders": ("tensorflow-recommenders",),
    "scann": ("scann",),
    "numpy": ("numpy",),
    "pandas": ("pandas",),
    "absl-py": ("absl-py",),
}
ENV_VARS = ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS", "MIC_TF_DETERMINISTIC",
            "CUDA_VISIBLE_DEVICES", "TF_USE_LEGACY_KERAS", "OMP_NUM_THREADS",
            "ONEDNN_MAX_CPU_ISA", "TF_DETERMINISTIC_OPS")
_REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def package_versions() -> Dict[str, Optional[str]]:
  versions = {"python": platform.python_version()}
  for name, candidates in PACKAGES.items():
    versions[name] = None
    for dist in candidates:
      try:
        versions[name] = importlib.metadata.version(dist)
        break
      except importlib.metadata.PackageNotFoundError:
        continue
  return versions


def _git(*args: str) -> Optional[str]:
  try:
    done = subprocess.run(["git", "-C", _REPO_DIR, *args],
                          capture_output=True, text=True, timeout=20,
                          check=False)
  except (OSError, subprocess.SubprocessError):
    return None
  return done.stdout.rstrip("\n") if done.returncode == 0 else None


def code_version() -> Optional[Dict[str, Any]]:
  """Commit and dirty state of the mic-tf checkout (None if not in git)."""
  if not os.path.exists(os.path.join(_REPO_DIR, ".git")):
    return None
  commit = (_git("rev-parse", "HEAD") or "").strip() or None
  if commit is None:
    return None
  changed = _git("status", "--porcelain", "--untracked-files=no")
  files = ([line[3:] for line in changed.splitlines()]
           if changed is not None else None)
  return {"commit": commit, "dirty": bool(files) if files is not None
          else None, "changed_files": files}


def _hash_path(path: str) -> Dict[str, str]:
  if os.path.isdir(path):
    out = {}
    for root, _, names in sorted(os.walk(path)):
      for name in sorted(names):
        full = os.path.join(root, name)
        out[full] = fetch.sha256_of(full)
    return out
  return {path: fetch.sha256_of(path)}


def data_checksums(dataset: str, data_dir: Optional[str] = None,
                   dataset_kwargs: Optional[Dict[str, Any]] = None
                   ) -> Dict[str, Any]:
  """SHA-256 of the files a dataset is read from."""
  dataset_kwargs = dataset_kwargs or {}
  if dataset in fetch.SOURCES:
    source = fetch.SOURCES[dataset]
    folder = fetch.data_dir(data_dir) / dataset
    return {"source": f"{source.package}=={source.version} (pinned hashes, "
                      "verified at load)",
            "files": {str(folder / name): sha
                      for name, sha in sorted(source.sha256.items())}}
  files: Dict[str, str] = {}
  for path in data_registry.source_files(dataset, data_dir, **dataset_kwargs):
    files.update(_hash_path(str(path)))
  return {"source": "files", "files": files}


# Instruction sets that decide which oneDNN kernels run (see
# mic_tf.reproducibility), as /proc/cpuinfo names them.
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16",
             "amx_tile")


def _cpuinfo(key: str) -> Optional[str]:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.split(":", 1)[0].strip() == key:
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def _cpu_isa() -> Optional[List[str]]:
  flags = _cpuinfo("flags")
  if flags is None:
    return None
  present = set(flags.split())
  return [f for f in ISA_FLAGS if f in present]


def _memory_gib() -> Optional[float]:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemTotal:"):
          return round(int(line.split()[1]) / 2**20, 1)
  except (OSError, ValueError, IndexError):
    pass
  return None


def _gpus() -> List[Dict[str, Any]]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  out = []
  for device in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(device)
    out.append({"name": device.name,
                "model": details.get("device_name"),
                "compute_capability": details.get("compute_capability")})
  return out


def hardware() -> Dict[str, Any]:
  try:
    usable = len(os.sched_getaffinity(0))
  except AttributeError:
    usable = os.cpu_count()
  return {"platform": platform.platform(), "machine": platform.machine(),
          "cpu_model": _cpuinfo("model name") or platform.processor() or None,
          "cpu_isa": _cpu_isa(), "cpu_cores": os.cpu_count(),
          "cpu_cores_usable": usable, "memory_gib": _memory_gib(),
          "gpus": _gpus()}


def hardware_line() -> str:
  """One line for a benchmark's header: CPU model, cores and system."""
  model = _cpuinfo("model name") or platform.processor() or "unknown CPU"
  return f"{model}, {os.cpu_count()} cores, {platform.system()}"


def _best_effort(name: str, fn, *args, **kwargs):
  try:
    return fn(*args, **kwargs)
  except Exception as error:  # pylint: disable=broad-except
    logging.warning("run record: could not record %s (%s)", name, error)
    return None


def collect(config) -> Dict[str, Any]:
  """Everything that reproduces a run of ``config`` (see module docstring)."""
  return {
      "format": FORMAT_VERSION,
      "config": config.to_dict(),
      "command": list(sys.argv),
      "packages": _best_effort("package versions", package_versions),
      "code": _best_effort("the git commit", code_version),
      "data": _best_effort("data checksums", data_checksums,
                           config.data.dataset, config.data.data_dir,
                           config.data.dataset_kwargs),
      "hardware": _best_effort("hardware", hardware),
      "numerics": _best_effort("numerics", reproducibility.describe),
      "environment": {k: os.environ[k] for k in ENV_VARS if k in os.environ},
  }
