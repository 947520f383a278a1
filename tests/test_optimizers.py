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


def _adamw_rows(table, target, rows_per_step, lr, wd, lazy,
                beta_1=0.9, beta_2=0.999, eps=1e-7):
  """Numpy AdamW on sum((table[rows] - target)^2); lazy: used rows only."""
  w, m, v = table.copy(), np.zeros_like(table), np.zeros_like(table)
  for t, rows in enumerate(rows_per_step, start=1):
    g = np.zeros_like(w)
    np.add.at(g, rows, 2 * (w[rows] - target[rows]))
    used = np.unique(rows) if lazy else np.arange(len(w))
    w[used] -= lr * wd * w[used]
    m[used] = beta_1 * m[used] + (1 - beta_1) * g[used]
    v[used] = beta_2 * v[used] + (1 - beta_2) * g[used] ** 2
    alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    w[used] -= alpha * m[used] / (np.sqrt(v[used]) + eps)
  return w


@pytest.mark.parametrize("lazy", [True, False])
def test_weight_decay_matches_a_numpy_adamw(lazy):
  rows = [[0, 1], [0, 1, 1], [2]]
  rng = np.random.default_rng(0)
  table = rng.normal(size=(6, 3)).astype(np.float32)
  target = rng.normal(size=(6, 3)).astype(np.float32)
  expected = _adamw_rows(table.astype(np.float64), target, rows, lr=0.1,
                         wd=0.5, lazy=lazy)
  name = "lazy_adam" if lazy else "adam"
  got, _ = _train(optimizers.make_optimizer(name, 0.1, weight_decay=0.5),
                  rows)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  if lazy:  # rows 3-5 never used: neither decayed nor moved
    np.testing.assert_array_equal(got[3:], table[3:])


def test_weight_decay_of_small_tables_under_auto_is_keras_adamw():
  rows = [[0, 1], [0, 1], [2]]
  auto, _ = _train(optimizers.make_optimizer("auto", 0.1, 0.3), rows)
  dense, _ = _train(tf.keras.optimizers.Adam(0.1, weight_decay=0.3), rows)
  np.testing.assert_allclose(auto, dense, rtol=1e-6, atol=1e-6)
  plain, _ = _train(optimizers.make_optimizer("auto", 0.1), rows)
  assert not np.allclose(auto, plain)


def test_weight_decay_must_not_be_negative():
  with pytest.raises(ValueError, match="weight_decay must be >= 0"):
    optimizers.make_optimizer("adam", 0.1, weight_decay=-0.1)
