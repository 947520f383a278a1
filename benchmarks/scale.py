r"""The whole pipeline at the paper's dataset sizes: wall time and peak RSS.

Runs every stage on the synthetic Amazon-Books (or Taobao) data of
``mic_tf.data.synthetic``, written in the real file formats and read by the
real loaders, and prints one table row per stage with its wall time and the
process's peak resident memory during the stage:

  nice -n 10 python benchmarks/scale.py --scale=1.0 --train_steps=200 \
      --output_json=docs/results/scale_books.json

Stages:

1. generate the files (once; cached in the data dir, not part of the
   pipeline);
2. load + ComiRec protocol;
3. features + tf.data (feature tables, eval users, the training pipeline
   and its first ``--pipeline_batches`` batches);
4. training: for DSSM, DSSM+MIC and DSSM+MIC+mining, ``--train_steps``
   timed steps after ``--warmup_steps`` (``model.fit`` with
   ``steps_per_epoch``), extrapolated to one epoch of the full training set
   (plus, with mining, one bank refresh, which happens once per epoch);
   the evaluated variant (``--eval_model``, DSSM+MIC) trains one whole
   epoch instead (``--eval_full_epoch``), and ``--train_steps=0`` makes
   every variant do so;
5. channel assets: item vectors in both spaces, training users' vectors;
6. per index kind (ScaNN with ``ScannConfig.auto``, calibrated, then
   exact): building the U2I, U2U and I2I channels (their indexes), then
   retrieving the top 50 of every test user in each channel and fusing them
   (quota fusion); right after the ScaNN evaluation, the SavedModel export
   of the towers and the four channel servers (ScaNN inside) from the
   channels just built, which are then freed before the exact run;
7. ScaNN's recall@50 against exact search: the share of each exact
   channel's top-50 list that the ScaNN channel's list holds.

Peak RSS per stage: the kernel's high-water mark (``VmHWM``) is reset at
each stage start through ``/proc/self/clear_refs`` (Linux); the whole-run
peak is the largest stage peak. ``--output_json`` keeps every number.
"""

import dataclasses
import gc
import json
import os
import platform
import shutil
import tempfile
import threading
import time
from typing import Dict, List, Optional

from absl import app
from absl import flags
from absl import logging

import mic_tf  # noqa: F401  (Keras 2 first)
import numpy as np
import tensorflow as tf

from mic_tf import baselines
from mic_tf import channels as channel_lib
from mic_tf import export
from mic_tf import metrics as metric_lib
from mic_tf import names
from mic_tf import pipeline
from mic_tf import run_record
from mic_tf import runs
from mic_tf import training
from mic_tf.channels.evaluate import list_recall
from mic_tf.channels.evaluate import retrieve_users
from mic_tf.config import ExperimentConfig
from mic_tf.data import fetch
from mic_tf.data import protocol
from mic_tf.data import registry
from mic_tf.data import synthetic
from mic_tf.features import prepare_data
from mic_tf.features import Prepared
from mic_tf.mining import MiningCallback
from mic_tf.mining import MiningConfig
from mic_tf.models.build import build_model
from mic_tf.models.build import build_variables
from mic_tf.models.config import MICConfig

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "synthetic-books",
                  ["synthetic-books", "synthetic-taobao"], "Data shape.")
flags.DEFINE_float("scale", 1.0, "Fraction of the real dataset's size.")
flags.DEFINE_integer("seed", 0, "Data and model seed.")
flags.DEFINE_string("data_dir", None, "Data cache (default: the mic_tf one).")
flags.DEFINE_integer("maxlen", 20, "History length (ComiRec: 20 for Books).")
flags.DEFINE_integer("max_item_users", 20, "Item user-bag size.")
flags.DEFINE_integer("batch_size", 1024, "Training batch size.")
flags.DEFINE_integer("contrastive_batch_size", 128, "Rows of each batch "
                     "with views and contrastive terms (the README's MIC "
                     "setting); 0 = the whole batch.")
flags.DEFINE_string("optimizer", "auto", "ExperimentConfig.optimizer.")
flags.DEFINE_list("variants", ["dssm", "mic", "mic+nn"],
                  "Training variants: dssm, mic (DSSM+MIC, all terms), "
                  "mic+nn (DSSM+MIC with mining of uu, ii, ui).")
