r"""Exported channel servers under concurrent raw-id load: speed, errors, memory.

An exported run (``experiments/export.py``, exact and ScaNN) is loaded in a
fresh process that imports TensorFlow, numpy and ScaNN only (no mic_tf), as
a service would. Its U2I, U2U, I2I and fused servers (signature
``recommend``: raw MovieLens ids and raw attribute values in, raw item ids
out) are called from ``--client_threads`` threads, one user a request, for
at most ``--requests`` requests or ``--seconds`` seconds per server. The
requests are drawn with ``--seed`` from four kinds:

* ``user``: a valid or test user's history and attributes, excluding the
  user's whole input history (as the offline protocol does);
* ``unknown``: the same with a third of the history replaced by ids the
  data never had, and unknown attribute values (``"X"``, age 999);
* ``empty``: no history and no attributes;
* ``long_exclude``: a user's history, excluding 1,000 random items (a third
  of the catalogue) besides it.

Per (index, server) the table shows requests served, queries per second,
p50 and p99 latency, errors (exceptions, and lists holding an excluded,
repeated or padding-then-real item), the serving process's RSS after a
threaded warm-up, halfway through the load and after it (growth from mid
to end, once warm, would be a leak), and agreement: every
``--check_every``-th response, taken under load, is compared item for item
with the list the library computes offline for the same request
(``Channel.retrieve``, the evaluation's numpy path, in the parent
process).

Usage (the committed table; the run and exports come from the commands in
docs/results/serving_load.txt):

  python benchmarks/serving_load.py --run_dir=RUN \
      --exports=exact=EXPORT_EXACT,scann=EXPORT_SCANN \
      --output=docs/results/serving_load.txt

``--quick`` serves 200 requests per server after 100 warm-up requests (a
smoke test).
"""

import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List

from absl import app
from absl import flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "The trained run the exports come "
                    "from (offline lists are computed from it).")
flags.DEFINE_list("exports", [], "index=export_dir pairs, e.g. "
                  "exact=/x/export_exact,scann=/x/export_scann.")
flags.DEFINE_list("servers", ["u2i", "u2u", "i2i", "fused"],
                  "Servers to load.")
flags.DEFINE_integer("requests", 3000, "Most requests per server.")
flags.DEFINE_float("seconds", 30.0, "Most seconds of load per server.")
flags.DEFINE_integer("client_threads", 4, "Concurrent client threads.")
flags.DEFINE_integer("tf_threads", 1, "TensorFlow intra- and inter-op "
                     "threads in the serving process (0: its default).")
flags.DEFINE_integer("pool", 1000, "Distinct requests drawn.")
flags.DEFINE_integer("warmup", None, "Threaded warm-up requests per server "
                     "(default: one pass over the request pool, so the "
                     "measured load repeats requests already served).")
flags.DEFINE_integer("check_every", 10, "Compare every n-th response with "
                     "the offline list.")
flags.DEFINE_integer("seed", 0, "Seed of the requests.")
flags.DEFINE_bool("quick", False, "200 requests per server.")
flags.DEFINE_string("output", None, "Also write the report here.")
# The serving process (started by this script).
flags.DEFINE_string("serve", None, "Internal: serve the requests in this "
                    "npz file (needs --export_dir and --result).")
flags.DEFINE_string("export_dir", None, "Internal: the export to serve.")
flags.DEFINE_string("result", None, "Internal: where to write results.")

KINDS = ("user", "unknown", "empty", "long_exclude")
KIND_SHARE = (0.4, 0.2, 0.2, 0.2)
LONG_EXCLUDE = 1000


def rss_mib() -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 1024
  return float("nan")


# ---------------------------------------------------------------- parent


