"""LazyAdam: sparse rows only, Keras' Adam wherever every row is used."""

import numpy as np
import pytest
import tensorflow as tf

import mic_tf  # noqa: F401
from mic_tf import optimizers


def _train(optimizer, rows_per_step, steps=3, num_rows=6, seed=0):
  """Minimises sum((table[rows] - target)^2) by gathers (sparse grads)."""
  rng = np.random.default_rng(seed)
  table = tf.Variable(rng.normal(size=(num_rows, 3)).astype(np.float32))
  target = tf.constant(rng.normal(size=(num_rows, 3)).astype(np.float32))
  for rows in rows_per_step[:steps]:
    rows = tf.constant(rows)
    with tf.GradientTape() as tape:
      loss = tf.reduce_sum(tf.square(tf.gather(table, rows)
                                     - tf.gather(target, rows)))
    grads = tape.gradient(loss, [table])
    assert isinstance(grads[0], tf.IndexedSlices)
    optimizer.apply_gradients(zip(grads, [table]))
  return table.numpy(), optimizer


def test_lazy_adam_equals_adam_when_every_row_is_used():
  rows = [[0, 1, 2, 3, 4, 5, 5]] * 3  # a repeated row: duplicates summed
  lazy, _ = _train(optimizers.LazyAdam(0.1), rows)
  dense, _ = _train(tf.keras.optimizers.Adam(0.1), rows)
  np.testing.assert_allclose(lazy, dense, rtol=1e-5, atol=1e-5)


def test_lazy_adam_leaves_unused_rows_and_their_slots_alone():
  rows = [[0, 1], [0, 1], [2]]
  before, _ = _train(optimizers.LazyAdam(0.1), rows, steps=0)
  after, opt = _train(optimizers.LazyAdam(0.1), rows)
  np.testing.assert_array_equal(after[3:], before[3:])  # never used
  assert not np.allclose(after[:3], before[:3])
  m = opt.variables[1].numpy()  # first moments of the table
  np.testing.assert_array_equal(m[3:], 0.0)
  # Keras' Adam moves rows 0 and 1 in step 3 (their momentum); LazyAdam
  # does not: after step 2 they are where both optimizers put them.
  lazy_two, _ = _train(optimizers.LazyAdam(0.1), rows, steps=2)
  np.testing.assert_array_equal(after[:2], lazy_two[:2])
  dense, _ = _train(tf.keras.optimizers.Adam(0.1), rows)
  assert not np.allclose(dense[:2], lazy_two[:2])


def test_small_tables_keep_keras_adam_under_auto():
  rows = [[0, 1], [0, 1], [2]]
  auto, _ = _train(optimizers.make_optimizer("auto", 0.1), rows)
  dense, _ = _train(tf.keras.optimizers.Adam(0.1), rows)
  np.testing.assert_allclose(auto, dense, rtol=1e-6, atol=1e-6)


def test_make_optimizer_names():
  assert type(optimizers.make_optimizer("adam", 0.1)) is (
      tf.keras.optimizers.Adam)
  lazy = optimizers.make_optimizer("lazy_adam", 0.1)
  assert lazy.min_lazy_rows == 0
  assert lazy.get_config()["min_lazy_rows"] == 0
  with pytest.raises(ValueError, match="Unknown optimizer"):
    optimizers.make_optimizer("sgd", 0.1)
  with pytest.raises(ValueError, match="amsgrad"):
    optimizers.LazyAdam(amsgrad=True)