flags.DEFINE_integer("warmup_steps", 20, "Untimed steps (tracing).")
flags.DEFINE_integer("train_steps", 200, "Timed steps per variant (0: one "
                     "whole epoch).")
flags.DEFINE_integer("pipeline_batches", 200, "Batches pulled from the "
                     "tf.data pipeline in stage 3.")
flags.DEFINE_string("eval_model", "mic", "Variant whose model is evaluated "
                    "and exported.")
flags.DEFINE_bool("eval_full_epoch", True, "Train the evaluated variant for "
                  "one whole epoch (measured, not extrapolated), so the "
                  "evaluated embeddings are trained ones.")
flags.DEFINE_bool("mostpop", True, "Also score MostPopular on test users.")
flags.DEFINE_string("export_dir", None, "Where to export (default: a "
                    "temporary folder, deleted afterwards).")
flags.DEFINE_string("output_json", None, "Write every number here.")
flags.DEFINE_enum("until", "export", ["data", "train", "eval", "export"],
                  "Last group of stages to run.")


# ------------------------------------------------------------------ memory

_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kib(field: str) -> Optional[int]:
  try:
    with open("/proc/self/status") as f:
      for line in f:
        if line.startswith(field + ":"):
          return int(line.split()[1])
  except OSError:
    pass
  return None


class PeakRss:
  """Peak resident memory over a stretch of code.

  Resets the kernel's high-water mark (``VmHWM``) at the start when
  ``/proc/self/clear_refs`` allows it; otherwise samples ``VmRSS`` every
  50 ms (which can miss short spikes) and never reports less than the
  current RSS.
  """

  def __init__(self):
    self._reset_ok = False
    self._samples = 0
    self._stop = threading.Event()
    self._thread = None

  def __enter__(self):
    try:
      with open(_CLEAR_REFS, "w") as f:
        f.write("5")
      self._reset_ok = True
    except OSError:
      self._reset_ok = False
      self._samples = _status_kib("VmRSS") or 0
      self._thread = threading.Thread(target=self._sample, daemon=True)
      self._thread.start()
    return self

  def _sample(self):
    while not self._stop.wait(0.05):
      self._samples = max(self._samples, _status_kib("VmRSS") or 0)

  def __exit__(self, *exc):
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
    if self._reset_ok:
      self.peak_kib = _status_kib("VmHWM") or 0
    else:
      self.peak_kib = max(self._samples, _status_kib("VmRSS") or 0)
    self.method = "VmHWM reset" if self._reset_ok else "sampled VmRSS"
    return False


@dataclasses.dataclass
class Row:
  stage: str
  seconds: float
  peak_gib: float
  note: str = ""
  extrapolated: bool = False


class Recorder:
  """Times stages and keeps their rows."""

  def __init__(self):
    self.rows: List[Row] = []
    self.extra: Dict[str, object] = {}
    self.method = None

  def stage(self, name: str):
    recorder = self

    class _Stage:

      def __enter__(self):
        self.note = ""
        self.seconds = None  # set to override the measured time
        self.extrapolated = False
        self.rss = PeakRss().__enter__()
        self.start = time.perf_counter()
        logging.info("stage %s ...", name)
        return self

      def __exit__(self, *exc):
        elapsed = time.perf_counter() - self.start
        self.rss.__exit__(*exc)
        recorder.method = self.rss.method
        if exc[0] is None:
          seconds = elapsed if self.seconds is None else self.seconds
          recorder.rows.append(Row(name, seconds, self.rss.peak_kib / 2**20,
                                   self.note, self.extrapolated))
          logging.info("stage %s: %.1f s, peak RSS %.2f GiB %s", name,
                       seconds, self.rss.peak_kib / 2**20, self.note)
        return False

    return _Stage()

  def table(self) -> str:
    lines = ["| stage | wall time | peak RSS (GiB) | notes |",
             "|---|---|---|---|"]
    for r in self.rows:
      t = _fmt_seconds(r.seconds) + (" (extrapolated)" if r.extrapolated
                                     else "")
      lines.append(f"| {r.stage} | {t} | {r.peak_gib:.2f} | {r.note} |")
    return "\n".join(lines)


def _fmt_seconds(s: float) -> str:
  if s >= 120:
    return f"{s / 60:.1f} min"
  return f"{s:.1f} s"


# ------------------------------------------------------------------ stages