def build_requests(prepared, rng: np.random.Generator, pool: int,
                   item_kind: str, field_kinds: Dict[str, str]):
  """Raw requests, and the same requests in internal ids (offline)."""
  from mic_tf import features as F  # pylint: disable=g-import-not-at-top
  from mic_tf.channels import raw_ids  # pylint: disable=g-import-not-at-top
  dataset, spec = prepared.dataset, prepared.tables.spec
  users = [prepared.valid, prepared.test]
  feats = {k: np.concatenate([u.features[k] for u in users])
           for k in spec.user_field_names}
  histories = [h for u in users for h in u.histories]
  n_users = len(histories)
  num_items = spec.num_items
  pad_item = raw_ids.RAW_PADDING[item_kind]

  def raw_item(i):
    return pad_item if i <= 0 else (
        str(dataset.raw_item_ids[i]) if item_kind == raw_ids.STRING
        else int(dataset.raw_item_ids[i]))

  def unknown_item(j):
    return f"unknown-{j}" if item_kind == raw_ids.STRING else 10**9 + j

  def raw_attr(name, code):
    kind = field_kinds[name]
    if code <= 0:
      return raw_ids.RAW_PADDING[kind]
    value = dataset.user_vocabs[name][code]
    return int(value) if kind == raw_ids.INT64 else str(value)

  unknown_attr = {raw_ids.STRING: "X", raw_ids.INT64: 999}
  kinds = rng.choice(len(KINDS), size=pool, p=KIND_SHARE)
  raw, internal = [], []
  for r in range(pool):
    kind = KINDS[kinds[r]]
    u = int(rng.integers(n_users))
    hist = feats[F.HISTORY][u].astype(np.int64)
    attrs = {k: int(feats[k][u]) for k in spec.user_field_names
             if k != F.HISTORY}
    exclude = [int(i) for i in histories[u]]
    if kind == "unknown":
      hist = hist.copy()
      real = np.nonzero(hist > 0)[0]
      swap = rng.choice(real, size=max(1, len(real) // 3), replace=False)
      raw_hist = [raw_item(i) for i in hist]
      for j, pos in enumerate(swap):
        raw_hist[pos] = unknown_item(j)
        hist[pos] = 0
      raw_attrs = {k: unknown_attr[field_kinds[k]] for k in attrs}
      attrs = {k: 0 for k in attrs}
      raw_exclude = [raw_item(i) for i in exclude] + [unknown_item(99)]
      exclude = exclude + [0]
    elif kind == "empty":
      hist = np.zeros_like(hist)
      raw_hist = [pad_item] * len(hist)
      attrs = {k: 0 for k in attrs}
      raw_attrs = {k: raw_ids.RAW_PADDING[field_kinds[k]] for k in attrs}
      exclude, raw_exclude = [], []
    else:
      raw_hist = [raw_item(i) for i in hist]
      raw_attrs = {k: raw_attr(k, c) for k, c in attrs.items()}
      if kind == "long_exclude":
        extra = rng.choice(np.arange(1, num_items), size=LONG_EXCLUDE,
                           replace=False)
        exclude = exclude + [int(i) for i in extra]
      raw_exclude = [raw_item(i) for i in exclude]
    raw.append({"kind": kind, F.HISTORY: raw_hist, **raw_attrs,
                "exclude": raw_exclude})
    internal.append({"features": {F.HISTORY: hist, **attrs},
                     "exclude": np.asarray(exclude, np.int64)})
  return raw, internal, raw_item


def offline_lists(run_dir: str, exports: Dict[str, str],
                  servers: List[str], pool: int, seed: int):
  """Requests and each (index, server)'s offline raw lists."""
  import mic_tf  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  from mic_tf import training  # pylint: disable=g-import-not-at-top

  _, prepared, model = training.load_run(run_dir)
  infos = {}
  for index, export_dir in exports.items():
    with open(os.path.join(export_dir, "export.json")) as f:
      infos[index] = json.load(f)
    made_from = infos[index].get("run_dir")
    if made_from and os.path.abspath(made_from) != os.path.abspath(run_dir):
      raise SystemExit(f"serving_load.py: error: {export_dir} was exported "
                       f"from {made_from}, not --run_dir={run_dir}.")
  first = next(iter(infos.values()))
  kinds = first["raw_ids"]
  rng = np.random.default_rng(seed)
  raw, internal, raw_item = build_requests(
      prepared, rng, pool, kinds["item_ids"],
      {k: v for k, v in kinds["user_inputs"].items() if k != "history"})
  names_ = prepared.tables.spec.user_field_names
  features = {k: np.stack([np.asarray(r["features"][k]) for r in internal])
              for k in names_}
  excludes = [r["exclude"] for r in internal]
  assets = channels.ChannelAssets(model, prepared.tables, prepared.dataset)
  expected = {}
  for index, info in infos.items():
    config = channels.ChannelConfig.from_dict(info["channel_config"])
    built = channels.build_channels(assets, servers, info["k"], info["index"],
                                    config, info["exclude_history"])
    for server in servers:
      ids, _ = built[server].retrieve(features, excludes)
      expected[(index, server)] = [[raw_item(int(i)) for i in row]
                                   for row in ids]
  return raw, expected


def run_parent():
  exports = dict(e.split("=", 1) for e in FLAGS.exports)
  if not FLAGS.run_dir or not exports:
    raise SystemExit("serving_load.py: error: pass --run_dir and --exports="
                     "exact=DIR[,scann=DIR].")
  requests = 200 if FLAGS.quick else FLAGS.requests
  warmup = FLAGS.warmup if FLAGS.warmup is not None else (
      100 if FLAGS.quick else FLAGS.pool)
  started = time.monotonic()
  raw, expected = offline_lists(FLAGS.run_dir, exports, FLAGS.servers,
                                FLAGS.pool, FLAGS.seed)
  results = {}
  with tempfile.TemporaryDirectory() as tmp:
    for index, export_dir in exports.items():
      path = os.path.join(tmp, f"{index}.json")
      with open(path, "w") as f:
        json.dump({"requests": raw,
                   "expected": {s: expected[(index, s)]
                                for s in FLAGS.servers}}, f)
      out = os.path.join(tmp, f"{index}.result.json")
      env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
      env.pop("TF_USE_LEGACY_KERAS", None)
      cmd = [sys.executable, os.path.abspath(__file__), f"--serve={path}",
             f"--export_dir={export_dir}", f"--result={out}",
             f"--servers={','.join(FLAGS.servers)}",
             f"--requests={requests}", f"--seconds={FLAGS.seconds}",
             f"--client_threads={FLAGS.client_threads}",
             f"--tf_threads={FLAGS.tf_threads}", f"--warmup={warmup}",
             f"--check_every={FLAGS.check_every}", f"--seed={FLAGS.seed}"]
      done = subprocess.run(cmd, env=env, cwd=tmp)
      if done.returncode:
        raise SystemExit(f"serving_load.py: error: the serving process of "
                         f"{index} failed (exit {done.returncode}).")
      with open(out) as f:
        results[index] = json.load(f)
  report = format_report(results, raw, requests, warmup,
                         time.monotonic() - started)
  print(report)
  if FLAGS.output:
    with open(FLAGS.output, "w") as f:
      f.write(report + "\n")


def format_report(results, raw, requests, warmup, wall) -> str:
  from mic_tf import run_record  # pylint: disable=g-import-not-at-top
  shares = {k: sum(r["kind"] == k for r in raw) for k in KINDS}
  cols = ["index", "server", "requests", "QPS", "p50 ms", "p99 ms", "errors",
          "RSS start", "RSS mid", "RSS end", "agree"]
  rows = []
  for index, res in results.items():
    for server, r in res["servers"].items():
      rows.append([index, server, str(r["requests"]), f"{r['qps']:.1f}",
                   f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                   str(r["errors"]), f"{r['rss_start_mib']:.1f}",
                   f"{r['rss_mid_mib']:.1f}", f"{r['rss_end_mib']:.1f}",
                   f"{r['agree']}/{r['checked']}"])
  widths = [max(len(x[i]) for x in [cols] + rows) for i in range(len(cols))]
  fmt = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths)))
  args = " ".join(a for a in sys.argv[1:] if not a.startswith("--output"))
  lines = [
      f"# python benchmarks/serving_load.py {args}",
      f"# hardware: {run_record.hardware_line()}",
      f"# {FLAGS.client_threads} client threads, TensorFlow threads "
      f"{FLAGS.tf_threads or 'default'}, one user a request, at most "
      f"{requests} requests or {FLAGS.seconds:g} s per server after "
      f"{warmup} warm-up requests; request pool {len(raw)} "
      f"(seed {FLAGS.seed}): " + ", ".join(f"{k} {v}" for k, v in
                                            shares.items()),
      "# RSS (MiB) of the serving process, once every server of the index "
      "is loaded: after this server's warm-up (start), halfway through its "
      "load (mid) and after it (end); agree: sampled responses, taken under "
      "load, equal to the offline list item for item",
  ]
  for index, res in results.items():
    lines.append(f"# {index}: RSS {res['rss_import_mib']:.1f} MiB after "
                 f"imports, {res['rss_loaded_mib']:.1f} MiB after loading; "
                 f"load {res['load_seconds']:.1f} s")
  lines += [f"# wall time {wall:.0f} s", "", fmt(cols)] + [fmt(r)
                                                          for r in rows]
  mism = [f"{i}/{s}: {m}" for i, res in results.items()
          for s, r in res["servers"].items() for m in r["mismatches"][:3]]
  errs = [f"{i}/{s}: {e}" for i, res in results.items()
          for s, r in res["servers"].items() for e in r["error_samples"][:3]]
  if mism:
    lines += ["", "# disagreements (first of each server):"] + mism
  if errs:
    lines += ["", "# errors (first of each server):"] + errs
  return "\n".join(lines)


