r"""Cost of the U2I history query: the served U2I call with and without it.

Loads a finished run, builds its U2I channel twice (the paper's query, and
the query that also carries the user's history, ``U2IConfig.history_weight``
> 0: an index of twice the width and one gather of the history's
item-space vectors), then times ``recommend`` (the TF path a SavedModel
serves: encode, search, rank) on the same batches of test users in
interleaved rounds within one process, and prints the median ms per batch
and the ratio to the paper's query.

  python benchmarks/u2i_history_cost.py --run_dir=runs/dssm_mic --index=exact
"""

import statistics
import time

from absl import flags

from mic_tf import cli
from mic_tf import reproducibility

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished run (experiments/train.py).")
flags.DEFINE_enum("index", "exact", ["exact", "scann"], "Item index.")
flags.DEFINE_float("history_weight", 0.5, "w of the history query.")
flags.DEFINE_integer("batch_size", 256, "Users per served batch.")
flags.DEFINE_integer("k", 50, "Items per user.")
flags.DEFINE_integer("rounds", 7, "Interleaved timing rounds.")
flags.mark_flag_as_required("run_dir")


def main(argv):
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  from mic_tf import training  # pylint: disable=g-import-not-at-top
  del argv
  _, prepared, model = training.load_run(FLAGS.run_dir)
  assets = channels.ChannelAssets(model, prepared.tables, prepared.dataset)
  variants = {
      "paper's query (w = 0)": channels.ChannelConfig(),
      f"history query (w = {FLAGS.history_weight:g})": channels.ChannelConfig(
          u2i=channels.U2IConfig(history_weight=FLAGS.history_weight)),
  }
  users = prepared.test
  n = len(users.users)
  batches = []
  for start in range(0, n - FLAGS.batch_size + 1, FLAGS.batch_size):
    feats = {k: tf.constant(np.asarray(v[start:start + FLAGS.batch_size]),
                            tf.int32) for k, v in users.features.items()}
    batches.append(feats)
  if not batches:
    raise ValueError(f"--batch_size {FLAGS.batch_size} is larger than the "
                     f"{n} test users; pass a smaller one.")
  served = {}
  for name, config in variants.items():
    channel = channels.build_channels(assets, ("u2i",), FLAGS.k, FLAGS.index,
                                      config)["u2i"]
    fn = tf.function(channel.recommend)
    fn(batches[0])[0].numpy()  # trace + warm up
    served[name] = fn
  times = {name: [] for name in served}
  for _ in range(FLAGS.rounds):
    for name, fn in served.items():
      start = time.perf_counter()
      for feats in batches:
        ids = fn(feats)[0]
      ids.numpy()
      times[name].append((time.perf_counter() - start) / len(batches) * 1e3)
  width = assets.item_shared.shape[1]
  print(f"{FLAGS.run_dir}: {prepared.tables.spec.num_items - 1} items, "
        f"{FLAGS.index} index, batches of {FLAGS.batch_size} users x "
        f"{len(batches)}, k {FLAGS.k}, {FLAGS.rounds} interleaved rounds; "
        f"{reproducibility.describe()}")
  print("| U2I query | index width | median ms/batch | ratio |")
  print("|---|---|---|---|")
  first = None
  for i, (name, values) in enumerate(times.items()):
    median = statistics.median(values)
    first = first or median
    index_width = width + (assets.item_space.shape[1] if i else 0)
    print(f"| {name} | {index_width} | {median:.2f} | {median / first:.2f} |")


if __name__ == "__main__":
  cli.run(main)
