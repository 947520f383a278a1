"""User-item (U2I) cross-channel contrastive loss, eq. (4) of the MIC paper."""

from typing import Optional, Sequence

import tensorflow as tf

from mic_tf.losses import _common


def _stack_views(views: Sequence[tf.Tensor], name: str) -> tf.Tensor:
  """Concatenates K (B, d) views into a (K*B, d) float32 tensor."""
  if isinstance(views, (tf.Tensor, tf.Variable)) or not views:
    raise ValueError(
        f"`{name}` must be a non-empty list or tuple of (B, d) tensors, one "
        f"per view, got {type(views).__name__}. Wrap a single view as [view].")
  tensors = [_common.as_float32(v, f"{name}[{k}]") for k, v in enumerate(views)]
  for k, tensor in enumerate(tensors):
    _common.check_rank2(tensor, f"{name}[{k}]")
    if not tensor.shape.is_compatible_with(tensors[0].shape):
      raise ValueError(
          f"All `{name}` must have the same shape; {name}[0] has "
          f"{tensors[0].shape} but {name}[{k}] has {tensor.shape}.")
  return tf.concat(tensors, axis=0)


def user_item_loss(user_views: Sequence[tf.Tensor],
                   item_views: Sequence[tf.Tensor],
                   item_ids: Optional[tf.Tensor],
                   user_ids: Optional[tf.Tensor] = None,
                   temperature: _common.Temperature = 0.1,
                   known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Bidirectional user<->item contrastive loss over K perturbed views.

  View k of example i pairs the user view ``u^k_i`` with the item view
  ``v^k_i``.

  * user -> item: anchor ``u^k_i``, positive ``v^k_i``; negatives are the item
    views (all K views) of the other examples, i.e. K(N - 1) = 2(N - 1)
    negatives for two views as in the paper. The other item views of the same
    example and item views whose item id equals example i's item id
    (accidental hits) are excluded.
  * item -> user: anchor ``v^k_i``, positive ``u^k_i``, symmetrically; other
    user views of the same example are excluded, and if ``user_ids`` are
    given so are user views with example i's user id.
  * ``known_positives[i, j]`` (optional) marks item j as a positive of user
    i (``mic_tf.losses.false_negatives``): the pair is then no negative in
    either direction.

  Both directions read one (KB, KB) cosine matrix: item -> user is its
  transpose, so the similarity matmul is done once.

  Eq. (4) writes the sum of the two directions; we return their *average*
  (each a mean over the K*B anchors), so that this loss has the same scale as
  the one-directional U2U and I2I losses and the channel weights of eq. (8)
  compare like with like. This only rescales the term by 1/2.

  Args:
    user_views: K (B, d) user representations, one per perturbed view.
    item_views: K (B, d) item representations, row- and view-aligned with
      ``user_views``.
    item_ids: (B,) int item id of each example's target item, or None to
      disable item accidental-hit masking.
    user_ids: Optional (B,) int user ids for user accidental-hit masking.
    temperature: Softmax temperature tau (> 0); the paper uses 0.1.
    known_positives: Optional (B, B) bool, True where example j's item is a
      known positive of example i's user.

  Returns:
    A float32 scalar: ``(mean_user->item + mean_item->user) / 2``.

  Raises:
    ValueError: If the view lists are empty, differ in length, or hold
      tensors of different shapes.
  """
  users = _stack_views(user_views, "user_views")
  items = _stack_views(item_views, "item_views")
  num_views = len(user_views)
  if len(item_views) != num_views:
    raise ValueError(
        f"`user_views` and `item_views` must hold the same number of views, "
        f"got {num_views} and {len(item_views)}.")
  if not users.shape.is_compatible_with(items.shape):
    raise ValueError(
        f"User and item views must have the same (B, d) shape, got "
        f"{user_views[0].shape} and {item_views[0].shape}.")

  batch_size = tf.shape(user_views[0])[0]
  example = tf.tile(tf.range(batch_size), [num_views])
  # Row r of `users`/`items` is view r // B of example r % B; its positive is
  # row r of the other side. Views of the same example are never negatives.
  positives = tf.range(num_views * batch_size)
  logits = _common.cosine_logits(users, items, temperature, "user_views",
                                 "item_views")
  # valid[r, c]: may item view c serve as a negative of user view r?
  valid = tf.not_equal(example[:, tf.newaxis], example[tf.newaxis, :])
  if known_positives is not None:
    known = tf.tile(tf.cast(known_positives, tf.bool),
                    [num_views, num_views])
    valid_user_item = tf.logical_and(valid, tf.logical_not(known))
    valid_item_user = tf.logical_and(valid,
                                     tf.logical_not(tf.transpose(known)))
  else:
    valid_user_item = valid_item_user = valid

  def not_same(ids):
    ids = tf.tile(tf.reshape(ids, [-1]), [num_views])
    return tf.logical_not(_common.same_id_mask(ids, ids))

  if item_ids is not None:
    valid_user_item = tf.logical_and(valid_user_item, not_same(item_ids))
  if user_ids is not None:
    valid_item_user = tf.logical_and(valid_item_user, not_same(user_ids))
  user_to_item = _common.softmax_cross_entropy_rows(logits, positives,
                                                    valid_user_item)
  item_to_user = _common.softmax_cross_entropy_rows(
      tf.transpose(logits), positives, valid_item_user)
  return 0.5 * (tf.reduce_mean(user_to_item) + tf.reduce_mean(item_to_user))