# ------------------------------------------------------------ serving


def _tensors(tf, batch: List[Dict[str, Any]], signature) -> Dict[str, Any]:
  """One request as the signature's input tensors (batch of one)."""
  out = {}
  specs = signature.structured_input_signature[1]
  for name, spec in specs.items():
    values = [r[name] for r in batch]
    if name == "exclude":
      width = max(len(v) for v in values)
      pad = "" if spec.dtype == tf.string else -1
      values = [list(v) + [pad] * (width - len(v)) for v in values]
      if width == 0:
        out[name] = tf.zeros([len(batch), 0], spec.dtype)
        continue
    out[name] = tf.constant(values, spec.dtype)
  return out


def _decode(ids) -> List[Any]:
  return [i.decode() if isinstance(i, bytes) else int(i) for i in ids]


def _bad_list(served: List[Any], exclude: List[Any], pad) -> str:
  """Why a served list is malformed, or ''."""
  real = [i for i in served if i != pad]
  if len(set(real)) < len(real):
    return "repeated item"
  if set(real) & set(exclude):
    return "excluded item served"
  if served[:len(real)] != real:
    return "padding before a real item"
  return ""


def serve_one(tf, signature, requests, expected, n_max, seconds, threads,
              check_every, warmup):
  """Loads one server with ``threads`` clients; returns its row."""
  lock = threading.Lock()
  counter = itertools.count()
  latencies, errors, error_samples, mismatches = [], [0], [], []
  exceptions = [0]
  checked, agree = [0], [0]
  stop_at = [0.0]

  def one(i, record):
    req = requests[i % len(requests)]
    inputs = _tensors(tf, [req], signature)
    t0 = time.perf_counter()
    try:
      out = signature(**inputs)
      served = _decode(out["item_ids"].numpy()[0])
    except Exception as e:  # pylint: disable=broad-except
      with lock:
        errors[0] += record
        exceptions[0] += record
        if record and len(error_samples) < 5:
          error_samples.append(f"{type(e).__name__}: "
                               f"{str(e).splitlines()[0][:200]}")
      return
    dt = time.perf_counter() - t0
    if not record:
      return
    pad_id = "" if isinstance(served[0], str) else -1
    why = _bad_list(served, req["exclude"], pad_id)
    with lock:
      latencies.append(dt)
      if why:
        errors[0] += 1
        if len(error_samples) < 5:
          error_samples.append(f"request {i % len(requests)} "
                               f"({req['kind']}): {why}")
    if i % check_every == 0:
      want = expected[i % len(requests)]
      ok = served == want
      with lock:
        checked[0] += 1
        agree[0] += ok
        if not ok and len(mismatches) < 5:
          same = len(set(served) & set(want))
          mismatches.append(f"request {i % len(requests)} "
                            f"({req['kind']}): {same}/{len(want)} items "
                            "shared")

  def worker(limit, record):
    while True:
      with lock:
        i = next(counter)
      if i >= limit or (record and time.perf_counter() > stop_at[0]):
        return
      one(i, record)

  def run(limit, record):
    pool = [threading.Thread(target=worker, args=(limit, record))
            for _ in range(threads)]
    for t in pool:
      t.start()
    for t in pool:
      t.join()

  run(warmup, False)
  rss_start = rss_mib()
  counter = itertools.count()
  samples, sampling = [], threading.Event()

  def sampler():  # RSS over the load, to tell warm-up from steady growth
    while not sampling.wait(0.25):
      samples.append((time.perf_counter(), rss_mib()))

  watcher = threading.Thread(target=sampler)
  watcher.start()
  start = time.perf_counter()
  stop_at[0] = start + seconds
  run(n_max, True)
  wall = time.perf_counter() - start
  sampling.set()
  watcher.join()
  rss_end = rss_mib()
  half = start + wall / 2
  rss_mid = min(samples, key=lambda s: abs(s[0] - half))[1] if samples else (
      rss_start)
  lat = np.asarray(latencies) * 1000
  return {"requests": len(latencies) + exceptions[0],
          "qps": (len(latencies) + exceptions[0]) / wall if wall else 0.0,
          "p50_ms": float(np.percentile(lat, 50)) if len(lat) else
                    float("nan"),
          "p99_ms": float(np.percentile(lat, 99)) if len(lat) else
                    float("nan"),
          "errors": errors[0], "exceptions": exceptions[0],
          "error_samples": error_samples,
          "rss_start_mib": rss_start, "rss_mid_mib": rss_mid,
          "rss_end_mib": rss_end,
          "checked": checked[0], "agree": agree[0],
          "mismatches": mismatches, "seconds": wall}


