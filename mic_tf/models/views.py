"""``Views``: what the contrastive terms of one training step compare.

``MICModel.compute_loss`` encodes the perturbed views of a batch and hands
them to ``contrastive_losses`` as one ``Views`` value, so a subclass that
adds or replaces a term reads named fields instead of repeating a long
positional signature.
"""

import dataclasses
from typing import Optional, Sequence

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Views:
  """Two views per side of the ``n`` rows that get views.

  Attributes:
    user: Two user-space views ``(n, d)`` (UU term, U2U channel space).
    item: Two item-space views ``(n, d)`` (II term, I2I channel space).
    user_shared: The same user views in the shared space (UI term).
    item_shared: The same item views in the shared space (UI term).
    user_ids: ``(n,)`` user of each row.
    item_ids: ``(n,)`` target item of each row.
    known_positives: Optional ``(n, n)`` bool, True where row j's item is a
      known positive of row i's user (never a negative); see
      ``mic_tf.losses.false_negatives``. None when masking is off.
    item_positive: Optional ``(n, d)`` item-space view of each row's
      co-occurrence positive (``MICConfig.ii_positives="cooccurrence"``);
      the II term then contrasts ``item[0]`` with it. None: eq. 6 as
      written.
    item_positive_ids: ``(n,)`` item of each row of ``item_positive``.
  """
  user: Sequence[tf.Tensor]
  item: Sequence[tf.Tensor]
  user_shared: Sequence[tf.Tensor]
  item_shared: Sequence[tf.Tensor]
  user_ids: tf.Tensor
  item_ids: tf.Tensor
  known_positives: Optional[tf.Tensor] = None
  item_positive: Optional[tf.Tensor] = None
  item_positive_ids: Optional[tf.Tensor] = None
