r"""Where the main job's time goes: every component side by side, one process.

Times each part of ``experiments/run_main.sh`` on the same data in one
process, so that the parts can be compared as ratios on a loaded machine:
data preparation, each reference row (with its grid on valid users), the
training input pipeline alone, optimizer steps of the base model and of MIC
presets (tracing apart), ``model.fit`` over the same steps with the job's
callbacks (validation, checkpoints, TensorBoard, backups), one per-epoch
validation, the channel tuning on valid users (per channel) and the test
evaluation of the four channels. Prints wall and CPU seconds of each, and
each as a multiple of one base-model epoch of optimizer steps; then the
optimizer steps' median wall and CPU milliseconds over interleaved rounds.
The channels are timed on a model that was not trained: their cost depends
on how many candidates the settings gather, not on the weights.

  python benchmarks/main_job_cost.py --dataset=ml-1m --threads=1

On a loaded machine read the CPU seconds (with ``--threads=1``, one core's
work) and the ratios; ``--skip`` leaves parts out.
"""

import os
import statistics
import tempfile
import time

from absl import flags

import mic_tf  # noqa: F401
import numpy as np
import tensorflow as tf
from mic_tf import channels as channel_lib
from mic_tf import cli
from mic_tf import names
from mic_tf import pipeline
from mic_tf import training
from mic_tf.channels.evaluate import evaluate_channels
from mic_tf.channels.evaluate import evaluate_u2i
from mic_tf.models.config import MICConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "ml-1m", "Dataset (fetched like train.py).")
flags.DEFINE_integer("steps", 20, "Timed optimizer steps per round.")
flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds of the steps.")
flags.DEFINE_integer("fit_steps", 100, "Steps of the timed model.fit.")
flags.DEFINE_list("skip", [], "Parts to skip: baselines, steps (time the "
                  "base and tuned MIC steps only), fit, channels.")

TUNED = "MIC tuned (2 views, rows 128)"
VARIANTS = {
    "base": MICConfig.base(),
    TUNED: MICConfig.tuned(),
    "MIC tuned, 1 view": MICConfig.tuned(num_views=1),
    "MIC tuned, 1 view, rows 64": MICConfig.tuned(
        num_views=1, contrastive_batch_size=64),
}


