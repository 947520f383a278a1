r"""Cost of the U2U-teacher term: a training step with and without it, and a
teacher refresh against an epoch.

Builds the models on the same data, refreshes the distilling models' teacher
lists once, then times optimizer steps of each in interleaved rounds within
one process (A and B side by side on these noisy VMs), and prints the median
ms/step, the ratio to the first variant's step, and the seconds of one
teacher refresh (``mic_tf.distill.teacher_lists``: every training user
encoded and served by the U2U channel) next to the steps of one epoch.

  python benchmarks/distill_step_cost.py --dataset=ml-1m --rounds=5 --steps=10
"""

import statistics
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
flags.DEFINE_integer("refreshes", 3, "Timed teacher refreshes per model.")

VARIANTS = {
    "MIC tuned": MICConfig.tuned(),
    "MIC tuned + distill (w=1, 50 items)": MICConfig.tuned(
        distill_weight=1.0),
    "base": MICConfig.base(),
    "base + distill (w=1, 50 items)": MICConfig.base(distill_weight=1.0),
}


def main(argv):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mic_tf import pipeline  # pylint: disable=g-import-not-at-top
  from mic_tf.distill import teacher_lists  # pylint: disable=g-import-not-at-top
  from mic_tf.models.build import build_model  # pylint: disable=g-import-not-at-top
  from mic_tf.models.build import build_variables  # pylint: disable=g-import-not-at-top
  del argv
  base = ExperimentConfig.from_settings(
      dataset=FLAGS.dataset, maxlen=FLAGS.maxlen,
      max_item_users=FLAGS.max_item_users, batch_size=FLAGS.batch_size)
  prepared = prepare_data(base)
  data = pipeline.training_dataset(prepared.tables, prepared.dataset,
                                   batch_size=FLAGS.batch_size, seed=0)
  steps_per_epoch = sum(1 for _ in data)
  batches = [b for b in data.take(FLAGS.steps)]
  steps, refresh_s = {}, {}
  for name, mic in VARIANTS.items():
    tf.keras.utils.set_random_seed(0)
    model = build_model(base.replace_settings(mic=mic), prepared.tables,
                        prepared.dataset)
    build_variables(model, prepared.tables)
    if mic.distill:
      times = []
      for _ in range(FLAGS.refreshes):
        start = time.perf_counter()
        users, lists, _ = teacher_lists(model, prepared.tables,
                                        prepared.dataset, mic.distill_items)
        model.distill_teacher.assign(users, lists)
        times.append(time.perf_counter() - start)
      refresh_s[name] = times
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
  times = {name: [] for name in steps}
  for r in range(FLAGS.rounds):
    for name, step in steps.items():
      start = time.perf_counter()
      for b in batches:
        loss = step(b)
      loss.numpy()
      times[name].append((time.perf_counter() - start) / len(batches) * 1e3)
    print(f"round {r + 1}/{FLAGS.rounds} done", flush=True)
  print(f"\n{FLAGS.dataset}, batch {FLAGS.batch_size}, maxlen {FLAGS.maxlen}, "
        f"{FLAGS.rounds} interleaved rounds x {FLAGS.steps} steps, "
        f"{steps_per_epoch} steps/epoch; {reproducibility.describe()}")
  print("| variant | median ms/step | ratio to its variant without distill "
        "| teacher refresh s (median) | refresh / epoch of steps |")
  print("|---|---|---|---|---|")
  names = list(times)
  for name in names:
    med = statistics.median(times[name])
    ref = name.split(" + distill")[0]
    ratio = med / statistics.median(times[ref])
    if name in refresh_s:
      r = statistics.median(refresh_s[name])
      epoch_s = med * steps_per_epoch / 1e3
      extra = f"{r:.2f} | {r / epoch_s:.1%}"
    else:
      extra = "- | -"
    print(f"| {name} | {med:.1f} | {ratio:.2f}x | {extra} |")


if __name__ == "__main__":
  cli.run(main)
