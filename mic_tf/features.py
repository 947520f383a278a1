"""Features: what each tower sees, built from a ``ProcessedDataset``.

Data flows one way: ``data`` (raw tables, protocol) -> ``features`` (this
module: integer feature arrays and the spec towers are built from) ->
``pipeline`` (tf.data) -> towers. ``prepare_data(config)`` runs the first
two steps for a config: load, protocol, features, valid and test users
(``Prepared``).

Feature names and meaning (every value is an int id, 0 = padding/missing):

User side (one row per example):
  * ``user_id``: ``u + 1`` for training users; ``0`` ("unknown") for users never
    seen in training (valid/test users under the ComiRec protocol, or new users
    at serving time).
  * one scalar field per user attribute of the dataset (ML: ``gender``,
    ``age``, ``occupation``).
  * ``history``: the last ``maxlen`` item ids before the target, oldest first,
    right-aligned and left-padded with 0 (shape ``(maxlen,)``).

Item side (looked up from tables by item id, so the full pool can be encoded):
  * ``item_id``.
  * one scalar field per categorical item attribute (ML: ``year``), one bag
    field per token-list attribute (ML: ``genre``), shape ``(L,)``.
  * ``item_users``: a bag of up to ``max_item_users`` *training* users (tokens
    ``u + 1``) who interacted with the item. Valid/test users never appear, so
    nothing leaks from evaluation users.

Every field with vocabulary ``V`` (ids ``0 .. V-1``) reserves id ``V`` as its
mask token (``FieldSpec.mask_id``), so embedding tables have ``V + 1`` rows and
a masked field never collides with a real id.
"""

import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from mic_tf import console
from mic_tf import errors
from mic_tf import names
from mic_tf.config import DataConfig
from mic_tf.config import ExperimentConfig
from mic_tf.config import ModelConfig
from mic_tf.config import TrainingConfig
from mic_tf.data import protocol
from mic_tf.data import registry as data_registry
from mic_tf.data import subsample
from mic_tf.data.dataset import ProcessedDataset

SCALAR = "scalar"
SEQUENCE = "sequence"  # ordered, e.g. the user's history
BAG = "bag"  # unordered set, e.g. genres or an item's users

USER_ID = "user_id"
HISTORY = "history"
ITEM_ID = "item_id"
ITEM_USERS = "item_users"
PAD_ID = names.MISSING_ID  # padding / missing id of every field
#: Training batches only: the example's user id (0-based), which masks
#: same-user negatives in the losses. Towers ignore it.
USER_KEY = "user"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
  """One input field.

  Attributes:
    name: Feature name (the key in the features dict).
    vocab_size: Number of ids including 0 (padding / missing).
    kind: ``"scalar"`` (shape ``(B,)``), ``"sequence"`` or ``"bag"`` (shape
      ``(B, length)``).
    length: Length of a sequence/bag field; 0 for scalars.
    shares: For fields holding ids of another field (``history`` holds item
      ids), that field's name; towers may share embedding tables on it.
  """
  name: str
  vocab_size: int
  kind: str = SCALAR
  length: int = 0
  shares: Optional[str] = None

  @property
  def mask_id(self) -> int:
    """The dedicated mask token of this field (never a real id)."""
    return self.vocab_size

  @property
  def is_multivalent(self) -> bool:
    return self.kind in (SEQUENCE, BAG)


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """Which fields each side has. Towers are built from this.

  Attributes:
    user_fields: Fields of the user tower's input, in a fixed order.
    item_fields: Fields of the item tower's input, in a fixed order.
    num_items: Item vocabulary size including padding id 0.
    maxlen: History length.
  """
  user_fields: Tuple[FieldSpec, ...]
  item_fields: Tuple[FieldSpec, ...]
  num_items: int
  maxlen: int

  def user_field(self, name: str) -> FieldSpec:
    return _find(self.user_fields, name, "user")

  def item_field(self, name: str) -> FieldSpec:
    return _find(self.item_fields, name, "item")

  @property
  def user_field_names(self) -> List[str]:
    return [f.name for f in self.user_fields]

  @property
  def item_field_names(self) -> List[str]:
    return [f.name for f in self.item_fields]

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self), indent=1)

  @classmethod
  def from_json(cls, text: str) -> "FeatureSpec":
    d = json.loads(text)
    return cls(
        user_fields=tuple(FieldSpec(**f) for f in d["user_fields"]),
        item_fields=tuple(FieldSpec(**f) for f in d["item_fields"]),
        num_items=d["num_items"], maxlen=d["maxlen"])