def _experiment_config(variant: str) -> ExperimentConfig:
  rows = FLAGS.contrastive_batch_size or None
  mining = MiningConfig.off()
  if variant == "dssm":
    mic = MICConfig.base()
  elif variant in ("mic", "mic+nn"):
    mic = MICConfig(contrastive_batch_size=rows)
    if variant == "mic+nn":
      mining = MiningConfig()
  else:
    raise ValueError(f"Unknown variant {variant!r}; use dssm, mic, mic+nn.")
  return ExperimentConfig.from_settings(
      dataset=FLAGS.dataset, maxlen=FLAGS.maxlen,
      max_item_users=FLAGS.max_item_users, batch_size=FLAGS.batch_size,
      optimizer=FLAGS.optimizer, mic=mic, mining=mining, seed=FLAGS.seed,
      data_seed=FLAGS.seed)


class _StepTimer(tf.keras.callbacks.Callback):
  """Wall time of the batches after the warm-up ones."""

  def __init__(self, warmup: int):
    super().__init__()
    self.warmup = warmup
    self.start = None
    self.end = None
    self.timed = 0

  def on_train_batch_end(self, batch, logs=None):
    if batch + 1 == self.warmup:
      self.start = time.perf_counter()
    elif batch + 1 > self.warmup:
      self.end = time.perf_counter()
      self.timed = batch + 1 - self.warmup


def _train(recorder: Recorder, variant: str, prepared: Prepared,
           steps_per_epoch: int, full_epoch: bool):
  config = _experiment_config(variant)
  label = {"dssm": "DSSM", "mic": "DSSM+MIC",
           "mic+nn": "DSSM+MIC+mining"}[variant]
  tf.keras.utils.set_random_seed(FLAGS.seed)
  with recorder.stage(f"train one epoch: {label}") as st:
    build_start = time.perf_counter()
    model = build_model(config, prepared.tables, prepared.dataset)
    build_variables(model, prepared.tables)
    build_s = time.perf_counter() - build_start
    data = pipeline.training_dataset(
        prepared.tables, prepared.dataset,
        batch_size=config.training.batch_size, seed=config.training.seed)
    timer = _StepTimer(FLAGS.warmup_steps)
    callbacks = [timer]
    mining = None
    if config.mining.enabled:
      mining = MiningCallback(verbose=True)
      callbacks.insert(0, mining)
    steps = (steps_per_epoch if full_epoch
             else FLAGS.warmup_steps + FLAGS.train_steps)
    fit_start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=callbacks,
              verbose=0)
    fit_s = time.perf_counter() - fit_start
    refresh_s = mining.timings[0]["total_s"] if mining else 0.0
    if full_epoch:
      st.note = f"one whole epoch, {steps_per_epoch} steps"
      epoch_s = fit_s
    else:
      per_step = (timer.end - timer.start) / timer.timed
      epoch_s = per_step * steps_per_epoch + refresh_s
      st.seconds = build_s + epoch_s
      st.extrapolated = True
      st.note = (f"{per_step * 1e3:.0f} ms/step x {steps_per_epoch} steps "
                 f"(timed {timer.timed} steps after {FLAGS.warmup_steps} "
                 f"warm-up)")
    if mining:
      t = mining.timings[0]
      st.note += (f"; bank refresh {t['total_s']:.1f} s (encode "
                  f"{t['encode_s']:.1f}, kNN {t['knn_s']:.1f}, k-means++ "
                  f"{t['kmeans_s']:.1f})")
    recorder.extra[f"train/{variant}"] = {
        "epoch_s": epoch_s, "build_s": build_s, "fit_s": fit_s,
        "refresh_s": refresh_s, "steps_per_epoch": steps_per_epoch,
        "timed_steps": timer.timed,
        "mining_timings": mining.timings if mining else None}
  return model


def _short(config) -> str:
  """A ScannConfig in a few words."""
  parts = []
  if config.num_leaves:
    parts.append(f"tree {config.num_leaves_to_search}/{config.num_leaves} "
                 "leaves")
  parts.append("AH" if config.scoring == "ah" else "exact scoring")
  if config.reorder_num_neighbours:
    parts.append(f"reorder {config.reorder_num_neighbours}")
  return ", ".join(parts)


