"""A trained model's towers as ``tf.Module``s: what every channel encodes with.

``UserEncoder`` turns user features into ``EncodedUsers``: the shared-space
queries (U2I, and the user-item cosine of U2U and I2I), the user-space vector
(U2U) and the history (I2I's sources, the exclusion list). ``ItemEncoder``
turns item ids into their shared-space and item-space vectors. Every vector
is L2-normalised: every channel ranks by cosine.

The Keras model is reached through a plain holder, not a tracked attribute,
so a SavedModel of a channel holds the variables its functions use
(``track_captured``) and not the whole Keras object graph.
"""

from typing import Any, Dict, Iterable, Mapping, NamedTuple

import tensorflow as tf

from mic_tf import features as F
from mic_tf.indexes.base import Untracked
from mic_tf.layers.unknown_ids import known_or_missing

USER_SIGNATURE = "user_embedding"
ITEM_SIGNATURE = "item_embedding"


class EncodedUsers(NamedTuple):
  """What the channels know about a batch of ``B`` users.

  Attributes:
    shared: ``(B, K, d_s)`` unit queries in the shared user-item space
      (``K = 1`` for a single-interest tower).
    space: ``(B, d_u)`` unit user-space vectors (a multi-interest user is
      the mean of its unit interests).
    history: ``(B, maxlen)`` int64 history, oldest first, 0-padded; ids
      outside the item vocabulary read as 0.
  """
  shared: tf.Tensor
  space: tf.Tensor
  history: tf.Tensor


def user_input_signature(spec: F.FeatureSpec) -> Dict[str, tf.TensorSpec]:
  """The user features as int32 tensors, one per user field."""
  return {f.name: tf.TensorSpec([None, f.length] if f.is_multivalent else
                                [None], tf.int32, name=f.name)
          for f in spec.user_fields}


def track_captured(module: tf.Module, functions: Iterable[Any]) -> None:
  """Tracks the variables traced functions captured (the model's).

  Args:
    module: The module to be saved.
    functions: Its concrete functions.
  """
  seen, captured = set(), []
  for fn in functions:
    for v in fn.variables:
      if id(v) not in seen:
        seen.add(id(v))
        captured.append(v)
  module.captured_variables = captured


class UserEncoder(tf.Module):
  """User features -> ``EncodedUsers`` (and the ``user_embedding`` signature).

  Args:
    model: A trained ``MICModel``. Unknown ids in the features are read as
      0 by the model itself (``MICModel.user_representation``).
  """

  def __init__(self, model):
    super().__init__(name="user_encoder")
    self._held = Untracked()
    self._held.model = model
    self.spec = model.spec
    self.multi_interest = model.multi_interest

  @property
  def model(self):
    return self._held.model

  def __call__(self, features: Mapping[str, tf.Tensor]) -> EncodedUsers:
    model = self._held.model
    rep = model.user_representation(features)
    shared = tf.math.l2_normalize(model.project_user(rep), axis=-1)
    if not self.multi_interest:
      shared = shared[:, tf.newaxis, :]
    space = tf.math.l2_normalize(model.user_space_summary(rep), axis=-1)
    history = known_or_missing(tf.cast(features[F.HISTORY], tf.int64),
                               self.spec.num_items)
    return EncodedUsers(shared, space, history)

  def user_embedding(self, features: Mapping[str, tf.Tensor]
                     ) -> Dict[str, tf.Tensor]:
    """``{"user_shared": (B, d_s) or (B, K, d_s), "user_space": (B, d_u)}``."""
    users = self(features)
    shared = users.shared if self.multi_interest else users.shared[:, 0]
    return {"user_shared": shared, "user_space": users.space}

  def signatures(self) -> Dict[str, Any]:
    fn = tf.function(self.user_embedding, autograph=False,
                     input_signature=[user_input_signature(self.spec)])
    concrete = fn.get_concrete_function()
    track_captured(self, [concrete])
    return {USER_SIGNATURE: concrete, "serving_default": concrete}


class ItemEncoder(tf.Module):
  """Item ids -> unit vectors (the ``item_embedding`` signature).

  Args:
    model: A trained ``MICModel``; unknown item ids read as 0.
  """

  def __init__(self, model):
    super().__init__(name="item_encoder")
    self._held = Untracked()
    self._held.model = model

  def item_embedding(self, item_id: tf.Tensor) -> Dict[str, tf.Tensor]:
    """``{"item_shared": (B, d_s), "item_space": (B, d_i)}``."""
    model = self._held.model
    rep = model.item_representation(item_id)
    return {"item_shared": tf.math.l2_normalize(model.project_item(rep),
                                                axis=-1),
            "item_space": tf.math.l2_normalize(rep, axis=-1)}

  def signatures(self) -> Dict[str, Any]:
    fn = tf.function(self.item_embedding, autograph=False, input_signature=[
        tf.TensorSpec([None], tf.int32, name="item_id")])
    concrete = fn.get_concrete_function()
    track_captured(self, [concrete])
    return {ITEM_SIGNATURE: concrete, "serving_default": concrete}
