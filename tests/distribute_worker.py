"""One worker process of the multi-worker test (tests/test_distribute.py).

  TF_CONFIG=... python tests/distribute_worker.py OUT_DIR

The test first calls ``reference(OUT_DIR)`` in its own process: it builds a
small MIC model (every contrastive term, no randomness: masking, embedding
dropout and tower dropout are 0), saves its initial weights and one fixed
global batch to OUT_DIR/reference.npz and returns, on one worker, the loss
and gradients of that batch and the logs of two ``fit`` steps on it.

Each worker process (TF_CONFIG set by the test), under
``MultiWorkerMirroredStrategy``:

1. loads those weights, feeds each replica its half of the global batch and
   writes the loss and the summed gradients to OUT_DIR/worker<i>.npz;
2. runs the same two ``fit`` steps (Keras splits the global batch) and
   writes their logs;
3. trains with ``run_experiment`` (strategy ``multi_worker``, output under
   OUT_DIR/run): a first run crashes after its first epoch, a second
   resumes from the backup and finishes.

What it saw goes to OUT_DIR/worker<i>.json.
"""

import json
import os
import sys

import numpy as np

import mic_tf  # noqa: F401  (Keras 2 first)
from mic_tf import distribute
from mic_tf import training
from mic_tf.features import prepare_data
from mic_tf.models.build import build_model
from mic_tf.models.build import build_variables
from mic_tf.models.config import MICConfig
from mic_tf.testing.synthetic import synthetic_dataset

GLOBAL_BATCH = 16


def _config(out_dir, **kwargs):
  mic = MICConfig(terms=("ui", "uu", "ii"), user_attribute_mask=0.0,
                  history_mask=0.0, item_attribute_mask=0.0,
                  item_users_mask=0.0, embedding_dropout=0.0,
                  projection_dim=8)
  defaults = dict(dataset="synthetic", epochs=2, batch_size=GLOBAL_BATCH,
                  embedding_dim=8, output_dim=8, hidden_units=(16,),
                  dropout=0.0, maxlen=5, max_item_users=4, mic=mic,
                  examples_per_epoch=4 * GLOBAL_BATCH, output_dir=out_dir,
                  optimizer="lazy_adam")
  defaults.update(kwargs)
  return training.ExperimentConfig.from_settings(**defaults)


def _fit_config(out_dir):
  """Training under the strategy: the base model (cheaper to trace)."""
  return _config(out_dir, strategy="multi_worker",
                 mic=MICConfig.base(projection_dim=8))


def _loss_and_grads(model, batch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.GradientTape() as tape:
    loss = model.compute_loss(batch, training=True)
    scaled = distribute.replica_share(loss)
  grads = tape.gradient(scaled, model.trainable_variables)
  return loss, [tf.convert_to_tensor(g) for g in grads]


def _fit_logs(model, batch):
  """Logs of two fit steps on the global batch (the second after an update)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  data = tf.data.Dataset.from_tensors(batch).repeat(2)
  history = model.fit(data, verbose=0).history
  return {k: float(v[-1]) for k, v in history.items()}


def reference(out_dir):
  """The one-worker reference (see the module docstring)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from mic_tf import pipeline  # pylint: disable=g-import-not-at-top
  tf.keras.utils.set_random_seed(0)
  config = _config(None)
  prepared = prepare_data(config, synthetic_dataset())
  model = build_model(config, prepared.tables)
  build_variables(model, prepared.tables)
  batch = next(iter(pipeline.training_dataset(
      prepared.tables, prepared.dataset, batch_size=GLOBAL_BATCH,
      shuffle=False)))
  weights = model.get_weights()
  np.savez(os.path.join(out_dir, "reference.npz"),
           **{f"w{i}": w for i, w in enumerate(weights)},
           **{f"batch/{k}": v.numpy() for k, v in batch.items()})
  loss, grads = _loss_and_grads(model, batch)
  logs = _fit_logs(model, batch)
  return loss.numpy(), [g.numpy() for g in grads], logs


def worker(out_dir):
  # The strategy comes first: TensorFlow ops may not run before it.
  strategy = distribute.make_strategy("multi_worker")
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  task = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
  reference = np.load(os.path.join(out_dir, "reference.npz"))
  config = _config(None)
  prepared = prepare_data(config, synthetic_dataset())
  with strategy.scope():
    model = build_model(config, prepared.tables)
    build_variables(model, prepared.tables)
    model.set_weights([reference[f"w{i}"]
                       for i in range(len(model.get_weights()))])
  batch = {k.split("/", 1)[1]: v for k, v in reference.items()
           if k.startswith("batch/")}
  replicas = strategy.num_replicas_in_sync

  def shard(context):
    size = GLOBAL_BATCH // replicas
    start = context.replica_id_in_sync_group * size
    return {k: tf.constant(v[start:start + size]) for k, v in batch.items()}

  @tf.function
  def step(local):
    return _loss_and_grads(model, local)

  inputs = strategy.experimental_distribute_values_from_function(shard)
  loss, grads = strategy.run(step, args=(inputs,))
  # Every replica holds the global loss; the applied gradient is the sum
  # of the replicas' gradients (what the optimizer does).
  loss = strategy.experimental_local_results(loss)[0]
  grads = [strategy.reduce(tf.distribute.ReduceOp.SUM, g, axis=None)
           for g in grads]
  np.savez(os.path.join(out_dir, f"worker{task}.npz"), loss=loss.numpy(),
           **{f"g{i}": g.numpy() for i, g in enumerate(grads)})
  logs = _fit_logs(model, {k: tf.constant(v) for k, v in batch.items()})

  # Training, a crash after epoch 1, then a resumed run.
  run_dir = os.path.join(out_dir, "run")

  class Crash(tf.keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      if epoch == 0:
        raise RuntimeError("simulated crash")

  crashed = False
  try:
    training.run_experiment(_fit_config(run_dir), prepared, verbose=0,
                            callbacks=[Crash()])
  except RuntimeError:
    crashed = True
  resumed = {}

  class Watch(tf.keras.callbacks.Callback):

    def on_epoch_begin(self, epoch, logs=None):
      resumed.setdefault("first_epoch", epoch)

  results = training.run_experiment(_fit_config(run_dir), prepared,
                                    verbose=0, callbacks=[Watch()])
  with open(os.path.join(out_dir, f"worker{task}.json"), "w") as f:
    json.dump({"chief": distribute.is_chief(strategy), "crashed": crashed,
               "first_epoch": resumed.get("first_epoch"),
               "best_epoch": results["best_epoch"], "replicas": replicas,
               "fit_logs": logs,
               "test_recall": results["test"]["recall@50"]}, f)


if __name__ == "__main__":
  worker(sys.argv[1])