def _evaluate(recorder: Recorder, model, prepared: Prepared,
              export_servers: bool):
  k = 50
  test = prepared.test
  with recorder.stage("channel assets (item and training-user vectors)") as st:
    assets = channel_lib.ChannelAssets(model, prepared.tables,
                                       prepared.dataset)
    for name in ("item_shared", "item_space", "train_user_space"):
      getattr(assets, name)  # computed once, cached
    st.note = (f"{prepared.dataset.num_items - 1:,} items (two spaces), "
               f"{len(assets.train_sequences):,} training users")
  results = {}
  built = {}
  for kind in ("scann", "exact"):
    with recorder.stage(f"{kind} channel build (indexes)") as st:
      built[kind] = channel_lib.build_channels(
          assets, names.BASE_CHANNELS, k, kind)
      if kind == "scann":
        st.note = "; ".join(
            f"{c}: {_short(i.config)}" for c in names.BASE_CHANNELS
            for i in built[kind][c].searchers)
    with recorder.stage(f"U2I+U2U+I2I+fused, {kind}, all test users") as st:
      for c in names.BASE_CHANNELS:  # trace outside the timed retrievals
        warm = {f: v[:8] for f, v in test.features.items()}
        built[kind][c].retrieve(warm, test.histories[:8])
      times, lists = {}, {}
      for c in names.BASE_CHANNELS:
        t0 = time.perf_counter()
        lists[c] = retrieve_users(built[kind][c], test)
        times[c] = time.perf_counter() - t0
      t0 = time.perf_counter()
      fused = channel_lib.fuse_lists(
          {c: (tf.constant(i), tf.constant(sc)) for c, (i, sc) in
           lists.items()}, channel_lib.FusionConfig(), k)
      lists[names.FUSED] = (fused[0].numpy(), fused[1].numpy())
      times[names.FUSED] = time.perf_counter() - t0
      metrics = {c: metric_lib.retrieval_metrics(lists[c][0], test.targets,
                                                 (20, 50))
                 for c in lists}
      results[kind] = {"metrics": metrics, "seconds": times,
                       "lists": {c: v[0] for c, v in lists.items()}}
      st.note = (f"{len(test.users):,} users: " + ", ".join(
          f"{c} {times[c]:.0f} s (R@50 {metrics[c]['recall@50']:.2f})"
          for c in lists))
    if kind == "scann" and export_servers:
      _export(recorder, model, assets, built[kind])
    # Free each kind's channels before the next: the exact reference run
    # must not pay for the ScaNN indexes' memory.
    del built[kind]
    gc.collect()
  recall = {c: list_recall(results["scann"]["lists"][c],
                           results["exact"]["lists"][c])
            for c in results["exact"]["lists"]}
  recorder.extra["scann_recall@50"] = recall
  recorder.rows.append(Row(
      "ScaNN recall@50 vs exact (share of each exact top-50 list found)",
      0.0, recorder.rows[-1].peak_gib,
      ", ".join(f"{c} {r:.2f}%" for c, r in recall.items())))
  for kind in ("scann", "exact"):
    results[kind].pop("lists")
  recorder.extra["evaluation"] = results


def _export(recorder: Recorder, model, assets, channels):
  export_dir = FLAGS.export_dir or tempfile.mkdtemp(prefix="mic_scale_")
  with recorder.stage("SavedModel export (ScaNN servers)") as st:
    fused = channel_lib.FusedChannel(assets.encoder, channels,
                                     channel_lib.FusionConfig(), 50)
    modules = {runs.USER_TOWER: assets.encoder,
               runs.ITEM_TOWER: channel_lib.ItemEncoder(model),
               **channels, names.FUSED: fused}
    paths = export.export_modules(modules, export_dir, {"benchmark": True})
    size = sum(os.path.getsize(os.path.join(d, f))
               for p in paths.values() for d, _, fs in os.walk(p)
               for f in fs)
    st.note = (f"{len(paths)} SavedModels (towers, U2I, U2U, I2I, fused), "
               f"{size / 2**30:.2f} GiB on disk")
  if not FLAGS.export_dir:
    shutil.rmtree(export_dir, ignore_errors=True)


