"""MIC losses: basic user-item losses and the cross-channel contrastive losses.

* :mod:`~mic_tf.losses.info_nce`: generic InfoNCE and SimCLR NT-Xent.
* :mod:`~mic_tf.losses.user_item`: U2I loss, eq. (4).
* :mod:`~mic_tf.losses.user_user`: U2U loss, eq. (5).
* :mod:`~mic_tf.losses.item_item`: I2I loss, eq. (6).
* :mod:`~mic_tf.losses.basic`: basic logistic / sampled-softmax loss, eq. (7).
* :mod:`~mic_tf.losses.combination`: ``LossCombiner``, eq. (8).
* :mod:`~mic_tf.losses.distill`: the U2U-teacher term (beyond the paper).
* :mod:`~mic_tf.losses.false_negatives`: in-batch pairs that are known
  positives and never serve as negatives.

All losses take (B, d) representations, L2-normalise them in float32 and
return a scalar mean over anchors.
"""

from mic_tf.losses.basic import logistic_loss
from mic_tf.losses.basic import softmax_loss
from mic_tf.losses.combination import LossCombiner
from mic_tf.losses.distill import teacher_loss
from mic_tf.losses.false_negatives import known_positives
from mic_tf.losses.info_nce import info_nce
from mic_tf.losses.info_nce import nt_xent
from mic_tf.losses.item_item import item_item_loss
from mic_tf.losses.user_item import user_item_loss
from mic_tf.losses.user_user import user_user_loss

__all__ = [
    "LossCombiner",
    "info_nce",
    "item_item_loss",
    "known_positives",
    "logistic_loss",
    "nt_xent",
    "softmax_loss",
    "teacher_loss",
    "user_item_loss",
    "user_user_loss",
]