def _find(fields: Sequence[FieldSpec], name: str, side: str) -> FieldSpec:
  for f in fields:
    if f.name == name:
      return f
  raise KeyError(f"No {side} field named {name!r}; the {side} fields are "
                 f"{[f.name for f in fields]}.")


@dataclasses.dataclass
class FeatureTables:
  """Everything a pipeline or a tower needs, as numpy arrays.

  Attributes:
    spec: The ``FeatureSpec``.
    item_table: Item field name -> array indexed by item id (row 0 padding).
    user_attributes: User attribute name -> array indexed by user id
      (``user_id`` itself excluded; it is derived from the split).
    train_user_mask: Boolean array, True for training users.
    item_counts: Training-example count of each item id (for logQ
      correction and popularity baselines).
  """
  spec: FeatureSpec
  item_table: Dict[str, np.ndarray]
  user_attributes: Dict[str, np.ndarray]
  train_user_mask: np.ndarray
  item_counts: np.ndarray

  def user_features(self, users: np.ndarray, histories: np.ndarray
                    ) -> Dict[str, np.ndarray]:
    """User-side feature arrays for given users and padded histories.

    Args:
      users: int array ``(n,)`` of user ids.
      histories: int array ``(n, maxlen)`` of padded histories.

    Returns:
      Feature name -> array with ``n`` rows.
    """
    users = np.asarray(users, dtype=np.int64)
    out = {}
    if USER_ID in self.spec.user_field_names:
      known = self.train_user_mask[users]
      out[USER_ID] = np.where(known, users + 1, 0).astype(np.int32)
    for name, values in self.user_attributes.items():
      out[name] = values[users].astype(np.int32)
    out[HISTORY] = np.asarray(histories, dtype=np.int32)
    return out

  def item_features(self, item_ids: np.ndarray) -> Dict[str, np.ndarray]:
    """Item-side feature arrays for given item ids."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    return {name: table[item_ids] for name, table in self.item_table.items()}


def pad_history(sequence: np.ndarray, end: int, maxlen: int) -> np.ndarray:
  """The ``maxlen`` items before position ``end``, left-padded with 0."""
  window = sequence[max(0, end - maxlen):end]
  out = np.zeros(maxlen, dtype=np.int32)
  if len(window):
    out[maxlen - len(window):] = window
  return out


def available_memory() -> Optional[int]:
  """Bytes of memory this machine can still give (None if unknown)."""
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  try:
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (AttributeError, ValueError, OSError):
    return None


def history_bytes(dataset: ProcessedDataset, maxlen: int, batch_size: int,
                  embedding_dim: int) -> int:
  """A lower bound on the memory the history field of length ``maxlen``
  takes: one training batch of embedded histories (float32, kept for the
  backward pass) and the evaluated users' padded histories (int32)."""
  evaluated = len(dataset.valid_users) + len(dataset.test_users)
  return 4 * maxlen * (batch_size * embedding_dim + evaluated)


def check_history_memory(dataset: ProcessedDataset, maxlen: int,
                         batch_size: int, embedding_dim: int,
                         available: Optional[int] = None) -> None:
  """Refuses a ``maxlen`` whose history tensors cannot fit in memory.

  Checked before any of them is allocated (``history_bytes`` against
  ``available``, by default ``available_memory()``).

  Raises:
    UserError: If they need more than the memory available.
  """
  available = available_memory() if available is None else available
  needed = history_bytes(dataset, maxlen, batch_size, embedding_dim)
  if available is None or needed <= available:
    return
  longest = max(len(s) for s in dataset.sequences)
  raise errors.UserError(
      f"--maxlen={maxlen} needs at least {needed / 2**30:.1f} GiB for the "
      f"history tensors (a batch of {batch_size} histories embedded in "
      f"{embedding_dim} dimensions, plus the evaluated users'), more than "
      f"the {available / 2**30:.1f} GiB of memory available. The longest "
      f"sequence has {longest} items, so --maxlen={longest} already keeps "
      "every interaction: pass --maxlen of at most that.")


