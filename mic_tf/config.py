"""``ExperimentConfig``: every setting of one training run, in one place.

A run's settings come in four sections plus the objective's own configs::

  ExperimentConfig(
      data=DataConfig(...),              # dataset, protocol and features
      model=ModelConfig(...),            # tower and its widths
      training=TrainingConfig(...),      # optimisation, epochs, seed
      evaluation=EvaluationConfig(...),  # metrics and epoch selection
      mic=MICConfig(...),                # the MIC objective
      mining=MiningConfig(...),          # nearest-neighbour mining
      output_dir=...)

The defaults are those of ``experiments/train.py`` run without flags: the
binaries' flags take their defaults and help texts from these dataclasses
(each field's ``metadata["help"]``), so a default is written once. The
values the committed tables and tuning records used are the defaults; each
section's docstring says where a value comes from.

A setting keeps one name across the sections (``maxlen``, ``epochs``,
``cutoffs``, ...): ``SETTING_SECTIONS`` maps each to its section,
``ExperimentConfig.replace_settings(maxlen=50)`` changes settings by name and
``ExperimentConfig.from_dict`` also reads the flat layout (one dict of every
setting) that ``config.json`` and ``run_record.json`` held before the
sections, so earlier run directories and the committed result JSON still
load.

This module does not import TensorFlow (the binaries define their flags
from it before TensorFlow loads).
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

from mic_tf import errors
from mic_tf import names
from mic_tf.data import subsample
from mic_tf.mining.config import MiningConfig
from mic_tf.models.config import MICConfig

# ModelConfig.init_order values.
INIT_ORDERS = ("lazy", "towers_first")
# The built-in towers (mic_tf.towers.registry registers them; more can be
# registered with mic_tf.register_tower).
BUILT_IN_TOWERS = ("dssm", "youtube_dnn", "comirec_sa", "comirec_dr")


def _setting(default: Any = dataclasses.MISSING, *, help: str,  # pylint: disable=redefined-builtin
             factory: Any = dataclasses.MISSING) -> Any:
  """A dataclass field with its flag help text in ``metadata["help"]``."""
  return dataclasses.field(default=default, default_factory=factory,
                           metadata={"help": help})


def _positive(section: Any, *fields: str) -> None:
  for name in fields:
    if getattr(section, name) <= 0:
      raise ValueError(f"{name} must be positive, got "
                       f"{getattr(section, name)}.")


@dataclasses.dataclass
class DataConfig:
  """The dataset, the protocol's training users and the features.

  Defaults: ``maxlen`` 20 and ``max_item_users`` 20 are the values every
  committed table and tuning record under ``docs/results/`` used (the
  README's protocol section explains 20: on a CPU it halves the tower cost
  of 50, and the DSSM mean-pools the history anyway).
  """
  dataset: str = _setting("ml-1m", help="Dataset name.")
  data_dir: Optional[str] = _setting(
      None, help="Data cache directory (default: $MIC_TF_DATA_DIR or "
      "~/.cache/mic_tf/data).")
  dataset_kwargs: Dict[str, Any] = _setting(
      factory=dict, help="Extra loader arguments (paths, column names).")
  train_user_fraction: float = _setting(
      1.0, help="Train on this seeded fraction of the training users only "
      "(a sparser dataset; valid and test users unchanged).")
  data_seed: int = _setting(
      0, help="Seed of data-side sampling (which training users fill an "
      "item's user bag, which training users train_user_fraction keeps); "
      "kept apart from the training seed so that every seed of a grid trains "
      "on the same features.")
  maxlen: int = _setting(20, help="History length.")
  min_history: int = _setting(
      1, help="Shortest history of a training example.")
  max_item_users: int = _setting(
      20, help="Size of each item's bag of training users (0 disables the "
      "field).")
  use_user_id: bool = _setting(
      False, help="Give the user tower a user-id field (useless for users "
      "unseen in training).")

  def __post_init__(self):
    _positive(self, "maxlen")
    self.train_user_fraction = subsample.check_fraction(
        self.train_user_fraction)


@dataclasses.dataclass
class ModelConfig:
  """The towers: which one, and its widths.

  Defaults: the paper's DSSM widths (embedding and output 128, dropout 0.2)
  and one hidden layer of 256, as in every committed table.
  """
  tower: str = _setting(
      "dssm", help="Registered tower name: one of "
      f"{', '.join(BUILT_IN_TOWERS)} or your own (mic_tf.register_tower).")
  embedding_dim: int = _setting(128, help="Field embedding width.")
  output_dim: int = _setting(128, help="Tower output width.")
  hidden_units: Tuple[int, ...] = _setting(
      (256,), help="Hidden widths of MLP towers.")
  dropout: float = _setting(0.2, help="Dropout inside the towers.")
  init_order: str = _setting(
      "lazy", help="towers_first: create the towers and heads before the "
      "objective draws anything, so the base model and MIC start from the "
      "same weights at one seed (paired comparisons); lazy: the first "
      "training loss creates them, after MIC's perturbations drew.")
  tower_kwargs: Dict[str, Any] = _setting(
      factory=dict, help="Extra arguments of the tower builder (e.g. "
      "num_interests).")

  def __post_init__(self):
    _positive(self, "embedding_dim", "output_dim")
    if not 0 <= self.dropout < 1:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout}.")
    if self.init_order not in INIT_ORDERS:
      raise ValueError(f"init_order must be one of {INIT_ORDERS}, got "
                       f"{self.init_order!r}.")
    self.hidden_units = tuple(self.hidden_units)

  @property
  def towers_first(self) -> bool:
    """Whether towers and heads are created before the first loss."""
    return self.init_order == "towers_first"


@dataclasses.dataclass
class TrainingConfig:
  """Optimisation, the epoch budget and the seed.

  Defaults: batch 1024 and Adam at 1e-3 (the paper). ``epochs`` 40 with
  ``patience`` 3 is the budget of every committed ML-1M table (early
  stopping ends those runs after 10 to 14 epochs; docs/results.md); the
  sparser subsets and ML-100k pass a larger ``--epochs``.
  """
  epochs: int = _setting(
      40, help="Maximum training epochs (early stopping ends training "
      "sooner; see patience).")
  patience: Optional[int] = _setting(
      3, help="Early stopping: stop after this many epochs without a new "
      "best valid score (select_on) and keep the best epoch; None (the flag: "
      "0) trains every epoch.")
  batch_size: int = _setting(1024, help="Batch size (global: all replicas).")
  learning_rate: float = _setting(1e-3, help="Adam learning rate.")
  optimizer: str = _setting(
      "auto", help="adam: Keras' Adam; lazy_adam: sparse (lazy) updates of "
      "embedding rows; auto: lazy for tables of >= 100k rows.")
  weight_decay: float = _setting(
      0.0, help="Decoupled (AdamW) weight decay; 0 turns it off.")
  strategy: str = _setting(
      "default", help="tf.distribute strategy; multi_worker reads the "
      "cluster from TF_CONFIG. batch_size is the global batch.")
  steps_per_epoch: Optional[int] = _setting(
      None, help="Validate (and early-stop) every this many batches of an "
      "endless reshuffled stream (default: one full pass per epoch).")
  examples_per_epoch: Optional[int] = _setting(
      None, help="Seeded subset of training (user, position) pairs per "
      "epoch (default: all).")
  seed: int = _setting(
      0, help="Random seed (initialisation, shuffling, perturbation).")

  def __post_init__(self):
    _positive(self, "epochs", "batch_size")
    if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
      raise ValueError(f"steps_per_epoch must be positive (or None for full "
                       f"passes), got {self.steps_per_epoch}.")
    if self.patience is not None and self.patience <= 0:
      raise ValueError(f"patience must be positive (or None to train every "
                       f"epoch), got {self.patience}.")
    if self.learning_rate <= 0:
      raise ValueError(f"learning_rate must be positive, got "
                       f"{self.learning_rate}.")
    if not self.weight_decay >= 0:
      raise ValueError(f"weight_decay must be >= 0 (0 turns it off), got "
                       f"{self.weight_decay}.")
    if self.optimizer not in names.OPTIMIZERS:
      raise ValueError(f"optimizer must be one of {names.OPTIMIZERS}, "
                       f"got {self.optimizer!r}.")
    if self.strategy not in names.STRATEGIES:
      raise ValueError(f"strategy must be one of {names.STRATEGIES}, "
                       f"got {self.strategy!r}.")


@dataclasses.dataclass
class EvaluationConfig:
  """Metrics, and the valid score that selects the epoch.

  Defaults: Recall/NDCG/HR at 20 and 50 (ComiRec's cutoffs), history items
  excluded (MovieLens has no repeat interactions), epochs selected on the
  U2I channel.
  """
  cutoffs: Tuple[int, ...] = _setting((20, 50), help="Metric cutoffs N.")
  select_on: Tuple[str, ...] = _setting(
      (names.U2I,), help="Channels whose valid Recall@50 selects the epoch "
      "and early-stops, averaged (any of u2i,u2u,i2i,fused): select on the "
      "channel you serve. Channels other than u2i are evaluated exactly "
      "after every epoch, with their default settings.")
  exclude_history: bool = _setting(
      True, help="Exclude history items from retrieval (MovieLens has no "
      "repeat interactions).")
  eval_batch_size: int = _setting(1024, help="Users per evaluation batch.")

  def __post_init__(self):
    _positive(self, "eval_batch_size")
    self.cutoffs = tuple(self.cutoffs)
    self.select_on = tuple(self.select_on)
    unknown = [c for c in self.select_on if c not in names.CHANNELS]
    if not self.select_on or unknown or (
        len(set(self.select_on)) < len(self.select_on)):
      raise ValueError(f"select_on must name distinct channels of "
                       f"{names.CHANNELS}, got {list(self.select_on)}.")

  @property
  def selection_metric(self) -> str:
    """The key of the valid score that selects the epoch (``select_on``)."""
    return selection_metric(self.select_on, self.cutoffs)


SELECTION = "selection"


def selection_metric(select_on, cutoffs) -> str:
  """``recall@K`` when U2I alone selects, else ``"selection"``."""
  if tuple(select_on) == (names.U2I,):
    return f"recall@{max(cutoffs)}"
  return SELECTION


# Section attribute -> its dataclass.
SECTIONS = {"data": DataConfig, "model": ModelConfig,
            "training": TrainingConfig, "evaluation": EvaluationConfig}
# Setting name -> the section holding it (names are unique across sections).
SETTING_SECTIONS = {f.name: section for section, cls in SECTIONS.items()
                    for f in dataclasses.fields(cls)}


@dataclasses.dataclass
class ExperimentConfig:
  """Everything one training run needs (module docstring).

  Attributes:
    data: Dataset, protocol and features (``DataConfig``).
    model: The towers (``ModelConfig``).
    training: Optimisation and the epoch budget (``TrainingConfig``).
    evaluation: Metrics and epoch selection (``EvaluationConfig``).
    mic: The MIC objective (default: the base model, basic loss only).
    mining: Nearest-neighbour mining (default: off; every mined channel must
      also be a MIC term).
    output_dir: Where to write the run; None keeps nothing on disk.
  """
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
  training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
  evaluation: EvaluationConfig = dataclasses.field(
      default_factory=EvaluationConfig)
  mic: MICConfig = dataclasses.field(default_factory=MICConfig.base)
  mining: MiningConfig = dataclasses.field(default_factory=MiningConfig.off)
  output_dir: Optional[str] = _setting(
      None, help="Run directory (metrics.json, checkpoints, TensorBoard "
      "logs).")

  def __post_init__(self):
    for section, cls in SECTIONS.items():
      value = getattr(self, section)
      if isinstance(value, Mapping):
        setattr(self, section, cls(**value))
    if isinstance(self.mic, Mapping):
      self.mic = MICConfig.from_dict(self.mic)
    if isinstance(self.mining, Mapping):
      self.mining = MiningConfig.from_dict(self.mining)

  @classmethod
  def from_settings(cls, **settings: Any) -> "ExperimentConfig":
    """The defaults with settings changed by name (``replace_settings``)."""
    return cls().replace_settings(**settings)

  def replace_settings(self, **settings: Any) -> "ExperimentConfig":
    """A copy with settings changed by name, e.g. ``maxlen=50, epochs=3``.

    Names are those of the sections' fields (``SETTING_SECTIONS``), plus
    ``mic``, ``mining`` and ``output_dir``.

    Raises:
      ValueError: On a name no section holds.
    """
    top = {k: settings.pop(k) for k in ("mic", "mining", "output_dir")
           if k in settings}
    unknown = sorted(k for k in settings if k not in SETTING_SECTIONS)
    if unknown:
      raise ValueError(f"Unknown experiment settings {unknown}; choose from "
                       f"{sorted(SETTING_SECTIONS)}.")
    by_section: Dict[str, Dict[str, Any]] = {}
    for name, value in settings.items():
      by_section.setdefault(SETTING_SECTIONS[name], {})[name] = value
    changes = {section: dataclasses.replace(getattr(self, section), **values)
               for section, values in by_section.items()}
    return dataclasses.replace(self, **changes, **top)

  def setting(self, name: str) -> Any:
    """A setting's value by name (``SETTING_SECTIONS``)."""
    if name not in SETTING_SECTIONS:
      raise ValueError(f"Unknown experiment setting {name!r}; choose from "
                       f"{sorted(SETTING_SECTIONS)}.")
    return getattr(getattr(self, SETTING_SECTIONS[name]), name)

  @property
  def selection_metric(self) -> str:
    """The key of the valid score that selects the epoch (``select_on``)."""
    return self.evaluation.selection_metric

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: Mapping[str, Any]) -> "ExperimentConfig":
    """Inverse of ``to_dict``; also reads the earlier flat layout.

    Raises:
      UserError: If ``d`` has settings this version does not know (a config
        written by another mic-tf version).
    """
    d = upgrade_dict(d)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - known)
    for section, section_cls in SECTIONS.items():
      fields = {f.name for f in dataclasses.fields(section_cls)}
      unknown += sorted(f"{section}.{k}" for k in d.get(section, {})
                        if k not in fields)
    if unknown:
      raise errors.UserError(
          f"Unknown experiment settings {unknown}: the config was written by "
          "another mic-tf version. Use that version, or retrain with this "
          "one.")
    return cls(**d)


