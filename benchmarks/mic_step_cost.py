r"""Cost of a MIC training step as a ratio to the base model's step.

Builds every model on the same data, then times optimizer steps of each in
interleaved rounds within one process (these VMs are noisy and bimodal, so A
and B are always measured side by side), and prints the median ms/step and the
ratio to the base step.

  python benchmarks/mic_step_cost.py --dataset=ml-1m --rounds=5 --steps=10

Target of the MIC-core issue: <= 1.5x.

``--deterministic`` times the steps in deterministic mode
(``mic_tf.reproducibility``). Since that mode is chosen when TensorFlow
starts, ``--compare_deterministic`` runs this benchmark in child processes,
alternately without and with ``--deterministic`` (``--process_rounds``
times each), and prints both medians side by side:

  python benchmarks/mic_step_cost.py --dataset=ml-1m --compare_deterministic \
      --variants=base \
      --variants="MIC all, 2 views, contrastive rows 128 (README tables)"

``--compare_parallel`` asks whether two runs side by side, one thread each
(``--threads=1``), train more steps per second on this machine than one run
with TensorFlow's default threads. It alternates the two set-ups
(``--process_rounds`` times each): one child process with the default
threads, then two children started together with ``--threads=1``, and prints
each set-up's median ms/step and the throughput ratio (steps per second of
the pair over the single run):

  python benchmarks/mic_step_cost.py --dataset=ml-1m --compare_parallel \
      --variants=base --rounds=5 --steps=10
"""

import json
import os
import statistics
import subprocess
import sys
import time

from absl import flags


from mic_tf import cli
from mic_tf import reproducibility
from mic_tf.config import ExperimentConfig
from mic_tf.features import prepare_data
from mic_tf.models.config import MICConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "ml-1m", "Dataset (fetched like train.py).")
flags.DEFINE_integer("batch_size", 1024, "Batch size.")
flags.DEFINE_integer("maxlen", 20, "History length.")
flags.DEFINE_integer("max_item_users", 20, "Item user-bag size.")
flags.DEFINE_integer("rounds", 5, "Interleaved timing rounds.")
flags.DEFINE_integer("steps", 10, "Steps per model per round.")
flags.DEFINE_multi_string("variants", [], "A variant to time (a name below; "
                          "repeat the flag for more; default: all).")
flags.DEFINE_bool("compare_deterministic", False, "Time every variant in "
                  "child processes without and with --deterministic, "
                  "alternately, and print both.")
flags.DEFINE_integer("process_rounds", 2, "--compare_deterministic: child "
                     "processes per mode.", lower_bound=1)
flags.DEFINE_bool("compare_parallel", False, "Time one process with the "
                  "default threads against two processes together with "
                  "--threads=1, alternately, and print the throughput "
                  "ratio.")
flags.DEFINE_bool("json", False, "Print one RESULT line of JSON (used by "
                  "--compare_deterministic).")

VARIANTS = {
    "base": MICConfig.base(),
    "MIC all, 2 views, full batch": MICConfig(),
    "MIC all, 1 view, full batch": MICConfig(num_views=1),
    "MIC all, 2 views, contrastive rows 256": MICConfig(
        contrastive_batch_size=256),
    "MIC all, 1 view, contrastive rows 256": MICConfig(
        num_views=1, contrastive_batch_size=256),
    "MIC all, 2 views, contrastive rows 128 (README tables)": MICConfig(
        contrastive_batch_size=128),
    "MIC all, 1 view, contrastive rows 128": MICConfig(
        num_views=1, contrastive_batch_size=128),
    "MIC uu only, 2 views, contrastive rows 256": MICConfig(
        terms=("uu",), contrastive_batch_size=256),
}


