"""Optimizers whose updates of large embedding tables stay sparse.

Keras' ``Adam`` turns a sparse (``tf.IndexedSlices``) gradient into dense
work: every step decays both slots of *every* row of the table and updates
every row of the variable. On Amazon-Books-sized tables (hundreds of
thousands of rows x 128) that is several full passes over hundreds of
megabytes per step, far more than the rows a batch touches.

``LazyAdam`` (the rule of TensorFlow Addons' ``LazyAdam``) updates only the
rows present in the gradient: for those rows

  m <- beta_1 * m + (1 - beta_1) * g
  v <- beta_2 * v + (1 - beta_2) * g^2
  w <- w - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps)

and leaves the other rows, and their slots, untouched (a row's moments decay
only when the row is used). Dense gradients get the usual Adam update. Tables
with fewer than ``min_lazy_rows`` rows are updated exactly like Keras' Adam,
so small datasets train as before.

``make_optimizer(name, learning_rate)`` builds the optimizer named by
``ExperimentConfig.optimizer``:

* ``"adam"``: Keras' Adam (dense slot updates).
* ``"lazy_adam"``: ``LazyAdam`` for every sparse gradient.
* ``"auto"`` (default): ``LazyAdam`` for tables of at least
  ``AUTO_MIN_LAZY_ROWS`` (100k) rows, Keras' Adam for everything else. Every
  MovieLens table is smaller, so MovieLens runs are unchanged.
"""

import tensorflow as tf

OPTIMIZERS = ("auto", "adam", "lazy_adam")
AUTO_MIN_LAZY_ROWS = 100_000


class LazyAdam(tf.keras.optimizers.Adam):
  """Adam that updates only the rows of a sparse gradient (module doc).

  Args:
    learning_rate: As Keras' Adam.
    min_lazy_rows: Variables with fewer rows get Keras' Adam update even
      for sparse gradients (0: every sparse gradient is applied lazily).
    **kwargs: Keras' Adam arguments (``beta_1``, ``beta_2``, ``epsilon``,
      ...); ``amsgrad`` is not supported.
  """

  def __init__(self, learning_rate=0.001, min_lazy_rows: int = 0,
               name: str = "LazyAdam", **kwargs):
    if kwargs.get("amsgrad"):
      raise ValueError("LazyAdam does not support amsgrad; use "
                       "tf.keras.optimizers.Adam(amsgrad=True).")
    if min_lazy_rows < 0:
      raise ValueError(f"min_lazy_rows must be >= 0, got {min_lazy_rows}.")
    super().__init__(learning_rate=learning_rate, name=name, **kwargs)
    self.min_lazy_rows = int(min_lazy_rows)

  def _is_lazy(self, gradient, variable) -> bool:
    if not isinstance(gradient, tf.IndexedSlices):
      return False
    rows = variable.shape[0]
    return rows is None or rows >= self.min_lazy_rows

  def update_step(self, gradient, variable):
    if not self._is_lazy(gradient, variable):
      return super().update_step(gradient, variable)
    dtype = variable.dtype
    lr = tf.cast(self.learning_rate, dtype)
    step = tf.cast(self.iterations + 1, dtype)
    beta_1 = tf.cast(self.beta_1, dtype)
    beta_2 = tf.cast(self.beta_2, dtype)
    alpha = lr * tf.sqrt(1 - tf.pow(beta_2, step)) / (1 - tf.pow(beta_1, step))
    epsilon = self.epsilon
    if self.adaptive_epsilon:
      epsilon = self.epsilon * tf.sqrt(1 - tf.pow(beta_2, step))
    key = self._var_key(variable)
    m = self._momentums[self._index_dict[key]]
    v = self._velocities[self._index_dict[key]]
    # Indices are unique: the base class sums duplicate rows first.
    indices, g = gradient.indices, tf.cast(gradient.values, dtype)
    m_rows = beta_1 * tf.gather(m, indices) + (1 - beta_1) * g
    v_rows = beta_2 * tf.gather(v, indices) + (1 - beta_2) * tf.square(g)
    m.scatter_update(tf.IndexedSlices(m_rows, indices))
    v.scatter_update(tf.IndexedSlices(v_rows, indices))
    variable.scatter_sub(tf.IndexedSlices(
        alpha * m_rows / (tf.sqrt(v_rows) + epsilon), indices))

  def get_config(self):
    config = super().get_config()
    config["min_lazy_rows"] = self.min_lazy_rows
    return config


def make_optimizer(name: str, learning_rate: float
                   ) -> tf.keras.optimizers.Optimizer:
  """The optimizer called ``name`` (see the module docstring).

  Raises:
    ValueError: On an unknown name.
  """
  if name == "adam":
    return tf.keras.optimizers.Adam(learning_rate)
  if name == "lazy_adam":
    return LazyAdam(learning_rate, min_lazy_rows=0)
  if name == "auto":
    return LazyAdam(learning_rate, min_lazy_rows=AUTO_MIN_LAZY_ROWS)
  raise ValueError(f"Unknown optimizer {name!r}; choose from {OPTIMIZERS}.")