# Settings a flat-layout dict may lack whose default changed since: a run
# written before ``patience`` existed trained every epoch.
_FLAT_LAYOUT_DEFAULTS = {"patience": None}


def upgrade_dict(d: Mapping[str, Any]) -> Dict[str, Any]:
  """A config dict in today's layout: flat settings moved into sections.

  ``config.json``, ``run_record.json`` and the committed result JSON written
  before the sections hold every setting at the top level. A setting that
  is missing takes its default when the dict is read, except ``patience``
  in the flat layout, which predates it (``None``: every epoch trained). A
  top-level setting wins over the same setting in its section.
  """
  flat = any(k in SETTING_SECTIONS for k in d) and not any(
      isinstance(d.get(k), Mapping) for k in SECTIONS)
  out = {k: v for k, v in d.items() if k not in SETTING_SECTIONS}
  if flat:  # The flat layout predates the sections: its missing defaults.
    d = {**_FLAT_LAYOUT_DEFAULTS, **d}
  for section in SECTIONS:
    out[section] = dict(out.get(section) or {})
  for name, value in d.items():
    if name in SETTING_SECTIONS:
      out[SETTING_SECTIONS[name]][name] = value
  return out


def flat_settings(d: Mapping[str, Any]) -> Dict[str, Any]:
  """A config dict (either layout) as ``{"section.setting": value}``.

  Settings that hold dicts (``mic``, ``mining``) are flattened too, e.g.
  ``mic.lambda_``; used to name the settings two configs differ in.
  """
  out: Dict[str, Any] = {}

  def walk(prefix: str, value: Any) -> None:
    if isinstance(value, Mapping) and value and prefix.count(".") < 1:
      for k, v in value.items():
        walk(f"{prefix}.{k}" if prefix else k, v)
    else:
      out[prefix] = value

  walk("", upgrade_dict(d))
  return out


def experiment_setting(d: Mapping[str, Any], name: str,
                       default: Any = None) -> Any:
  """One setting of a config dict of either layout (``None``-safe)."""
  if not d:
    return default
  if name in d:
    return d[name]
  section = SETTING_SECTIONS.get(name)
  return (d.get(section) or {}).get(name, default) if section else default
