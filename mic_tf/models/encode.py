"""Encode many users or the whole item pool with a trained ``MICModel``.

Spaces: ``"shared"`` (U2I; L2-normalised), ``"user"`` / ``"item"`` (the
towers' own spaces, used by U2U and I2I; L2-normalised too, since every
channel ranks by cosine similarity).

One ``tf.function`` per (model, space) is built on first use and reused by
every later call, so evaluating after each epoch does not retrace.
"""

import functools
from typing import Any, Callable, Dict, Mapping, Tuple
import weakref

import numpy as np
import tensorflow as tf

USER_SPACES = ("shared", "user")
ITEM_SPACES = ("shared", "item")


# model -> {(side, space): tf.function}. The functions reach the model
# through a weak reference, so an entry goes away with its model.
_FUNCTIONS: "weakref.WeakKeyDictionary[Any, Dict[Tuple[str, str], Callable]]"
_FUNCTIONS = weakref.WeakKeyDictionary()


def _check(space, allowed):
  if space not in allowed:
    raise ValueError(f"space must be one of {allowed}, got {space!r}.")


def _encode_user(model_ref, space: str, batch):
  model = model_ref()
  if space == "shared":
    return model.user_query(batch)
  rep = model.user_space_summary(model.user_representation(batch))
  return tf.math.l2_normalize(rep, axis=-1)


def _encode_item(model_ref, space: str, ids):
  model = model_ref()
  if space == "shared":
    return model.item_candidate(ids)
  return tf.math.l2_normalize(model.item_representation(ids), axis=-1)


def _user_function(model_ref, space: str) -> Callable:
  # A partial per model: TF's retracing warning counts traces per Python
  # function, and a process that loads many models (tables, figures) traces
  # each model's function once, legitimately.
  return tf.function(functools.partial(_encode_user, model_ref, space),
                     reduce_retracing=True)


def _item_function(model_ref, space: str) -> Callable:
  return tf.function(functools.partial(_encode_item, model_ref, space),
                     reduce_retracing=True)


def encoder(model, side: str, space: str) -> Callable:
  """The model's cached ``tf.function`` for one side (user/item) and space."""
  functions = _FUNCTIONS.setdefault(model, {})
  key = (side, space)
  if key not in functions:
    make = _user_function if side == "user" else _item_function
    functions[key] = make(weakref.ref(model), space)
  return functions[key]


def encode_users(model, features: Mapping[str, np.ndarray],
                 space: str = "shared", batch_size: int = 2048) -> np.ndarray:
  """User vectors for feature arrays.

  Args:
    model: A ``MICModel``.
    features: User feature arrays (e.g. ``EvalUsers.features``).
    space: ``"shared"`` or ``"user"``.
    batch_size: Users per forward pass.

  Returns:
    ``(n, d)`` or, for a multi-interest tower in the shared space,
    ``(n, K, d)`` float32, L2-normalised on the last axis. In the user
    space a multi-interest user is the mean of its unit interests.
  """
  _check(space, USER_SPACES)
  names = model.spec.user_field_names
  run = encoder(model, "user", space)
  n = len(next(iter(features.values())))
  out = []
  for start in range(0, n, batch_size):
    batch = {k: tf.constant(np.asarray(features[k][start:start + batch_size]))
             for k in names}
    out.append(run(batch).numpy())
  return np.concatenate(out)


def encode_items(model, space: str = "shared",
                 batch_size: int = 4096) -> np.ndarray:
  """Vectors of every item id ``0 .. num_items-1``; row 0 (padding) is 0.

  Args:
    model: A ``MICModel``.
    space: ``"shared"`` or ``"item"``.
    batch_size: Items per forward pass.

  Returns:
    ``(num_items, d)`` float32, rows L2-normalised.
  """
  _check(space, ITEM_SPACES)
  run = encoder(model, "item", space)
  num_items = model.spec.num_items
  out = [run(tf.range(s, min(s + batch_size, num_items))).numpy()
         for s in range(0, num_items, batch_size)]
  vectors = np.concatenate(out)
  vectors[0] = 0.0
  return vectors