def similarity_gflop(mic: MICConfig, batch_size: int, dim: int) -> float:
  """GFLOP of the similarity matmuls of one training step (fwd + bwd).

  The basic loss scores a (B, B) matrix; each contrastive term a (2n, 2n)
  matrix over the n rows with views (two views per side, or anchor + one
  view). A (p, q) product over d dims is 2pqd FLOPs forward and twice that
  backward (gradients of both operands).
  """
  flops = 3 * 2 * batch_size * batch_size * dim
  n = mic.contrastive_batch_size or batch_size
  flops += len(mic.terms) * 3 * 2 * (2 * n) ** 2 * dim
  return flops / 1e9


def matmul_gflops_per_s(size: int = 2048, dim: int = 128,
                        repeats: int = 20) -> float:
  """This CPU's measured rate on the contrastive terms' matmul shape."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  a = tf.random.normal((size, dim))
  b = tf.random.normal((size, dim))
  mm = tf.function(lambda x, y: tf.matmul(x, y, transpose_b=True))
  mm(a, b).numpy()
  start = time.perf_counter()
  for _ in range(repeats):
    out = mm(a, b)
  out.numpy()
  seconds = (time.perf_counter() - start) / repeats
  return 2 * size * size * dim / seconds / 1e9


def _selected():
  unknown = [v for v in FLAGS.variants if v not in VARIANTS]
  if unknown:
    raise ValueError(f"Unknown --variants {unknown}; choose from "
                     f"{list(VARIANTS)}.")
  return {k: v for k, v in VARIANTS.items()
          if not FLAGS.variants or k in FLAGS.variants}


def _child_args(deterministic: bool = False, threads: int = 0):
  args = [sys.executable, __file__, f"--dataset={FLAGS.dataset}",
          f"--batch_size={FLAGS.batch_size}", f"--maxlen={FLAGS.maxlen}",
          f"--max_item_users={FLAGS.max_item_users}",
          f"--rounds={FLAGS.rounds}", f"--steps={FLAGS.steps}", "--json",
          f"--threads={threads}"]
  args += [f"--variants={name}" for name in _selected()]
  if deterministic:
    args.append("--deterministic")
  return args


def _result(stdout: str):
  line = [l for l in stdout.splitlines() if l.startswith("RESULT ")][-1]
  return json.loads(line[len("RESULT "):])


def _child(deterministic: bool):
  done = subprocess.run(_child_args(deterministic), capture_output=True,
                        text=True, check=True)
  return _result(done.stdout)


def _children_together(count: int, threads: int):
  """``count`` children started at once; their results once all ended."""
  procs = [subprocess.Popen(_child_args(threads=threads),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for _ in range(count)]
  results = []
  for proc in procs:
    out, err = proc.communicate()
    if proc.returncode:
      raise RuntimeError(f"benchmark child failed ({proc.returncode}): "
                         f"{err[-2000:]}")
    results.append(_result(out))
  return results


def compare_parallel():
  single, pair = {}, {}
  for r in range(FLAGS.process_rounds):
    for name, ms in _children_together(1, threads=0)[0].items():
      single.setdefault(name, []).extend(ms)
    for result in _children_together(2, threads=1):
      for name, ms in result.items():
        pair.setdefault(name, []).extend(ms)
    print(f"process round {r + 1}/{FLAGS.process_rounds} done", flush=True)
  print(f"\n{FLAGS.dataset}, batch {FLAGS.batch_size}, maxlen "
        f"{FLAGS.maxlen}, {FLAGS.process_rounds} rounds of: one process "
        f"(default threads), then two processes together (--threads=1); "
        f"each process {FLAGS.rounds} rounds x {FLAGS.steps} steps; "
        f"{os.cpu_count()} CPUs")
  print("| variant | one run, default threads: ms/step | two runs, 1 thread "
        "each: ms/step (each) | steps/s of the pair / steps/s of one run |")
  print("|---|---|---|---|")
  for name in single:
    a = statistics.median(single[name])
    b = statistics.median(pair[name])
    print(f"| {name} | {a:.1f} | {b:.1f} | {2 * a / b:.2f}x |")


def compare_deterministic():
  times = {False: {}, True: {}}
  for r in range(FLAGS.process_rounds):
    for det in (False, True):
      for name, ms in _child(det).items():
        times[det].setdefault(name, []).extend(ms)
      print(f"process round {r + 1}/{FLAGS.process_rounds}, "
            f"{'deterministic' if det else 'default'} done", flush=True)
  print(f"\n{FLAGS.dataset}, batch {FLAGS.batch_size}, maxlen {FLAGS.maxlen}, "
        f"{FLAGS.process_rounds} processes per mode, alternating, x "
        f"{FLAGS.rounds} rounds x {FLAGS.steps} steps")
  print("| variant | default ms/step | --deterministic ms/step | ratio |")
  print("|---|---|---|---|")
  for name in times[False]:
    a = statistics.median(times[False][name])
    b = statistics.median(times[True][name])
    print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.2f}x |")


def main(argv):
  # TensorFlow loads once cli.run set the start-up environment
  # (--deterministic picks oneDNN's kernels before it starts).
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mic_tf import pipeline  # pylint: disable=g-import-not-at-top
  from mic_tf.models.build import build_model  # pylint: disable=g-import-not-at-top
  del argv
  if FLAGS.compare_deterministic and FLAGS.compare_parallel:
    raise ValueError("Pass one of --compare_deterministic and "
                     "--compare_parallel.")
  if FLAGS.compare_deterministic:
    return compare_deterministic()
  if FLAGS.compare_parallel:
    return compare_parallel()
  variants = _selected()
  base = ExperimentConfig.from_settings(
      dataset=FLAGS.dataset, maxlen=FLAGS.maxlen,
      max_item_users=FLAGS.max_item_users)
  prepared = prepare_data(base)
  data = pipeline.training_dataset(prepared.tables, prepared.dataset,
                                   batch_size=FLAGS.batch_size, seed=0)
  batches = [b for b in data.take(FLAGS.steps)]
  steps = {}
  for name, mic in variants.items():
    tf.keras.utils.set_random_seed(0)
    model = build_model(
        base.replace_settings(mic=mic),
        prepared.tables)
    optimizer = model.optimizer

    @tf.function
    def step(batch, model=model, optimizer=optimizer):
      with tf.GradientTape() as tape:
        loss = model.compute_loss(batch, training=True)
      grads = tape.gradient(loss, model.trainable_variables)
      optimizer.apply_gradients(zip(grads, model.trainable_variables))
      return loss

    step(batches[0]).numpy()  # trace + warm up
    steps[name] = step
  times = {name: [] for name in variants}
  for r in range(FLAGS.rounds):
    for name, step in steps.items():
      start = time.perf_counter()
      for b in batches:
        loss = step(b)
      loss.numpy()
      times[name].append((time.perf_counter() - start) / len(batches) * 1e3)
    if not FLAGS.json:
      print(f"round {r + 1}/{FLAGS.rounds} done", flush=True)
  if FLAGS.json:
    print("RESULT " + json.dumps(times), flush=True)
    return
  rate = matmul_gflops_per_s()
  base_ms = statistics.median(times["base"]) if "base" in times else None
  print(f"\n{FLAGS.dataset}, batch {FLAGS.batch_size}, maxlen {FLAGS.maxlen}, "
        f"{FLAGS.rounds} interleaved rounds x {FLAGS.steps} steps; "
        f"devices: {[d.device_type for d in tf.config.list_logical_devices()]}"
        f"; {reproducibility.describe()}")
  print(f"measured matmul rate (2048x128 @ 128x2048): {rate:.1f} GFLOP/s")
  print("| variant | median ms/step | ratio to base | similarity GFLOP/step "
        "| their floor at that rate, ms |")
  print("|---|---|---|---|---|")
  for name, t in times.items():
    med = statistics.median(t)
    ratio = f"{med / base_ms:.2f}x" if base_ms else "-"
    gflop = similarity_gflop(VARIANTS[name], FLAGS.batch_size, 128)
    print(f"| {name} | {med:.1f} | {ratio} | {gflop:.2f} | "
          f"{gflop / rate * 1e3:.1f} |")


if __name__ == "__main__":
  cli.run(main)
