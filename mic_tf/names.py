"""The names every layer shares, in one place (this module imports nothing).

* MIC's contrastive terms: ``TERMS`` (user-item, user-user, item-item).
* The retrieval channels: ``BASE_CHANNELS`` (the learned U2I, U2U, I2I),
  ``CLASSICAL_CHANNELS`` (ItemKNN, UserKNN, EASE: the reference models as
  channels) and ``FUSED``; ``FUSABLE`` lists the six a fusion may combine and
  ``CHANNELS`` all seven, in the default fusion priority order.
* The representation spaces: ``SHARED`` (user-item, U2I), ``USER_SPACE``
  and ``ITEM_SPACE`` (the towers' own, U2U and I2I); ``I2I_SPACES`` are the
  spaces I2I may measure item similarity in.
* Nearest-neighbour index kinds: ``INDEX_KINDS`` (exact, scann);
  ``INDEX_CHOICES`` adds ``"auto"`` (ScaNN sized by the pool, which is exact
  below 20k vectors; see ``mic_tf.indexes.ScannConfig.auto``);
  ``EVAL_INDEX_CHOICES`` adds ``"both"`` and ``EVAL_SPLITS`` names the users
  a finished run is evaluated on (``mic_tf.runs``).
* Training: ``OPTIMIZERS`` (``mic_tf.optimizers``) and ``STRATEGIES``
  (``mic_tf.distribute``).
* ``MISSING_ID``: the feature id of padding, a missing attribute and anything
  unknown (an id outside its field's vocabulary is read as it, on the user
  and on the item side alike).
* ``PAD_ID`` / ``NEG_INF``: the id and score of an empty slot in a ranked
  result list (fewer than ``k`` items found).
* ``model_label``: a model's name in result tables, e.g.
  ``DSSM+MIC(UI+UU+II)``.
* ``RENAMED_FIELDS`` / ``upgrade_fields``: settings saved under an earlier
  name (reports, saved indexes and exports written before the rename) read
  under today's.
"""

UI, UU, II = "ui", "uu", "ii"
TERMS = (UI, UU, II)

U2I, U2U, I2I, FUSED = "u2i", "u2u", "i2i", "fused"
ITEMKNN, USERKNN, EASE = "itemknn", "userknn", "ease"
BASE_CHANNELS = (U2I, U2U, I2I)
CLASSICAL_CHANNELS = (ITEMKNN, USERKNN, EASE)
FUSABLE = BASE_CHANNELS + CLASSICAL_CHANNELS
CHANNELS = FUSABLE + (FUSED,)

SHARED, USER_SPACE, ITEM_SPACE = "shared", "user", "item"
I2I_SPACES = (ITEM_SPACE, SHARED)

EXACT, SCANN, AUTO = "exact", "scann", "auto"
INDEX_KINDS = (EXACT, SCANN)
INDEX_CHOICES = INDEX_KINDS + (AUTO,)
# A finished run's evaluation (mic_tf.runs): the users evaluated, and the
# indexes ("both": exact and ScaNN, side by side).
EVAL_SPLITS = ("test", "valid")
EVAL_INDEX_CHOICES = INDEX_KINDS + ("both",)

OPTIMIZERS = ("auto", "adam", "lazy_adam")
STRATEGIES = ("default", "mirrored", "multi_worker")

MISSING_ID = 0
PAD_ID = -1
NEG_INF = float("-inf")

def model_label(tower: str, terms=(), mined: bool = False) -> str:
  """A model's name in result tables: its tower, MIC terms and mining.

  ``model_label("dssm")`` is ``DSSM``; ``model_label("dssm", ("ui", "uu",
  "ii"))`` is ``DSSM+MIC(UI+UU+II)``; with ``mined`` it ends in
  `` +mining``. Other towers keep their registered name
  (``youtube_dnn+MIC(UI)``).
  """
  label = "DSSM" if tower == "dssm" else tower
  if not terms:
    return label
  label += "+MIC(" + "+".join(t.upper() for t in terms) + ")"
  return label + " +mining" if mined else label


# Earlier name -> today's, for settings files written before a rename.
RENAMED_FIELDS = {
    "num_neighbors": "num_neighbours",
    "reorder_num_neighbors": "reorder_num_neighbours",
}


def upgrade_fields(values):
  """A copy of a saved settings mapping with earlier field names renamed.

  Raises:
    ValueError: If a mapping holds a field under both its names.
  """
  out = dict(values)
  for old, new in RENAMED_FIELDS.items():
    if old in out:
      if new in out:
        raise ValueError(f"Settings hold both {old!r} and {new!r} (the same "
                         f"field, renamed): keep {new!r}.")
      out[new] = out.pop(old)
  return out