class Clock:
  """Wall and process CPU seconds of named parts."""

  def __init__(self):
    self.rows = []

  def time(self, name, fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    self.rows.append((name, time.perf_counter() - wall,
                      time.process_time() - cpu))
    print(f"  {name}: {self.rows[-1][1]:.1f} s wall, "
          f"{self.rows[-1][2]:.1f} s CPU", flush=True)
    return out


def _config(mic, **kwargs):
  return training.ExperimentConfig(
      dataset=FLAGS.dataset, maxlen=20, max_item_users=20, mic=mic,
      **kwargs)


def _step_fn(model):
  optimizer = model.optimizer

  @tf.function
  def step(batch):
    with tf.GradientTape() as tape:
      loss = model.compute_loss(batch, training=True)
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss
  return step


def main(argv):
  del argv
  clock = Clock()
  base = _config(MICConfig.base())
  prepared = clock.time("prepare data", training.prepare_data, base)
  data = pipeline.training_dataset(prepared.tables, prepared.dataset,
                                   batch_size=1024, seed=0)
  steps_per_epoch = sum(1 for _ in data.map(lambda b: 0))
  print(f"{steps_per_epoch} steps per epoch", flush=True)
  clock.time(f"input pipeline, {FLAGS.steps} batches",
             lambda: [b for b in data.take(FLAGS.steps)])
  batches = [b for b in data.take(FLAGS.steps)]

  if "baselines" not in FLAGS.skip:
    for name in cli.BASELINES:
      param, values = cli.BASELINE_GRIDS.get(name, (None, ()))
      label = (f"reference row {name}" +
               (f" ({len(values)} {param} values on valid)" if values else ""))
      clock.time(label, cli.run_baseline, name, prepared)

  steps, models = {}, {}
  variants = VARIANTS if "steps" not in FLAGS.skip else {
      name: VARIANTS[name] for name in ("base", TUNED)}
  for name, mic in variants.items():
    tf.keras.utils.set_random_seed(0)
    model = training.build_model(_config(mic), prepared.tables)
    training.build_variables(model, prepared.tables)
    step = _step_fn(model)
    clock.time(f"{name}: trace + first step",
               lambda: step(batches[0]).numpy())
    steps[name], models[name] = step, model
  # Interleaved rounds; CPU time per step is what a loaded machine keeps.
  wall_ms = {name: [] for name in steps}
  cpu_ms = {name: [] for name in steps}
  for _ in range(FLAGS.rounds):
    for name, step in steps.items():
      wall, cpu = time.perf_counter(), time.process_time()
      for b in batches:
        loss = step(b)
      loss.numpy()
      wall_ms[name].append((time.perf_counter() - wall) / len(batches) * 1e3)
      cpu_ms[name].append((time.process_time() - cpu) / len(batches) * 1e3)
  # The same steps reading the live input pipeline instead of cached
  # batches: the pipeline's own cost, which model.fit pays every step.
  live = iter(data.repeat())
  for _ in range(FLAGS.rounds):
    for name in list(steps):
      step = steps[name]
      wall, cpu = time.perf_counter(), time.process_time()
      for _ in range(len(batches)):
        loss = step(next(live))
      loss.numpy()
      key = f"{name}, live input pipeline"
      wall_ms.setdefault(key, []).append(
          (time.perf_counter() - wall) / len(batches) * 1e3)
      cpu_ms.setdefault(key, []).append(
          (time.process_time() - cpu) / len(batches) * 1e3)
  step_ms = {n: statistics.median(v) for n, v in wall_ms.items()}
  step_cpu = {n: statistics.median(v) for n, v in cpu_ms.items()}
  epoch = step_ms["base"] * steps_per_epoch / 1e3
  for name, ms in step_ms.items():
    print(f"  {name}: {ms:.1f} ms/step wall, {step_cpu[name]:.1f} CPU "
          f"({step_cpu[name] / step_cpu['base']:.2f}x base CPU)", flush=True)

  model = models[TUNED]
  clock.time("one validation (U2I, valid users)", evaluate_u2i, model,
             prepared.valid, (20, 50), True, 1024)
  clock.time("get_weights (best epoch kept in memory)", model.get_weights)
  with tempfile.TemporaryDirectory() as tmp:
    clock.time("checkpoint write", tf.train.Checkpoint(model=model).write,
               os.path.join(tmp, "ckpt"))

  if "fit" not in FLAGS.skip:
    for name in ("base", TUNED):
      with tempfile.TemporaryDirectory() as tmp:
        config = _config(VARIANTS[name], epochs=1,
                         steps_per_epoch=FLAGS.fit_steps, output_dir=tmp)
        result = clock.time(
            f"{name}: model.fit, {FLAGS.fit_steps} steps + job callbacks "
            "(trace, validation, checkpoint, TensorBoard, backup)",
            training.run_experiment, config, prepared, verbose=0,
            evaluate_test=False)
        del result

  if "channels" not in FLAGS.skip:
    assets = channel_lib.ChannelAssets(model, prepared.tables,
                                       prepared.dataset)
    config = channel_lib.ChannelConfig()
    for channel in channel_lib.tuning.TUNABLE:
      grid = channel_lib.DEFAULT_GRIDS[channel]
      points = int(np.prod([len(v) for v in grid.values()]))
      result = clock.time(
          f"channel tuning {channel} ({points} points, valid users)",
          channel_lib.grid_search, assets, prepared.valid, channel, grid,
          config)
      config = result.best_config
    clock.time("test evaluation, U2I, U2U, I2I, fused", evaluate_channels,
               assets, prepared.test, names.BASE_CHANNELS + (names.FUSED,),
               names.EXACT, config)

  print(f"\n{FLAGS.dataset}: {steps_per_epoch} steps per epoch; one epoch "
        f"of base optimizer steps = {epoch:.1f} s here")
  print("| part | wall s | CPU s | wall / base epoch of steps |")
  print("|---|---|---|---|")
  for name, wall, cpu in clock.rows:
    print(f"| {name} | {wall:.1f} | {cpu:.1f} | {wall / epoch:.2f} |")
  print(f"\nOptimizer steps, median of {FLAGS.rounds} interleaved rounds of "
        f"{FLAGS.steps} steps:")
  print("| variant | wall ms/step | CPU ms/step | CPU ratio to base | "
        "CPU s per epoch |")
  print("|---|---|---|---|---|")
  for name, ms in step_ms.items():
    print(f"| {name} | {ms:.1f} | {step_cpu[name]:.1f} | "
          f"{step_cpu[name] / step_cpu['base']:.2f}x | "
          f"{step_cpu[name] * steps_per_epoch / 1e3:.0f} |")


if __name__ == "__main__":
  cli.run(main)