def run_server():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if FLAGS.tf_threads:
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.tf_threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.tf_threads)
  with open(os.path.join(FLAGS.export_dir, "export.json")) as f:
    info = json.load(f)
  if any(m.get("needs_scann") for m in info["models"].values()):
    import scann  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  with open(FLAGS.serve) as f:
    data = json.load(f)
  requests = data["requests"]
  rss_import = rss_mib()
  start = time.perf_counter()
  models = {s: tf.saved_model.load(os.path.join(FLAGS.export_dir, s))
            for s in FLAGS.servers}
  load_seconds = time.perf_counter() - start
  rss_loaded = rss_mib()
  servers = {}
  for s in FLAGS.servers:
    servers[s] = serve_one(
        tf, models[s].signatures["recommend"], requests,
        data["expected"][s], FLAGS.requests, FLAGS.seconds,
        FLAGS.client_threads, FLAGS.check_every, FLAGS.warmup)
    print(f"{s}: {servers[s]['requests']} requests, "
          f"{servers[s]['qps']:.1f} QPS, {servers[s]['errors']} errors",
          flush=True)
  with open(FLAGS.result, "w") as f:
    json.dump({"servers": servers, "rss_import_mib": rss_import,
               "rss_loaded_mib": rss_loaded, "load_seconds": load_seconds},
              f)


def main(argv):
  del argv
  if FLAGS.serve:
    run_server()
  else:
    run_parent()


if __name__ == "__main__":
  app.run(main)