def main(argv):
  del argv
  recorder = Recorder()
  data_dir = fetch.data_dir(FLAGS.data_dir)
  started = time.perf_counter()
  with recorder.stage("generate files (once, cached)") as st:
    if FLAGS.dataset == "synthetic-books":
      paths = synthetic.books_files(data_dir, FLAGS.scale, FLAGS.seed)
    else:
      paths = {"behavior": synthetic.taobao_file(data_dir, FLAGS.scale,
                                                 FLAGS.seed)}
    st.note = ", ".join(f"{p.name} {p.stat().st_size / 2**30:.2f} GiB"
                        for p in paths.values())
  with recorder.stage("load + ComiRec protocol") as st:
    raw = registry.load_dataset(FLAGS.dataset, data_dir=data_dir,
                                scale=FLAGS.scale, seed=FLAGS.seed)
    dataset = protocol.apply_comirec_protocol(raw)
    del raw
    st.note = (f"{dataset.num_users:,} users, {dataset.num_items - 1:,} "
               f"items, {dataset.num_interactions:,} interactions")
  logging.info("%s", protocol.describe(dataset))
  with recorder.stage("features + tf.data") as st:
    config = _experiment_config("dssm")
    prepared = prepare_data(config, dataset)
    data = pipeline.training_dataset(prepared.tables, dataset,
                                     batch_size=FLAGS.batch_size,
                                     seed=FLAGS.seed)
    num_examples = pipeline.num_training_examples(dataset)
    t0 = time.perf_counter()
    for _ in data.take(FLAGS.pipeline_batches):
      pass
    rate = FLAGS.pipeline_batches / (time.perf_counter() - t0)
    st.note = (f"{num_examples:,} training examples; pipeline alone "
               f"{rate:.0f} batches/s")
  steps_per_epoch = num_examples // FLAGS.batch_size
  if FLAGS.mostpop:
    with recorder.stage("MostPopular, all test users") as st:
      popular = baselines.MostPopular(dataset.num_items)
      popular.fit([dataset.sequences[u] for u in dataset.train_users])
      ids = popular.retrieve(prepared.test.histories, 50)
      mp = metric_lib.retrieval_metrics(ids, prepared.test.targets,
                                        (20, 50))
      recorder.extra["mostpop"] = mp
      st.note = f"R@50 {mp['recall@50']:.2f}"
  variants = list(FLAGS.variants) if FLAGS.until != "data" else []
  if FLAGS.until in ("eval", "export") and FLAGS.eval_model not in variants:
    raise ValueError(f"--eval_model={FLAGS.eval_model} is not among "
                     f"--variants={variants}.")
  # The evaluated model last: the others are freed before the next one.
  variants.sort(key=lambda v: v == FLAGS.eval_model)
  model = None
  for variant in variants:
    full = FLAGS.train_steps == 0 or (FLAGS.eval_full_epoch and
                                      variant == FLAGS.eval_model)
    model = _train(recorder, variant, prepared, steps_per_epoch, full)
    if variant != FLAGS.eval_model:
      del model
      model = None
      gc.collect()
      tf.keras.backend.clear_session()
  if FLAGS.until in ("eval", "export"):
    _evaluate(recorder, model, prepared, FLAGS.until == "export")
  total = time.perf_counter() - started
  peak = max(r.peak_gib for r in recorder.rows)
  header = (f"{FLAGS.dataset} at scale {FLAGS.scale:g} (seed {FLAGS.seed}), "
            f"maxlen {FLAGS.maxlen}, batch {FLAGS.batch_size}, contrastive "
            f"rows {FLAGS.contrastive_batch_size or 'all'}, optimizer "
            f"{FLAGS.optimizer}; {os.cpu_count()} CPUs "
            f"({platform.processor() or platform.machine()}), TensorFlow "
            f"{tf.__version__}; load average at the end "
            f"{os.getloadavg()[0]:.1f}; peak RSS by {recorder.method}")
  print("\n" + header)
  print(recorder.table())
  print(f"\nwhole run {_fmt_seconds(total)}; largest stage peak RSS "
        f"{peak:.2f} GiB")
  if FLAGS.output_json:
    with open(FLAGS.output_json, "w") as f:
      json.dump({"header": header, "rows": [dataclasses.asdict(r)
                                            for r in recorder.rows],
                 "extra": recorder.extra, "total_s": total,
                 "code": run_record.code_version(),
                 "hardware": run_record.hardware(),
                 "flags": {k: getattr(FLAGS, k) for k in (
                     "dataset", "scale", "seed", "maxlen", "max_item_users",
                     "batch_size", "contrastive_batch_size", "optimizer",
                     "variants", "warmup_steps", "train_steps")}},
                f, indent=1, default=float)


if __name__ == "__main__":
  app.run(main)