def build_feature_tables(dataset: ProcessedDataset,
                         maxlen: int = 50,
                         use_user_id: bool = False,
                         use_user_attributes: bool = True,
                         use_item_attributes: bool = True,
                         max_item_users: int = 50,
                         seed: int = 0) -> FeatureTables:
  """Builds the feature spec and lookup tables from a processed dataset.

  Args:
    dataset: Output of ``mic_tf.data.protocol.apply_comirec_protocol``.
    maxlen: Length of the history field.
    use_user_id: Whether the user tower gets a ``user_id`` field. Off by
      default: under the ComiRec protocol every evaluated user is unseen in
      training, so a learned id embedding cannot help them.
    use_user_attributes: Whether to include the dataset's user attributes.
    use_item_attributes: Whether to include the dataset's item attributes.
    max_item_users: Size of the ``item_users`` bag (0 disables the field).
      Items with more training users keep a seeded random sample.
    seed: Seed for that sampling.

  Returns:
    The ``FeatureTables``.

  Raises:
    ValueError: On a non-positive ``maxlen`` or an empty training split.
  """
  if maxlen <= 0:
    raise ValueError(f"maxlen must be positive, got {maxlen}.")
  if len(dataset.train_users) == 0:
    raise ValueError("The dataset has no training users; check the split.")
  num_users = dataset.num_users
  num_items = dataset.num_items
  train_mask = np.zeros(num_users, dtype=bool)
  train_mask[dataset.train_users] = True

  user_fields = []
  if use_user_id:
    user_fields.append(FieldSpec(USER_ID, num_users + 1))
  user_attributes = {}
  if use_user_attributes:
    for name, values in dataset.user_features.items():
      user_fields.append(FieldSpec(name, int(dataset.user_vocab_sizes[name])))
      user_attributes[name] = np.asarray(values, dtype=np.int32)
  user_fields.append(
      FieldSpec(HISTORY, num_items, SEQUENCE, maxlen, shares=ITEM_ID))

  item_fields = [FieldSpec(ITEM_ID, num_items)]
  item_table = {ITEM_ID: np.arange(num_items, dtype=np.int32)}
  if use_item_attributes:
    for name, values in dataset.item_features.items():
      values = np.asarray(values, dtype=np.int32)
      if values.shape[0] != num_items:
        raise ValueError(f"Item feature {name!r} has {values.shape[0]} rows "
                         f"but the dataset has {num_items} item ids.")
      kind = BAG if values.ndim == 2 else SCALAR
      length = values.shape[1] if values.ndim == 2 else 0
      item_fields.append(
          FieldSpec(name, int(dataset.item_vocab_sizes[name]), kind, length))
      item_table[name] = values

  train_items = (np.concatenate([dataset.sequences[u]
                                 for u in dataset.train_users])
                 if len(dataset.train_users) else np.zeros(0, np.int64))
  counts = np.bincount(train_items, minlength=num_items).astype(np.int64)
  counts[0] = 0

  if max_item_users > 0:
    item_table[ITEM_USERS] = _item_user_bags(dataset, max_item_users, seed)
    item_fields.append(
        FieldSpec(ITEM_USERS, num_users + 1, BAG, max_item_users))

  spec = FeatureSpec(tuple(user_fields), tuple(item_fields), num_items, maxlen)
  return FeatureTables(spec, item_table, user_attributes, train_mask, counts)


def _item_user_bags(dataset: ProcessedDataset, length: int,
                    seed: int) -> np.ndarray:
  """(num_items, length) bags of training-user tokens (u + 1), 0-padded."""
  users = np.concatenate([
      np.full(len(dataset.sequences[u]), u, dtype=np.int64)
      for u in dataset.train_users])
  items = np.concatenate([dataset.sequences[u] for u in dataset.train_users])
  rng = np.random.default_rng(seed)
  order = rng.permutation(len(items))  # random sample when an item overflows
  users, items = users[order], items[order]
  order = np.argsort(items, kind="stable")
  users, items = users[order], items[order]
  starts = np.searchsorted(items, np.arange(dataset.num_items))
  rank = np.arange(len(items)) - starts[items]
  keep = rank < length
  bags = np.zeros((dataset.num_items, length), dtype=np.int32)
  bags[items[keep], rank[keep]] = users[keep] + 1
  bags[0] = 0
  return bags


@dataclasses.dataclass
class EvalUsers:
  """Inputs and targets for evaluated (valid or test) users.

  The first ``int(history_fraction * len)`` interactions of each user are
  the input history, the rest are targets (ComiRec's protocol).

  Attributes:
    users: User ids ``(n,)``.
    features: User feature arrays for the tower (history truncated to maxlen).
    histories: Each user's full input history (for exclusion).
    targets: Each user's target items, in time order.
  """
  users: np.ndarray
  features: Dict[str, np.ndarray]
  histories: List[np.ndarray]
  targets: List[np.ndarray]


