"""User-user (U2U) contrastive loss, eq. (5) of the MIC paper."""

from typing import Optional

import tensorflow as tf

from mic_tf.losses import _common
# Imported by name: the package re-exports the function `info_nce`, which
# shadows the submodule of the same name as a package attribute.
from mic_tf.losses.info_nce import nt_xent


def user_user_loss(view_a: tf.Tensor,
                   view_b: tf.Tensor,
                   user_ids: Optional[tf.Tensor] = None,
                   temperature: _common.Temperature = 0.1,
                   known_positives: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Contrastive loss between two perturbed views of the same users.

  Each user view's positive is the other view of the same user; the other
  2(N - 1) user views of the batch are negatives (SimCLR NT-Xent). Other batch
  rows with the same user id (the same user sampled twice) are not used as
  negatives.

  Args:
    view_a: (B, d) user representations under the first perturbation.
    view_b: (B, d) user representations under the second perturbation.
    user_ids: Optional (B,) int user ids for accidental-hit masking.
    temperature: Softmax temperature tau (> 0); the paper uses 0.1.
    known_positives: Optional (B, B) bool; True pairs are not negatives
      (``mic_tf.losses.false_negatives``).

  Returns:
    A float32 scalar: mean loss over the 2B user views.
  """
  return nt_xent(view_a, view_b, ids=user_ids,
                 temperature=temperature, known_positives=known_positives)
