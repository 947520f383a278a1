"""tf.data pipelines: training examples and evaluation inputs.

A training example is a target position ``t`` in a training user's sequence,
with the ``maxlen`` items before it as history. The pipeline shuffles
``(user, position)`` pairs, batches them and then builds every feature of the
batch with vectorised TensorFlow gathers: there is no Python work per example.

Each training batch is a dict holding the user-side features named by the
``FeatureSpec``, plus:
  * ``item_id``: the target item of each example;
  * ``user``: the example's user id (0-based), used to mask accidental hits
    (two examples of the same user in one batch are not each other's
    negatives). Towers ignore keys they do not know.
"""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from mic_tf import errors
from mic_tf import features as F
from mic_tf import reproducibility
from mic_tf.data.dataset import ProcessedDataset

# From this many training examples on, batches are shuffled by a stateless
# index permutation instead of a shuffle buffer (see training_dataset).
INDEX_SHUFFLE_FROM = 1_000_000


def training_dataset(tables: F.FeatureTables,
                     dataset: ProcessedDataset,
                     batch_size: int = 1024,
                     seed: int = 0,
                     shuffle: bool = True,
                     min_history: int = 1,
                     drop_remainder: bool = True,
                     max_examples: Optional[int] = None) -> tf.data.Dataset:
  """The training pipeline.

  Args:
    tables: Feature tables from ``features.build_feature_tables``.
    dataset: The processed dataset.
    batch_size: Examples per batch.
    seed: Shuffle seed; the same seed gives the same batches in the same
      order, epoch after epoch.
    shuffle: Whether to shuffle (reshuffled each epoch). Below
      ``INDEX_SHUFFLE_FROM`` examples through a shuffle buffer of the whole
      set, from there on through a stateless permutation of the indices
      (same guarantees, no buffer: Books has 6.7M examples).
    min_history: Smallest history length of a training example.
    drop_remainder: Whether to drop the last partial batch (in-batch
      negatives prefer full batches). With it, fewer examples than
      ``batch_size`` are refused rather than trained with a smaller batch:
      the batch size sets how many in-batch negatives each example meets,
      so a silently smaller batch would train another objective than the
      one asked for (and recorded in the run's config).
    max_examples: If set, keep a seeded random subset of this many
      (user, position) pairs, fixed across epochs.

  Returns:
    A ``tf.data.Dataset`` of feature dicts.

  Raises:
    ValueError: On a non-positive batch size.
    UserError: If ``drop_remainder`` and there are fewer training examples
      than ``batch_size`` (no full batch).
  """
  if batch_size <= 0:
    raise ValueError(f"batch_size must be positive, got {batch_size}.")
  positions = F.training_positions(dataset, min_history)
  if max_examples is not None and max_examples < len(positions):
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(positions), max_examples, replace=False))
    positions = positions[keep]
  if drop_remainder and len(positions) < batch_size:
    raise errors.UserError(_too_few_examples(len(positions), batch_size))
  builder = _BatchBuilder(tables, dataset)
  if shuffle and len(positions) >= INDEX_SHUFFLE_FROM:
    ds = _index_shuffled_batches(positions, batch_size, seed, drop_remainder)
  else:
    ds = tf.data.Dataset.from_tensor_slices(positions)
    if shuffle:
      ds = ds.shuffle(len(positions), seed=seed,
                      reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
  ds = ds.map(builder, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  if reproducibility.op_determinism_enabled():
    # Under op determinism, tearing down an epoch's iterator waits for
    # tf.data's autotuning thread: 10-30 s per epoch on ML-1M, measured
    # (a 12-epoch main job spent 171 s outside its epochs). The batches do
    # not depend on autotuning.
    options = tf.data.Options()
    options.autotune.enabled = False
    ds = ds.with_options(options)
  return ds


def _too_few_examples(count: int, batch_size: int) -> str:
  return (f"Only {count} training examples, fewer than batch_size="
          f"{batch_size}: not one full batch (the in-batch negatives need "
          f"full batches). Pass --batch_size={count} or less (fewer in-batch "
          "negatives: results do not compare with other batch sizes), or "
          "train on more data.")


def _index_shuffled_batches(positions: np.ndarray, batch_size: int, seed: int,
                            drop_remainder: bool) -> tf.data.Dataset:
  """Batches of ``positions`` in a new seeded random order every epoch.

  The order is a stateless pseudo-random permutation of the indices
  (``tf.random.experimental.index_shuffle``) keyed by the seed and a per
  iteration draw of ``Dataset.random``: nothing is buffered, unlike
  ``Dataset.shuffle`` over millions of elements (whose buffer must be
  filled, element by element, before the first batch of every epoch).
  """
  n = len(positions)
  table = tf.constant(positions)

  def epoch(draw):
    key = tf.stack([tf.constant(seed, tf.int64), draw])
    indices = tf.data.Dataset.range(n).batch(batch_size,
                                              drop_remainder=drop_remainder)
    return indices.map(
        lambda i: tf.gather(table, tf.random.experimental.index_shuffle(
            i, key, n - 1)))

  draws = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
  return draws.take(1).flat_map(epoch)


def num_training_examples(dataset: ProcessedDataset,
                          min_history: int = 1) -> int:
  return int(len(F.training_positions(dataset, min_history)))


class _BatchBuilder:
  """Turns a batch of (user, position) pairs into feature tensors."""

  def __init__(self, tables: F.FeatureTables, dataset: ProcessedDataset):
    values, starts = F.as_ragged_arrays(dataset.sequences)
    self._values = tf.constant(values, tf.int32)
    self._starts = tf.constant(starts, tf.int64)
    self._maxlen = tables.spec.maxlen
    self._attributes = {k: tf.constant(v, tf.int32)
                        for k, v in tables.user_attributes.items()}
    self._use_user_id = F.USER_ID in tables.spec.user_field_names
    self._train_mask = tf.constant(tables.train_user_mask)

  def __call__(self, pairs: tf.Tensor) -> Dict[str, tf.Tensor]:
    users = tf.cast(pairs[:, 0], tf.int64)
    pos = tf.cast(pairs[:, 1], tf.int64)
    offsets = pos[:, None] + tf.range(-self._maxlen, 0, dtype=tf.int64)[None]
    valid = offsets >= 0
    index = tf.gather(self._starts, users)[:, None] + tf.maximum(offsets, 0)
    history = tf.where(valid, tf.gather(self._values, index), 0)
    out = {F.HISTORY: history,
           F.ITEM_ID: tf.gather(self._values, tf.gather(self._starts, users)
                                + pos),
           F.USER_KEY: tf.cast(users, tf.int32)}
    for name, table in self._attributes.items():
      out[name] = tf.gather(table, users)
    if self._use_user_id:
      known = tf.gather(self._train_mask, users)
      out[F.USER_ID] = tf.where(known, tf.cast(users, tf.int32) + 1, 0)
    return out
