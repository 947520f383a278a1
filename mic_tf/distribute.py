"""TensorFlow distribution strategies for training, and cross-replica negatives.

``make_strategy(name)`` builds the ``tf.distribute`` strategy of
``ExperimentConfig.strategy`` / ``--strategy``:

* ``"default"``: no distribution (TensorFlow's default strategy).
* ``"mirrored"``: ``MirroredStrategy``, one replica per local GPU (or the
  CPU).
* ``"multi_worker"``: ``MultiWorkerMirroredStrategy`` across hosts; the
  cluster and this process's role come from the ``TF_CONFIG`` environment
  variable exactly as TensorFlow defines it, e.g. on the first of two hosts::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}'

Under a strategy each replica holds ``B / R`` rows of a global batch of ``B``.
In-batch and contrastive negatives must still come from the whole global
batch, or the objective would change with the number of replicas. So the
losses see *gathered* tensors: ``gather`` all-gathers every per-example tensor
across replicas (``ReplicaContext.all_gather``, which is differentiable), and
each replica computes the loss of the global batch. All replicas then hold
the same loss ``L``; the gradient flowing back through ``all_gather`` is
summed over replicas (``R`` identical copies) and the optimizer sums the
replicas' gradients again, so the training step differentiates
``replica_share(L) = L / R`` to apply exactly ``dL/dθ``: the same loss
and gradients as the global batch on one worker, up to float rounding. The
model reports one replica's loss and metrics (Keras'
``distribute_reduction_method = "first"``): they are already global.
Outside a replica context (no strategy, eager calls in cross-replica
context) both functions are the identity.

Only the chief writes results (``is_chief``); other workers write what must
be written collectively (checkpoints) to a private temporary folder
(``worker_path``).
"""

import json
import os
import tempfile
from typing import Any, Optional

import tensorflow as tf

from mic_tf import names

STRATEGIES = names.STRATEGIES
TF_CONFIG = "TF_CONFIG"
_MULTI_WORKER: Optional[tf.distribute.Strategy] = None


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The strategy called ``name`` (see the module docstring).

  ``"multi_worker"`` must be made before any TensorFlow op runs in the
  process (TensorFlow's rule); it is made once and then reused.

  Raises:
    ValueError: On an unknown name, or ``"multi_worker"`` without a valid
      ``TF_CONFIG``.
  """
  if name == "default":
    return tf.distribute.get_strategy()
  if name == "mirrored":
    return tf.distribute.MirroredStrategy()
  if name == "multi_worker":
    raw = os.environ.get(TF_CONFIG)
    if not raw:
      raise ValueError(
          "--strategy=multi_worker needs the TF_CONFIG environment variable "
          "(the cluster and this task), e.g. TF_CONFIG='{\"cluster\": "
          "{\"worker\": [\"host1:12345\", \"host2:12345\"]}, \"task\": "
          "{\"type\": \"worker\", \"index\": 0}}'.")
    try:
      config = json.loads(raw)
      config["cluster"], config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as error:
      raise ValueError(f"TF_CONFIG is not valid: {error!r}; it must be JSON "
                       "with 'cluster' and 'task' {'type', 'index'}.") from None
    global _MULTI_WORKER
    if _MULTI_WORKER is None:  # TensorFlow allows one per process.
      _MULTI_WORKER = tf.distribute.MultiWorkerMirroredStrategy()
    return _MULTI_WORKER
  raise ValueError(f"Unknown strategy {name!r}; choose from {STRATEGIES}.")


def _replica_context() -> Optional[tf.distribute.ReplicaContext]:
  if tf.distribute.in_cross_replica_context():
    return None
  return tf.distribute.get_replica_context()


def num_replicas() -> int:
  """Replicas of the current replica context (1 outside one)."""
  context = _replica_context()
  return 1 if context is None else int(context.num_replicas_in_sync)


def gather(values: Any) -> Any:
  """All-gathers every tensor of a nested structure along axis 0.

  Replica ``r``'s rows come ``r``-th, so a global batch split over replicas
  in order is reassembled in its original order. Identity with one replica
  or outside a replica context.
  """
  context = _replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return values

  def one(x):
    x = tf.convert_to_tensor(x)
    if x.dtype.is_floating:
      return context.all_gather(x, axis=0)
    # all_gather's gradient fails on integer tensors inside a tf.function
    # (ids have no gradient anyway): gather them as float64, exact below
    # 2^53.
    gathered = context.all_gather(tf.cast(x, tf.float64), axis=0)
    return tf.cast(gathered, x.dtype)

  return tf.nest.map_structure(one, values)


def replica_share(loss: tf.Tensor) -> tf.Tensor:
  """``loss / R``: what a replica differentiates (module docstring)."""
  replicas = num_replicas()
  return loss if replicas == 1 else loss / float(replicas)


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
  """Whether this process writes results (always, without a cluster)."""
  strategy = strategy or tf.distribute.get_strategy()
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None:
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  if task_type is None:
    return True
  if task_type == "chief":
    return True
  cluster = resolver.cluster_spec().as_dict()
  return task_type == "worker" and task_id == 0 and "chief" not in cluster


def worker_path(path: str, strategy: Optional[tf.distribute.Strategy] = None
                ) -> str:
  """``path`` on the chief; a private temporary path on other workers.

  Saving a checkpoint under ``MultiWorkerMirroredStrategy`` is collective:
  every worker must call it. Non-chief workers write to this throw-away path.
  """
  if is_chief(strategy):
    return path
  strategy = strategy or tf.distribute.get_strategy()
  resolver = strategy.cluster_resolver
  return os.path.join(_worker_folder(resolver), path.lstrip(os.sep))


def _worker_folder(resolver) -> str:
  return os.path.join(tempfile.gettempdir(),
                      f"mic_tf_{resolver.task_type}_{resolver.task_id}_"
                      f"{os.getpid()}")


def remove_worker_files(strategy: Optional[tf.distribute.Strategy] = None
                        ) -> None:
  """Deletes what ``worker_path`` gave this (non-chief) worker."""
  if is_chief(strategy):
    return
  strategy = strategy or tf.distribute.get_strategy()
  folder = _worker_folder(strategy.cluster_resolver)
  if tf.io.gfile.exists(folder):
    tf.io.gfile.rmtree(folder)
