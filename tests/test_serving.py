"""Served lists equal offline lists, item for item, on ML-100k.

The session's tiny DSSM run on ML-100k (``tiny_runs``) is exported with
``runs.export_run`` (every channel, exact search; the fused server also with
ScaNN's ops). A fresh Python process that imports only ScaNN and TensorFlow
loads each SavedModel and serves the test users from raw MovieLens ids and
raw attribute values (``recommend``) and from the protocol's ids
(``recommend_ids``), excluding each user's whole input history as the
offline protocol does. Every served list must equal the channel's offline
list (``Channel.retrieve``, the numpy path of the evaluation) item for item.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

import numpy as np
import pytest
import tensorflow as tf

from mic_tf import channels
from mic_tf import export
from mic_tf import features as F
from mic_tf import names
from mic_tf import runs
from mic_tf import training
from mic_tf.channels import raw_ids
from mic_tf.channels.ranking import pad_lists

_LOADER = pathlib.Path(__file__).resolve().parent / "serving_loader.py"
_K = 20
#: Not the defaults, so that the servers provably carry the settings.
_CONFIG = channels.ChannelConfig(
    u2i=channels.U2IConfig(history_weight=0.5),
    u2u=channels.U2UConfig(num_neighbours=30, alpha=0.7, gamma=2.0),
    i2i=channels.I2IConfig(num_history_items=5, num_similar_items=10,
                           alpha=0.3),
    fusion=channels.FusionConfig(mode="rrf", weights={"u2u": 2.0, "i2i": 1.0,
                                                      "u2i": 1.0,
                                                      "ease": 1.0}))


def _raw(values, vocab, kind):
  """Codes -> raw values as a request array (padding for code 0)."""
  out = [raw_ids.RAW_PADDING[kind] if v <= 0 else vocab[v]
         for v in np.asarray(values).reshape(-1)]
  if kind == raw_ids.INT64:
    array = np.asarray([int(v) for v in out], np.int64)
  else:
    array = np.asarray([str(v) for v in out])
  return array.reshape(np.shape(values))


_SHARED = {}


@pytest.fixture(scope="module", autouse=True)
def _shared_run(tiny_runs):
  """The session's tiny DSSM base run, for ``setUpClass`` (which takes no
  fixtures; module fixtures are set up before it)."""
  _SHARED["run_dir"] = tiny_runs.run()
  _SHARED["prepared"] = tiny_runs.prepared


@pytest.mark.slow
class ServingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    run_dir, prepared = _SHARED["run_dir"], _SHARED["prepared"]
    _, _, model = training.load_run(run_dir, prepared)
    export_dir = os.path.join(cls.tmp.name, "export")
    cls.paths = runs.export_run(run_dir, export_dir, names.CHANNELS, _K,
                                "exact", _CONFIG, prepared=prepared)
    scann_paths = runs.export_run(run_dir, os.path.join(cls.tmp.name,
                                                        "scann"),
                                  (names.FUSED,), _K, "scann", _CONFIG,
                                  prepared=prepared)
    cls.export_dir = export_dir

    # Offline: the evaluation's path, whole input history excluded.
    test = prepared.test
    assets = channels.ChannelAssets(model, prepared.tables, prepared.dataset)
    built = channels.build_channels(assets, names.CHANNELS, _K, "exact",
                                    _CONFIG)
    cls.offline = {c: built[c].retrieve(test.features, test.histories)
                   for c in names.CHANNELS}
    scann = channels.build_channels(assets, (names.FUSED,), _K, "scann",
                                    _CONFIG)[names.FUSED]
    cls.offline["scann_fused"] = scann.retrieve(test.features,
                                                test.histories)

    # The requests: the protocol's ids, and the same users in raw values.
    dataset = prepared.dataset
    kinds = raw_ids.RawIds(prepared.tables.spec, dataset)
    item_kind = kinds.item_kind
    exclude = pad_lists(test.histories)
    requests = {f"ids/{k}": np.asarray(v) for k, v in test.features.items()}
    requests["ids/exclude"] = exclude
    for name, values in test.features.items():
      if name == F.HISTORY:
        requests[f"raw/{name}"] = _raw(values, dataset.raw_item_ids,
                                       item_kind)
      else:
        requests[f"raw/{name}"] = _raw(values, dataset.user_vocabs[name],
                                       kinds.field_kinds[name])
    requests["raw/exclude"] = _raw(exclude, dataset.raw_item_ids, item_kind)
    cls.dataset, cls.item_kind, cls.requests = dataset, item_kind, requests
    cls.model_dirs = {c: cls.paths[c] for c in names.CHANNELS}
    cls.model_dirs["scann_fused"] = scann_paths[names.FUSED]

    path = os.path.join(cls.tmp.name, "requests.npz")
    answers = os.path.join(cls.tmp.name, "answers.npz")
    np.savez(path, **requests)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    done = subprocess.run(
        [sys.executable, str(_LOADER), path, answers] +
        [f"{name}={d}" for name, d in cls.model_dirs.items()],
        capture_output=True, text=True, env=env, timeout=600,
        cwd=cls.tmp.name)
    if done.returncode:
      raise AssertionError(f"serving_loader.py failed:\n{done.stderr[-3000:]}")
    with np.load(answers) as loaded:
      cls.served = {k: loaded[k] for k in loaded.files}

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_served_lists_equal_offline_lists(self):
    self.assertLen(self.offline, len(names.CHANNELS) + 1)  # + scann_fused
    for name, (ids, scores) in self.offline.items():
      self.assertTrue(np.all(ids[:, :5] > 0), name)  # real lists
      served = self.served[f"{name}/recommend_ids/item_ids"]
      np.testing.assert_array_equal(served, ids, err_msg=name)
      np.testing.assert_allclose(
          self.served[f"{name}/recommend_ids/scores"], scores, rtol=1e-5,
          atol=1e-5, err_msg=name)
      raw = self.served[f"{name}/recommend/item_ids"]
      expected = _raw(np.where(ids > 0, ids, 0), self.dataset.raw_item_ids,
                      self.item_kind)
      np.testing.assert_array_equal(raw, expected, err_msg=name)
      np.testing.assert_array_equal(
          self.served[f"{name}/recommend/scores"],
          self.served[f"{name}/recommend_ids/scores"], err_msg=name)

  def test_unknown_raw_values_read_as_missing(self):
    server = export.load_serving_model(self.paths[names.U2U])
    recommend = server.signatures["recommend"]
    request = {k.split("/", 1)[1]: tf.constant(v[:3])
               for k, v in self.requests.items() if k.startswith("raw/")}
    unknown = dict(request)
    history = request[F.HISTORY].numpy().copy()
    padding = raw_ids.RAW_PADDING[self.item_kind]
    missing = history.copy()
    history[:, 0] = "no such item" if self.item_kind == "string" else 10**9
    missing[:, 0] = padding
    unknown[F.HISTORY] = tf.constant(history)
    unknown["gender"] = tf.constant(["X", "X", "X"])
    known = dict(request, **{F.HISTORY: tf.constant(missing),
                             "gender": tf.constant(["", "", ""])})
    self.assertAllEqual(recommend(**unknown)["item_ids"],
                        recommend(**known)["item_ids"])

  def test_export_metadata(self):
    with open(os.path.join(self.export_dir, export.EXPORT_INFO_FILENAME)) as f:
      info = json.load(f)
    self.assertEqual(info["channel_config"], _CONFIG.to_dict())
    self.assertEqual(info["raw_ids"]["user_inputs"]["age"], "int64")
    self.assertEqual(info["raw_ids"]["user_inputs"]["gender"], "string")
    self.assertEqual(sorted(info["models"]),
                     sorted(("user_tower", "item_tower") + names.CHANNELS))
    self.assertFalse(info["models"]["u2i"]["needs_scann"])
    self.assertIn("recommend_ids", info["models"]["fused"]["signatures"])
    with self.assertRaisesRegex(FileNotFoundError, "No SavedModel"):
      export.load_serving_model(self.tmp.name)
