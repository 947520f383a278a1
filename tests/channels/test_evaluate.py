"""Tests for per-channel evaluation, grid search, runs.evaluate_run, the binary.

One tiny run is trained once (synthetic data written as a custom CSV, so
``training.load_run`` can reload it like any run).
"""

import contextlib
import importlib.util
import io
import json
import os
import pathlib
import tempfile

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from mic_tf import baselines
from mic_tf import channels
from mic_tf import indexes
from mic_tf import metrics
from mic_tf import runs
from mic_tf import training
from mic_tf.channels import tuning as channel_tuning
from mic_tf.features import prepare_data
from mic_tf.models.config import MICConfig
from mic_tf.testing.synthetic import synthetic_dataset

_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _write_interactions(path):
  ds = synthetic_dataset(num_users=200, num_items=80, length=15, seed=3)
  rows = [(u, int(i), t) for u, seq in enumerate(ds.sequences)
          for t, i in enumerate(seq)]
  pd.DataFrame(rows, columns=["user", "item", "timestamp"]).to_csv(
      path, index=False)


def _tiny_config(csv, output_dir):
  return training.ExperimentConfig.from_settings(
      dataset="custom", dataset_kwargs={"path": csv}, epochs=1,
      batch_size=128, embedding_dim=8, output_dim=8, hidden_units=(16,),
      maxlen=8, max_item_users=4, eval_batch_size=64,
      mic=MICConfig.base(projection_dim=8), output_dir=output_dir)


