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

``make_optimizer(name, learning_rate, weight_decay)`` builds the optimizer
named by ``ExperimentConfig.optimizer``:

* ``"adam"``: Keras' Adam (dense slot updates).
* ``"lazy_adam"``: ``LazyAdam`` for every sparse gradient.
* ``"auto"`` (default): ``LazyAdam`` for tables of at least
  ``AUTO_MIN_LAZY_ROWS`` (100k) rows, Keras' Adam for everything else. Every
  MovieLens table is smaller, so MovieLens runs are unchanged.

``weight_decay`` (default 0: none) is decoupled weight decay, the AdamW
rule: before each update a variable shrinks by ``learning_rate *
weight_decay`` of itself, apart from the Adam step. Keras' Adam shrinks every
variable, including every row of an embedding table, at every step;
``LazyAdam`` shrinks only the rows it updates (a row decays when it is used,
as its moments do), so the decay stays as sparse as the update.
"""

import tensorflow as tf

from mic_tf import names

OPTIMIZERS = names.OPTIMIZERS
AUTO_MIN_LAZY_ROWS = 100_000


class LazyAdam(tf.keras.optimizers.Adam):
  """Adam that updates only the rows of a sparse gradient (module doc).

  Args:
    learning_rate: As Keras' Adam.
    min_lazy_rows: Variables with fewer rows get Keras' Adam update even
      for sparse gradients (0: every sparse gradient is applied lazily).
    **kwargs: Keras' Adam arguments (``beta_1``, ``beta_2``, ``epsilon``,
      ``weight_decay``, ...); ``amsgrad`` is not supported. With
      ``weight_decay``, a lazily updated table decays only in the rows of
      its gradient; every other variable decays as with Keras' Adam.
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

  def _apply_weight_decay(self, variables):
    # Keras decays every variable before the update steps, without their
    # gradients; the decay is applied in ``update_step`` instead, where a
    # sparse gradient says which rows to decay.
    del variables

  def _decay(self, variable, indices=None):
    """Decoupled weight decay of ``variable`` (of its ``indices`` rows)."""
    if self.weight_decay is None or not self._use_weight_decay(variable):
      return
    rate = (tf.cast(self.learning_rate, variable.dtype)
            * tf.cast(self.weight_decay, variable.dtype))
    if indices is None:
      variable.assign_sub(variable * rate)
    else:
      variable.scatter_sub(tf.IndexedSlices(
          tf.gather(variable, indices) * rate, indices))

  def _is_lazy(self, gradient, variable) -> bool:
    if not isinstance(gradient, tf.IndexedSlices):
      return False
    rows = variable.shape[0]
    return rows is None or rows >= self.min_lazy_rows

  def update_step(self, gradient, variable):
    if not self._is_lazy(gradient, variable):
      self._decay(variable)
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
    self._decay(variable, indices)
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


def make_optimizer(name: str, learning_rate: float, weight_decay: float = 0.0
                   ) -> tf.keras.optimizers.Optimizer:
  """The optimizer called ``name`` (see the module docstring).

  Args:
    name: One of ``OPTIMIZERS``.
    learning_rate: The Adam learning rate.
    weight_decay: Decoupled weight decay (0: none).

  Raises:
    ValueError: On an unknown name or a negative weight decay.
  """
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay}.")
  decay = {"weight_decay": weight_decay} if weight_decay > 0 else {}
  if name == "adam":
    return tf.keras.optimizers.Adam(learning_rate, **decay)
  if name == "lazy_adam":
    return LazyAdam(learning_rate, min_lazy_rows=0, **decay)
  if name == "auto":
    return LazyAdam(learning_rate, min_lazy_rows=AUTO_MIN_LAZY_ROWS, **decay)
  raise ValueError(f"Unknown optimizer {name!r}; choose from {OPTIMIZERS}.")