def eval_users(tables: FeatureTables, dataset: ProcessedDataset,
               users: np.ndarray, history_fraction: float = 0.8) -> EvalUsers:
  """Splits each evaluated user's sequence into input history and targets."""
  histories, targets, padded = [], [], []
  maxlen = tables.spec.maxlen
  kept = []
  for u in users:
    seq = dataset.sequences[u]
    cut = int(history_fraction * len(seq))
    if cut == 0 or cut == len(seq):
      continue  # nothing to condition on or nothing to predict
    kept.append(u)
    histories.append(seq[:cut])
    targets.append(seq[cut:])
    padded.append(pad_history(seq, cut, maxlen))
  kept = np.asarray(kept, dtype=np.int64)
  if len(kept) == 0:
    raise ValueError("No evaluable users: every user has too short a "
                     "sequence for the history/target cut.")
  feats = tables.user_features(kept, np.stack(padded))
  return EvalUsers(kept, feats, histories, targets)


def training_positions(dataset: ProcessedDataset,
                       min_history: int = 1) -> np.ndarray:
  """All (user, target position) pairs of training users.

  Args:
    dataset: The processed dataset.
    min_history: Smallest number of history items before a target.

  Returns:
    int32 array ``(n, 2)`` of ``(user, position)``.
  """
  out = []
  for u in dataset.train_users:
    n = len(dataset.sequences[u])
    if n > min_history:
      pos = np.arange(min_history, n, dtype=np.int32)
      out.append(np.stack([np.full_like(pos, u), pos], axis=1))
  if not out:
    raise ValueError("No training examples: every training user has at most "
                     f"min_history={min_history} interactions.")
  return np.concatenate(out)


def as_ragged_arrays(sequences: Sequence[np.ndarray]
                     ) -> Tuple[np.ndarray, np.ndarray]:
  """Flattens sequences into (values, row_starts) for in-graph gathers."""
  lengths = np.array([len(s) for s in sequences], dtype=np.int64)
  starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
  values = (np.concatenate(sequences).astype(np.int32)
            if len(sequences) else np.zeros(0, np.int32))
  return values, starts


@dataclasses.dataclass
class Prepared:
  """Data after the protocol and feature building (reusable across runs)."""
  dataset: ProcessedDataset
  tables: FeatureTables
  valid: EvalUsers
  test: EvalUsers


def prepare_data(config: Union[ExperimentConfig, DataConfig],
                 dataset: Optional[ProcessedDataset] = None) -> Prepared:
  """Loads the dataset (unless given), applies the protocol, builds features.

  Args:
    config: The experiment config, or its ``data`` section
      (``mic_tf.config.DataConfig``).
    dataset: An already processed dataset to reuse.

  Returns:
    The ``Prepared`` data.
  """
  data = getattr(config, "data", config)
  if dataset is None:
    raw = data_registry.load_dataset(data.dataset, data_dir=data.data_dir,
                                     **data.dataset_kwargs)
    dataset = protocol.apply_comirec_protocol(raw)
    console.status(protocol.describe(dataset))
  if data.train_user_fraction != dataset.train_user_fraction:
    total = len(dataset.train_users)
    dataset = subsample.keep_train_users(dataset, data.train_user_fraction,
                                         seed=data.data_seed)
    console.status(f"Training on {len(dataset.train_users):,} of {total:,} "
                   f"training users (train_user_fraction="
                   f"{data.train_user_fraction}, data_seed="
                   f"{data.data_seed}); valid and test users unchanged.")
  # A data section alone: the memory check assumes the default model.
  training = getattr(config, "training", None) or TrainingConfig()
  model = getattr(config, "model", None) or ModelConfig()
  check_history_memory(dataset, data.maxlen, training.batch_size,
                       model.embedding_dim)
  tables = build_feature_tables(dataset, maxlen=data.maxlen,
                                use_user_id=data.use_user_id,
                                max_item_users=data.max_item_users,
                                seed=data.data_seed)
  valid = eval_users(tables, dataset, dataset.valid_users)
  test = eval_users(tables, dataset, dataset.test_users)
  return Prepared(dataset, tables, valid, test)
