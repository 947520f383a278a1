"""Export round trip: SavedModels reloaded in a fresh process answer the same.

A tiny model is trained on synthetic data, exported (exact and ScaNN
servers), and the SavedModels are run by tests/export_loader.py in a new
Python process that imports only ScaNN and TensorFlow.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

import numpy as np
import tensorflow as tf

from mic_tf import channels
from mic_tf import export
from mic_tf import features as F
from mic_tf import indexes
from mic_tf import training
from mic_tf.models import encode
from mic_tf.models.config import MICConfig
from mic_tf.testing.synthetic import synthetic_dataset

_LOADER = pathlib.Path(__file__).resolve().parent / "export_loader.py"
_K = 10
_EXACT = ("u2i", "u2u", "i2i", "fused")


def _approximate():
  return indexes.ScannConfig(num_neighbours=_K).with_ah().with_reorder(20)


class ExportTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    config = training.ExperimentConfig(
        dataset="synthetic", epochs=1, batch_size=128, embedding_dim=8,
        output_dim=8, hidden_units=(16,), maxlen=8, max_item_users=4,
        eval_batch_size=64, mic=MICConfig.base(projection_dim=8))
    prepared = training.prepare_data(
        config, synthetic_dataset(num_users=200, num_items=80, length=15,
                                  seed=1))
    cls.model = training.run_experiment(config, prepared, verbose=0)["model"]
    cls.prepared = prepared
    cls.assets = channels.build_channel_assets(cls.model, prepared.tables,
                                               prepared.dataset)
    # Five test users, one with an empty history, one with unknown ids.
    feats = {k: v[:6].copy() for k, v in prepared.test.features.items()}
    feats[F.HISTORY][5] = 0
    cls.known = {k: v.copy() for k, v in feats.items()}
    unknown = {k: v[:1].copy() for k, v in feats.items()}
    unknown[F.HISTORY][0, :3] = [9999, -3, 80]
    unknown["gender"][0] = 99
    cls.unknown_as_missing = {k: v.copy() for k, v in unknown.items()}
    cls.unknown_as_missing[F.HISTORY][0, :3] = 0
    cls.unknown_as_missing["gender"][0] = 0
    cls.features = {k: np.concatenate([feats[k], unknown[k]])
                    for k in feats}
    cls.item_ids = np.array([0, 1, 5, 79, 9999, -2], np.int32)

    modules = export.build_serving_modules(cls.model, cls.assets, _EXACT,
                                           _K)
    # ScaNN servers: approximate (AH + reorder) items for U2I, and ScaNN's
    # exact scoring for the fused server, which holds three searchers and
    # must then answer exactly like the exact one.
    modules["scann_u2i"] = export.ChannelServer(
        cls.model, cls.assets, "u2i", _K, "scann",
        scann_configs={"items": _approximate()})
    modules["scann_fused"] = export.ChannelServer(cls.model, cls.assets,
                                                  "fused", _K, "scann")
    cls.modules = modules
    cls.export_dir = os.path.join(cls.tmp.name, "export")
    paths = export.save_serving_modules(modules, cls.export_dir,
                                        {"note": "test"})
    cls.in_memory = {}
    specs = []
    for name, module in modules.items():
      if name == export.USER_TOWER:
        out = module.user_embedding(cls.features)
        signature = export.USER_SIGNATURE
      elif name == export.ITEM_TOWER:
        out = module.item_embedding(cls.item_ids)
        signature = export.ITEM_SIGNATURE
      else:
        out = module.recommend(cls.features)
        signature = export.RECOMMEND_SIGNATURE
      cls.in_memory[name] = {k: v.numpy() for k, v in out.items()}
      specs.append(f"{name}={paths[name]}:{signature}")

    inputs = os.path.join(cls.tmp.name, "inputs.npz")
    outputs = os.path.join(cls.tmp.name, "outputs.npz")
    np.savez(inputs, **{f"user/{k}": v for k, v in cls.features.items()},
             **{"item/item_id": cls.item_ids})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)
    done = subprocess.run(
        [sys.executable, str(_LOADER), inputs, outputs] + specs,
        capture_output=True, text=True, env=env, timeout=300,
        cwd=cls.tmp.name)
    if done.returncode:
      raise AssertionError(f"export_loader.py failed:\n{done.stderr[-3000:]}")
    with np.load(outputs) as loaded:
      cls.reloaded = {k: loaded[k] for k in loaded.files}

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_fresh_process_answers_equal_in_memory(self):
    self.assertLen(self.in_memory, 8)
    for key, outputs in self.in_memory.items():
      for name, expected in outputs.items():
        got = self.reloaded[f"{key}/{name}"]
        if name == "item_ids":
          np.testing.assert_array_equal(got, expected, err_msg=key)
        else:
          np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6,
                                     err_msg=f"{key}/{name}")

  def test_exact_servers_match_offline_channels(self):
    rows = 6  # the known users
    queries = channels.encode_queries(
        self.model, self.known,
        exclude=[h[h > 0] for h in self.known[F.HISTORY]])
    built = channels.build_channel_indexes(self.assets, "exact")
    offline = channels.retrieve_channels(
        channels.build_channels(self.assets, built), queries, _K)
    for name in _EXACT:
      served = self.in_memory[name]
      np.testing.assert_array_equal(served["item_ids"][:rows],
                                    offline[name][0], err_msg=name)
      np.testing.assert_allclose(served["scores"][:rows], offline[name][1],
                                 rtol=1e-5, atol=1e-5, err_msg=name)

  def test_history_and_padding_never_returned(self):
    history = self.features[F.HISTORY]
    for key, outputs in self.in_memory.items():
      if "item_ids" not in outputs:
        continue
      ids = outputs["item_ids"]
      self.assertEqual(ids.shape, (len(history), _K))
      self.assertFalse(np.any(ids == 0), key)
      self.assertFalse(np.any(ids >= self.model.spec.num_items), key)
      for row, items in zip(ids, history):
        self.assertFalse(np.isin(row, items[items > 0]).any(), key)
        real = row[row > 0]
        self.assertLen(set(real.tolist()), len(real))

  def test_scann_servers(self):
    # ScaNN's exact scoring: the fused server equals the exact one after
    # the round trip (each of its three searchers kept its own data).
    np.testing.assert_array_equal(self.reloaded["scann_fused/item_ids"],
                                  self.in_memory["fused"]["item_ids"])
    # AH + reordering: close to exact.
    approx = self.reloaded["scann_u2i/item_ids"]
    exact = self.in_memory["u2i"]["item_ids"]
    overlap = np.mean([np.isin(e, a).mean() for a, e in zip(approx, exact)])
    self.assertGreater(overlap, 0.8)

  def test_empty_history(self):
    for name in ("u2i", "u2u", "fused", "scann_u2i", "scann_fused"):
      self.assertTrue(np.all(self.in_memory[name]["item_ids"][5] > 0), name)
    self.assertTrue(np.all(self.in_memory["i2i"]["item_ids"][5] == -1))

  def test_unknown_ids_are_read_as_missing(self):
    for name in _EXACT:
      module = self.modules[name]
      got = module.recommend(self.features)["item_ids"].numpy()[-1]
      want = module.recommend(self.unknown_as_missing)["item_ids"].numpy()[0]
      np.testing.assert_array_equal(got, want, err_msg=name)
    items = self.in_memory["item_tower"]["item_shared"]
    np.testing.assert_allclose(items[4], items[0])  # 9999 -> 0
    np.testing.assert_allclose(items[5], items[0])  # -2 -> 0

  def test_towers_match_the_model(self):
    user = self.in_memory["user_tower"]
    np.testing.assert_allclose(
        user["user_shared"][:6],
        encode.encode_users(self.model, self.known, "shared"), atol=1e-6)
    np.testing.assert_allclose(
        user["user_space"][:6],
        encode.encode_users(self.model, self.known, "user"), atol=1e-6)
    item = self.in_memory["item_tower"]
    shared = encode.encode_items(self.model, "shared")
    np.testing.assert_allclose(item["item_shared"][1:4],
                               shared[[1, 5, 79]], atol=1e-6)

  def test_metadata_and_loader(self):
    directory = self.export_dir
    with open(os.path.join(directory, export.EXPORT_INFO_FILENAME)) as f:
      info = json.load(f)
    self.assertEqual(info["signatures"]["u2i"], "recommend")
    self.assertEqual(info["signatures"]["user_tower"], "user_embedding")
    self.assertEqual(info["note"], "test")
    for name, needs in (("u2i", False), ("scann_u2i", True),
                        ("user_tower", False)):
      path = os.path.join(directory, name, export.MODEL_INFO_FILENAME)
      with open(path) as f:
        self.assertEqual(json.load(f)["needs_scann"], needs)
    loaded = export.load_serving_model(os.path.join(directory, "u2u"))
    self.assertIn("recommend", loaded.signatures)
    with self.assertRaisesRegex(FileNotFoundError, "No SavedModel"):
      export.load_serving_model(self.tmp.name)

  def test_bad_requests(self):
    with self.assertRaisesRegex(ValueError, "channels"):
      export.build_serving_modules(self.model, self.assets, ("u2x",))
    with self.assertRaisesRegex(ValueError, "index"):
      export.build_serving_modules(self.model, self.assets, ("u2i",),
                                   index="faiss")
    with self.assertRaisesRegex(ValueError, "k must be"):
      export.build_serving_modules(self.model, self.assets, ("u2i",), k=80)


if __name__ == "__main__":
  tf.test.main()
