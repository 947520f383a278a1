"""U2U-teacher distillation (beyond the paper): the U2I towers learn the list
of the stronger U2U channel, the teacher refreshed from the model itself.

* :mod:`~mic_tf.distill.table`: ``TeacherTable``, each training user's
  teacher list and the in-graph draw of one teacher item per row.
* :mod:`~mic_tf.distill.lists`: ``teacher_lists``, the U2U channel's lists
  of the training users under the current weights.
* :mod:`~mic_tf.distill.callback`: ``DistillationCallback`` (refresh
  schedule).

The loss is ``mic_tf.losses.distill.teacher_loss``; ``MICModel`` adds it
with weight ``MICConfig.distill_weight``.
"""

from typing import TYPE_CHECKING

from mic_tf import _lazy

_EXPORTS = {
    "TeacherTable": "mic_tf.distill.table",
    "teacher_lists": "mic_tf.distill.lists",
    "DistillationCallback": "mic_tf.distill.callback",
}
# Imported on first use: MICModel imports the table without the channels.
__getattr__, __dir__ = _lazy.exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what static readers (type checkers, the API docs) see
  from mic_tf.distill.callback import DistillationCallback
  from mic_tf.distill.lists import teacher_lists
  from mic_tf.distill.table import TeacherTable

__all__ = ["DistillationCallback", "TeacherTable", "teacher_lists"]