def _load_binary():
  spec = importlib.util.spec_from_file_location(
      "evaluate_binary", _ROOT / "experiments" / "evaluate.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.slow
class EvaluateChannelsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.TemporaryDirectory()
    csv = os.path.join(cls.tmp.name, "interactions.csv")
    _write_interactions(csv)
    cls.run_dir = os.path.join(cls.tmp.name, "run")
    config = _tiny_config(csv, cls.run_dir)
    cls.results = training.run_experiment(config, verbose=0)
    cls.model = cls.results["model"]
    cls.prepared = prepare_data(config)
    cls.assets = channels.ChannelAssets(
        cls.model, cls.prepared.tables, cls.prepared.dataset)

  @classmethod
  def tearDownClass(cls):
    cls.tmp.cleanup()
    super().tearDownClass()

  def test_u2i_exact_reproduces_the_run_metrics(self):
    report = runs.evaluate_run(self.run_dir, "test", ("u2i",), "exact",
                               write=False)
    with open(os.path.join(self.run_dir, "metrics.json")) as f:
      expected = json.load(f)["test"]
    got = report["results"]["exact"]["u2i"]
    self.assertEqual(sorted(got), sorted(expected))
    for name, value in expected.items():
      self.assertAlmostEqual(got[name], value, places=9, msg=name)

  def test_every_channel_and_scann_recall(self):
    approximate = indexes.ScannConfig(num_neighbours=10).with_ah(
    ).with_reorder(20)
    results, lists = channels.evaluate_channels(
        self.assets, self.prepared.test, index="scann",
        scann_configs={"items": approximate})
    self.assertEqual(sorted(results), sorted(channels.CHANNELS))
    for name in channels.CHANNELS:
      self.assertBetween(results[name]["scann_recall@50"], 0.0, 100.0)
      self.assertEqual(lists[name].shape, (len(self.prepared.test.users), 50))
    # U2U and I2I use ScaNN's exact float scoring at this size.
    self.assertEqual(results["u2u"]["scann_recall@50"], 100.0)
    self.assertEqual(results["i2i"]["scann_recall@50"], 100.0)
    for metrics in results.values():
      self.assertBetween(metrics["recall@50"], 0.0, 100.0)
      self.assertGreaterEqual(metrics["hr@50"], metrics["hr@20"])

  def _direct(self, config, channel, metric):
    results, _ = channels.evaluate_channels(
        self.assets, self.prepared.valid, (channel,), config=config)
    return results[channel][metric]

  def test_grid_search_on_valid_users(self):
    grid = {"num_neighbours": [3, 20], "alpha": [0.0, 1.0]}
    result = channels.grid_search(self.assets, self.prepared.valid, "u2u",
                                  grid)
    self.assertLen(result.rows, 4)
    best = max(row["recall@50"] for row in result.rows)
    self.assertEqual(result.best_value, best)
    self.assertEqual(result.best_config.u2u.num_neighbours,
                     result.best_params["num_neighbours"])
    self.assertEqual(result.best_config.u2u.alpha,
                     result.best_params["alpha"])
    # A grid point equals a direct evaluation of a channel with its settings.
    config = channels.ChannelConfig(
        u2u=channels.U2UConfig(num_neighbours=3, alpha=1.0))
    row = next(r for r in result.rows
               if r["num_neighbours"] == 3 and r["alpha"] == 1.0)
    self.assertAlmostEqual(row["recall@50"],
                           self._direct(config, "u2u", "recall@50"), places=9)

  def test_u2i_history_weight_grid(self):
    valid = self.prepared.valid
    result = channels.grid_search(self.assets, valid, "u2i",
                                  {"history_weight": [0.0, 1.0]})
    self.assertLen(result.rows, 2)
    for row in result.rows:
      config = channels.ChannelConfig(
          u2i=channels.U2IConfig(history_weight=row["history_weight"]))
      self.assertAlmostEqual(row["recall@50"],
                             self._direct(config, "u2i", "recall@50"),
                             places=9)
    # Weight 0 is the paper's U2I, the channel of the run's own metrics.
    plain = channels.evaluate_u2i(self.model, valid)
    self.assertAlmostEqual(result.rows[0]["recall@50"], plain["recall@50"],
                           places=9)
    self.assertNotEqual(result.rows[0]["recall@50"],
                        result.rows[1]["recall@50"])

  def test_grid_points_sharing_candidates_equal_their_own_channel(self):
    # Points that differ in alpha alone are ranked from one aggregation of
    # their candidates (rank_blends): each list must still be the one a
    # channel built with that point returns, to the last id.
    valid = self.prepared.valid
    grids = {"u2u": {"num_neighbours": [3, 20], "gamma": [2.0],
                     "alpha": [0.0, 0.3, 1.0]},
             "i2i": {"num_similar_items": [2, 6], "alpha": [1.0, 0.0, 0.6]}}
    for channel, grid in grids.items():
      result = channels.grid_search(self.assets, valid, channel, grid)
      self.assertLen(result.rows, len(grid["alpha"]) * 2)
      for row in result.rows:
        params = {k: row[k] for k in grid}
        config = channels.ChannelConfig().replace(**{
            channel: (channels.U2UConfig if channel == "u2u"
                      else channels.I2IConfig)(**params)})
        self.assertEqual(
            {k: row[k] for k in row if k not in grid},
            channels.evaluate_channels(self.assets, valid, (channel,),
                                       config=config)[0][channel],
            msg=f"{channel} {params}")

  def test_grid_search_i2i_and_fusion(self):
    valid = self.prepared.valid
    i2i = channels.grid_search(self.assets, valid, "i2i",
                               {"num_history_items": [2, 8],
                                "recency_decay": [0.5, 1.0]})
    self.assertLen(i2i.rows, 4)
    config = channels.ChannelConfig(i2i=channels.I2IConfig(
        num_history_items=2, recency_decay=0.5))
    self.assertAlmostEqual(i2i.rows[0]["recall@20"],
                           self._direct(config, "i2i", "recall@20"), places=9)
    # The default rules over each channel alone and pairs (the default grid
    # adds triples; the main job's test runs that one).
    grid = dict(channels.DEFAULT_GRIDS["fused"],
                weights=channel_tuning._fusion_weights(largest=2))
    self.assertLess(len(grid["weights"]),
                    len(channels.DEFAULT_GRIDS["fused"]["weights"]))
    fused = channels.grid_search(self.assets, valid, "fused", grid,
                                 prior_margin=None)
    # Every channel alone is a candidate: the fusion never loses to one.
    singles, _ = channels.evaluate_channels(self.assets, valid,
                                            channels.FUSABLE)
    best_single = max(m["recall@50"] for m in singles.values())
    self.assertGreaterEqual(fused.best_value, best_single)
    self.assertAlmostEqual(fused.summary["best_single_value"], best_single,
                           places=9)
    self.assertEqual(fused.summary["mix_wins"],
                     fused.summary["best_mix_value"] > best_single)
    # By default: the grid's best rule, refined, on all valid users.
    grid_rows = [r for r in fused.rows if not r.get("refined")]
    self.assertEqual(fused.summary["family"], "refined")
    self.assertEqual(fused.summary["family_values"], {})
    self.assertGreaterEqual(fused.best_value, fused.summary["grid_best_value"])
    self.assertEqual(fused.summary["grid_best_value"],
                     max(r["recall@50"] for r in grid_rows))
    self.assertEqual(fused.summary["channels_used"],
                     list(fused.best_config.fusion.channels))
    # The chosen fusion, as a fused channel, scores what the search said.
    self.assertAlmostEqual(
        fused.best_value,
        self._direct(fused.best_config, "fused", "recall@50"), places=9)
    # With folds: the family with the best held-out metric chose; within
    # it, the rule best on all valid users (refined for "refined").
    folded = channels.grid_search(self.assets, valid, "fused", grid,
                                  fusion_folds=5, prior_margin=None)
    summary = folded.summary
    family_values = summary["family_values"]
    self.assertEqual(summary["folds"], 5)
    self.assertEqual(summary["family"],
                     max(family_values, key=family_values.get))
    sizes = [len(r["weights"]) for r in grid_rows]
    limit = {"single": 1, "pairs": 2}.get(summary["family"], 3)
    if summary["family"] == "refined":
      self.assertEqual(folded.best_value, fused.best_value)
    else:
      self.assertEqual(folded.best_value,
                       max(r["recall@50"] for r, n in zip(grid_rows, sizes)
                           if n <= limit))
      self.assertFalse(summary["refined"])
    self.assertAlmostEqual(
        folded.best_value,
        self._direct(folded.best_config, "fused", "recall@50"), places=9)
    # By default the prior rule is served unless the searched rule beats
    # it by PRIOR_MARGIN standard errors on the valid users.
    default = channels.grid_search(self.assets, valid, "fused", grid)
    summary = default.summary
    prior = channels.ChannelConfig(fusion=channels.PRIOR_FUSION)
    self.assertAlmostEqual(summary["prior_value"],
                           self._direct(prior, "fused", "recall@50"),
                           places=9)
    self.assertEqual(summary["search_minus_prior"] > channels.PRIOR_MARGIN *
                     summary["search_minus_prior_se"],
                     not summary["kept_prior"])
    self.assertAlmostEqual(summary["search_minus_prior"],
                           fused.best_value - summary["prior_value"],
                           places=9)
    if summary["kept_prior"]:
      self.assertEqual(default.best_config.fusion, channels.PRIOR_FUSION)
      self.assertEqual(default.best_value, summary["prior_value"])
    else:
      self.assertEqual(default.best_config.fusion, fused.best_config.fusion)
    self.assertAlmostEqual(
        default.best_value,
        self._direct(default.best_config, "fused", "recall@50"), places=9)
    with self.assertRaisesRegex(ValueError, "not U2UConfig fields"):
      channels.grid_search(self.assets, valid, "u2u", {"beta": [1]})
    with self.assertRaisesRegex(ValueError, "metric"):
      channels.grid_search(self.assets, valid, "u2u", {"alpha": [1.0]},
                           metric="recall@100")

  def test_classical_channels_equal_the_reference_rows(self):
    test = self.prepared.test
    results, _ = channels.evaluate_channels(
        self.assets, test, channels.CLASSICAL_CHANNELS)
    train = self.assets.train_sequences
    num_items = self.prepared.dataset.num_items
    for name, model in (("itemknn", baselines.ItemKNN(num_items, 100)),
                        ("userknn", baselines.UserKNN(num_items, 50)),
                        ("ease", baselines.EASE(num_items, 500.0))):
      ids = model.fit(train).retrieve(test.histories, 50)
      want = metrics.retrieval_metrics(ids, test.targets, (20, 50))
      for metric, value in want.items():
        self.assertAlmostEqual(results[name][metric], value, places=6,
                               msg=f"{name} {metric}")

  def test_classical_grid_search_and_ease_left_out(self):
    valid = self.prepared.valid
    result = channels.grid_search(self.assets, valid, "ease",
                                  {"l2": [10.0, 1000.0]})
    self.assertLen(result.rows, 2)
    self.assertEqual(result.best_config.ease.l2, result.best_params["l2"])
    small = channels.ChannelConfig(ease=channels.EASEConfig(max_items=10))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      config, tuned = channels.tune_channels(
          self.assets, valid, {"ease": {"l2": [10.0]},
                               "fused": {"weights": [[["u2i", 1.0]],
                                                     [["ease", 1.0]]]}},
          small)
      report = runs.evaluate_run(self.run_dir, "valid",
                                 ("u2i", "ease"), channel_config=small,
                                 write=False)
    self.assertNotIn("ease", tuned)
    self.assertEqual(tuned["fused"].summary["left_out"], ["ease"])
    self.assertNotIn("ease", config.fusion.channels)
    self.assertEqual(report["left_out"], ["ease"])
    self.assertEqual(list(report["results"]["exact"]), ["u2i"])
    self.assertIn("EASE left out", out.getvalue())
    with self.assertRaisesRegex(ValueError, "EASE left out"):
      channels.build_channels(self.assets, ("ease",), config=small)

  def test_export_serves_the_tuned_settings(self):
    grid = {"u2u": {"num_neighbours": [3, 7]},
            "fused": {"weights": [[["u2u", 1.0]], [["ease", 1.0]]]}}
    report = runs.evaluate_run(self.run_dir, "valid", ("u2u", "fused"),
                               tune_grids=grid,
                               report_name="channels_tuned.json")
    export_dir = os.path.join(self.tmp.name, "export")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      runs.export_run(self.run_dir, export_dir, ("fused",), k=20)
    with open(os.path.join(export_dir, "export.json")) as f:
      info = json.load(f)
    path = os.path.join(self.run_dir, "channels_tuned.json")
    self.assertEqual(info["channel_config_source"], path)
    self.assertEqual(info["channel_config"], report["channel_config"])
    self.assertIn(f"tuned on valid users in {path}", out.getvalue())
    # --channel_config overrides; a run without a tuned report: defaults.
    given = channels.ChannelConfig()
    runs.export_run(self.run_dir, export_dir, ("u2i",), k=20,
                    channel_config=given)
    with open(os.path.join(export_dir, "export.json")) as f:
      self.assertEqual(json.load(f)["channel_config_source"], "given")
    os.remove(path)
    config, source = runs.tuned_config(self.tmp.name)
    self.assertIsNone(source)
    self.assertEqual(config, channels.ChannelConfig())

  def test_i2i_similarity_space(self):
    valid = self.prepared.valid
    result = channels.grid_search(self.assets, valid, "i2i",
                                  {"space": ["item", "shared"],
                                   "alpha": [1.0]})
    self.assertEqual([row["space"] for row in result.rows],
                     ["item", "shared"])
    for row in result.rows:
      config = channels.ChannelConfig(i2i=channels.I2IConfig(
          space=row["space"], alpha=1.0))
      self.assertAlmostEqual(row["recall@50"],
                             self._direct(config, "i2i", "recall@50"),
                             places=9)
    # The shared space's channel searches the shared-space item vectors.
    built = channels.build_channels(
        self.assets, ("i2i",), 50, config=channels.ChannelConfig(
            i2i=channels.I2IConfig(space="shared")))["i2i"]
    self.assertAllClose(built.item_space.numpy(), self.assets.item_shared)
    with self.assertRaisesRegex(ValueError, "space must be one of"):
      channels.I2IConfig(space="user")

  def test_binary(self):
    binary = _load_binary()
    config = json.dumps({"u2u": {"num_neighbours": 10}})
    grid = json.dumps({"u2u": {"alpha": [0.0, 1.0]}})
    argv = ["evaluate.py", f"--run_dir={self.run_dir}", "--split=valid",
            "--channels=u2i,fused", "--index=both",
            f"--channel_config={config}", f"--tune_grid={grid}"]
    out = io.StringIO()
    with flagsaver.flagsaver():
      flags.FLAGS(argv)
      with contextlib.redirect_stdout(out):
        binary.main(argv[:1])
    with open(os.path.join(self.run_dir, "channels_valid.json")) as f:
      report = json.load(f)
    self.assertEqual(sorted(report["results"]), ["exact", "scann"])
    self.assertEqual(sorted(report["results"]["exact"]), ["fused", "u2i"])
    self.assertEqual(report["channel_config"]["u2u"]["num_neighbours"], 10)
    tuned = report["tuning"]["channels"]["u2u"]
    self.assertLen(tuned["rows"], 2)
    self.assertEqual(report["channel_config"]["u2u"]["alpha"],
                     tuned["best_params"]["alpha"])
    self.assertIn("scann_recall@50", report["results"]["scann"]["u2i"])
    self.assertEqual(report["num_users"], len(self.prepared.valid.users))
    table = out.getvalue()
    self.assertIn("u2u tuned on valid users", table)
    self.assertIn("fused", table)
    self.assertIn("recall@50", table)

  def test_report_name(self):
    report = runs.evaluate_run(self.run_dir, "valid", ("u2i",), "exact",
                               report_name="channels_valid_other.json")
    with open(os.path.join(self.run_dir, "channels_valid_other.json")) as f:
      self.assertEqual(json.load(f)["results"], report["results"])
    with self.assertRaisesRegex(ValueError, "file name ending in .json"):
      runs.evaluate_run(self.run_dir, "valid", ("u2i",), "exact",
                        report_name="../x.json")

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "split"):
      runs.evaluate_run(self.run_dir, split="train")
    with self.assertRaisesRegex(ValueError, "Unknown channel"):
      channels.evaluate_channels(self.assets, self.prepared.test,
                                 channels=("u2x",))
    with self.assertRaisesRegex(FileNotFoundError, "not a run directory"):
      runs.evaluate_run(self.tmp.name)
    with self.assertRaisesRegex(ValueError, "neither"):
      channels.load_channel_config("{not json")


if __name__ == "__main__":
  tf.test.main()
