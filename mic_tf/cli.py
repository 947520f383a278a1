"""Flags and glue shared by the absl binaries in ``experiments/``.

Binaries stay thin: they define flags from here (each ``ExperimentConfig``
setting's flag takes its default and help text from ``mic_tf.config``),
build an ``ExperimentConfig`` with ``experiment_config_from_flags``, call
library functions, and start with ``cli.run(main)`` (instead of
``app.run``), which

* parses the flags, then sets the start-up environment (``start_up``:
  TensorFlow's log level, ``--deterministic``'s oneDNN pins) before
  TensorFlow loads. This module and ``mic_tf.config`` do not import
  TensorFlow, so a binary imports the modules that do inside ``main``;
* keeps the console quiet: absl and TensorFlow log at WARNING unless
  ``--verbosity=1`` (``--v=1``) asks for the detail;
* prints a user error (``mic_tf.errors.is_user_error``: a bad flag, a
  missing or malformed file, an unknown dataset, a run directory of other
  settings) as one line, ``<binary>: error: <problem and fix>``, and exits
  with status 2; ``--debug`` shows its traceback. Bugs keep their traceback;
* turns on ``--deterministic`` (``mic_tf.reproducibility``).

A notebook can build the same ``ExperimentConfig`` by hand; ``invoke`` runs
a binary's ``main`` in-process exactly as ``run`` would (tests use it).
"""

import dataclasses
import functools
import os
import sys
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

from absl import app
from absl import flags
from absl import logging

from mic_tf import _env
from mic_tf import baselines
from mic_tf import config as config_lib
from mic_tf import errors
from mic_tf import names
from mic_tf import reproducibility
from mic_tf.data import registry as data_registry
from mic_tf.mining import MiningConfig
from mic_tf.models.config import BASIC_LOSSES, II_POSITIVES, TERMS
from mic_tf.models.config import WEIGHTING_MODES
from mic_tf.models.config import MICConfig

USER_ERROR_EXIT_CODE = 2


def define_run_flags() -> None:
  """--debug and --deterministic (``run`` defines them for every binary)."""
  if "debug" in flags.FLAGS:
    return
  flags.DEFINE_bool("debug", False, "Show the Python traceback of user "
                    "errors (bad flags, files, run directories) too.")
  flags.DEFINE_bool("deterministic", False, "The same numbers on any x86-64 "
                    "CPU with AVX2: oneDNN kernels capped at "
                    f"{reproducibility.DETERMINISTIC_ISA}, oneDNN graph "
                    "rewrites pinned on, and deterministic "
                    "TensorFlow ops (see mic_tf.reproducibility and the "
                    "README).")
  flags.DEFINE_integer("threads", 0, "Threads TensorFlow may use inside one "
                       "op and between ops (0: its default, one per core). "
                       "1 lets two runs share a 2-core machine without "
                       "contending (benchmarks/parallel_training.sh "
                       "measures the trade).",
                       lower_bound=0)


def run(main: Callable[[List[str]], Any],
        argv: Optional[List[str]] = None) -> None:
  """``app.run(main)`` with the console and error rules of this module."""
  define_run_flags()
  app.run(functools.partial(_guarded_main, main), argv=argv,
          flags_parser=_parse_flags_and_start)


def _parse_flags_and_start(argv: List[str]) -> List[str]:
  remaining = _parse_flags(argv)
  start_up(flags.FLAGS)
  return remaining


def start_up(f) -> None:
  """Sets the start-up environment of parsed flags before TensorFlow loads.

  ``TF_CPP_MIN_LOG_LEVEL`` from ``--verbosity`` and, with
  ``--deterministic`` (or ``MIC_TF_DETERMINISTIC=1``), the pinned oneDNN
  settings (``mic_tf._env``). Nothing is set once TensorFlow is loaded (it
  read them already): ``--deterministic`` is then refused with the fix
  (``reproducibility.enable_determinism``). Binaries therefore import the
  modules that load TensorFlow inside ``main``, after this ran.
  """
  if "tensorflow" in sys.modules:
    return
  verbosity = f.verbosity if f["verbosity"].present else None
  deterministic = (f.deterministic if f["deterministic"].present
                   else _env.requested_determinism(()))
  _env.apply_environment(_env.startup_settings(verbosity, deterministic))


def invoke(main: Callable[[List[str]], Any], argv: List[str]) -> Any:
  """Runs a binary's ``main`` in this process as ``run`` would.

  Every flag is first reset to its default, so consecutive calls do not see
  each other's flags. A user error prints its line to stderr and raises
  ``SystemExit(2)``, as on the command line.

  Args:
    main: The binary's ``main(argv)``.
    argv: The command line, program name first.

  Returns:
    What ``main`` returned.
  """
  define_run_flags()
  flags.FLAGS.unparse_flags()
  return _guarded_main(main, _parse_flags(argv))


def _program(argv: Sequence[str]) -> str:
  return os.path.basename(argv[0]) if argv else "mic_tf"


def _fail(program: str, message: str) -> None:
  print(f"{program}: error: {message}", file=sys.stderr, flush=True)
  sys.exit(USER_ERROR_EXIT_CODE)


def _parse_flags(argv: List[str]) -> List[str]:
  """Parses flags; a flag error is one line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as error:
    hint = ("; run with --helpshort to list the flags"
            if isinstance(error, flags.UnrecognizedFlagError)
            and "Did you mean" not in str(error) else "")
    _fail(_program(argv), errors.one_line(error) + hint)


def _guarded_main(main: Callable[[List[str]], Any], argv: List[str]) -> Any:
  f = flags.FLAGS
  if not f["verbosity"].present:
    # app.run raises the default to INFO; the detail is for --verbosity=1.
    logging.set_verbosity(logging.WARNING)
  # ValueErrors raised by the binary's own checks are user errors too.
  code = getattr(main, "__code__", None)
  own_code = ([os.path.dirname(os.path.abspath(code.co_filename))]
              if code else [])
  try:
    if f.deterministic:
      reproducibility.enable_determinism()
    if f.threads:
      reproducibility.set_threads(f.threads)
    return main(argv)
  except KeyboardInterrupt:
    print(f"{_program(argv)}: interrupted", file=sys.stderr, flush=True)
    sys.exit(130)
  except Exception as error:  # pylint: disable=broad-except
    if f.debug or not errors.is_user_error(error, extra_dirs=own_code):
      raise
    _fail(_program(argv), errors.one_line(error))


def setting_default(name: str) -> Any:
  """The default of an ``ExperimentConfig`` setting (``mic_tf.config``)."""
  return _setting_field(name)[1]


def _setting_field(name: str) -> Tuple[dataclasses.Field, Any]:
  if name in config_lib.SETTING_SECTIONS:
    cls = config_lib.SECTIONS[config_lib.SETTING_SECTIONS[name]]
  else:
    cls = config_lib.ExperimentConfig
  field = next(f for f in dataclasses.fields(cls) if f.name == name)
  default = (field.default if field.default is not dataclasses.MISSING
             else field.default_factory())
  return field, default


def define_setting_flag(kind: str, name: str, **kwargs: Any) -> None:
  """Defines ``--<name>`` for an ``ExperimentConfig`` setting.

  Its default and help text are the setting's (``mic_tf.config``), so that
  the binaries and ``ExperimentConfig()`` share one set of defaults.

  Args:
    kind: ``"string"``, ``"integer"``, ``"float"``, ``"bool"``, ``"enum"``
      or ``"list"`` (``flags.DEFINE_<kind>``).
    name: The setting (a field of a ``mic_tf.config`` section).
    **kwargs: Flag-only arguments (``lower_bound``, ``enum_values``, ...).
  """
  field, default = _setting_field(name)
  if kind == "list":
    default = [str(v) for v in default]
  elif name == "patience" and default is None:
    default = 0  # --patience=0: train every epoch
  getattr(flags, f"DEFINE_{kind}")(name=name, default=default,
                                   help=field.metadata["help"], **kwargs)


def define_data_flags() -> None:
  """--dataset, --data_dir, --data_path and the bring-your-own columns."""
  if "dataset" in flags.FLAGS:
    return  # a binary and a test may both define them
  define_setting_flag("enum", "dataset",
                      enum_values=sorted(data_registry.LOADERS))
  define_setting_flag("string", "data_dir")
  flags.DEFINE_string("data_path", None, "File or folder of datasets that "
                      "cannot be downloaded (ml-1m-grouplens zip, "
                      "amazon-books reviews, taobao UserBehavior.csv, custom "
                      "interactions CSV/Parquet).")
  flags.DEFINE_string("metadata_path", None,
                      "amazon-books: meta_Books.json for item categories.")
  flags.DEFINE_string("user_col", "user", "custom: user column.")
  flags.DEFINE_string("item_col", "item", "custom: item column.")
  flags.DEFINE_string("time_col", "timestamp", "custom: timestamp column.")
  flags.DEFINE_string("user_features_path", None,
                      "custom: user feature table (CSV/Parquet).")
  flags.DEFINE_string("item_features_path", None,
                      "custom: item feature table (CSV/Parquet).")
  flags.DEFINE_list("item_bag_columns", [],
                    "custom: item feature columns holding token lists.")
  flags.DEFINE_float("synthetic_scale", None, "synthetic-books / "
                     "synthetic-taobao: fraction of the real dataset's size "
                     "(default 1.0 / 0.01).", lower_bound=1e-6)
  define_setting_flag("float", "train_user_fraction")


def define_training_flags() -> None:
  """Model, optimisation and output flags."""
  if "tower" in flags.FLAGS:
    return
  define_setting_flag("string", "tower")
  define_setting_flag("integer", "epochs", lower_bound=1)
  define_setting_flag("integer", "patience", lower_bound=0)
  define_setting_flag("list", "select_on")
  define_setting_flag("enum", "init_order",
                      enum_values=list(config_lib.INIT_ORDERS))
  define_setting_flag("integer", "batch_size", lower_bound=2)
  define_setting_flag("float", "learning_rate", lower_bound=0.0)
  define_setting_flag("float", "weight_decay", lower_bound=0.0)
  define_setting_flag("enum", "optimizer", enum_values=list(names.OPTIMIZERS))
  define_setting_flag("enum", "strategy", enum_values=list(names.STRATEGIES))
  define_setting_flag("integer", "embedding_dim", lower_bound=1)
  define_setting_flag("integer", "output_dim", lower_bound=1)
  define_setting_flag("list", "hidden_units")
  define_setting_flag("float", "dropout", lower_bound=0.0, upper_bound=0.99)
  define_setting_flag("integer", "maxlen", lower_bound=1)
  define_setting_flag("integer", "steps_per_epoch", lower_bound=1)
  define_setting_flag("integer", "examples_per_epoch", lower_bound=1)
  flags.DEFINE_integer("num_interests", 4, "Interests of multi-interest "
                       "towers (comirec_sa, comirec_dr).", lower_bound=1)
  define_setting_flag("bool", "use_user_id")
  define_setting_flag("integer", "max_item_users", lower_bound=0)
  define_setting_flag("bool", "exclude_history")
  define_setting_flag("integer", "seed")
  define_setting_flag("string", "output_dir")
  flags.DEFINE_list("baselines", [], "Reference rows to add: "
                    f"{', '.join(baselines.BASELINES)}.")
  flags.DEFINE_integer("verbose", 1, "Keras progress: 0 silent, 1 bars, "
                       "2 one line per epoch.")


def define_mic_flags() -> None:
  """Every ``MICConfig`` setting as a flag."""
  if "mic_terms" in flags.FLAGS:
    return
  d = MICConfig()
  flags.DEFINE_enum("mic_preset", "paper", ["paper", "tuned"],
                    "Starting values of the MIC settings: paper (eq. 8 with "
                    "lambda 0.7, tau 0.1, 1:1:1) or tuned (MICConfig.tuned(), "
                    "chosen on validation users, with all three terms); MIC "
                    "flags given on the command line override the preset.")
  flags.DEFINE_list("mic_terms", [], "Contrastive terms, any of "
                    f"{','.join(TERMS)}; empty = base model.")
  flags.DEFINE_float("mic_lambda", d.lambda_, "Basic loss weight λ.",
                     lower_bound=0.0, upper_bound=1.0)
  flags.DEFINE_float("w_ui", 1.0, "Weight of the UI term.", lower_bound=0.0)
  flags.DEFINE_float("w_uu", 1.0, "Weight of the UU term.", lower_bound=0.0)
  flags.DEFINE_float("w_ii", 1.0, "Weight of the II term.", lower_bound=0.0)
  flags.DEFINE_enum("weighting", d.weighting, list(WEIGHTING_MODES),
                    "fixed (eq. 8) or uncertainty (learned weights).")
  flags.DEFINE_float("temperature", d.temperature,
                     "Contrastive temperature τ.", lower_bound=1e-6)
  flags.DEFINE_enum("basic_loss", d.basic_loss, list(BASIC_LOSSES),
                    "Basic loss.")
  flags.DEFINE_float("basic_temperature", d.basic_temperature,
                     "Temperature of the basic loss.", lower_bound=1e-6)
  flags.DEFINE_bool("log_q", d.log_q_correction, "logQ correction in the "
                    "softmax basic loss.")
  flags.DEFINE_integer("num_views", d.num_views, "Perturbed views per side "
                       "(2: view vs view; 1: anchor vs view).",
                       lower_bound=1, upper_bound=2)
  flags.DEFINE_float("user_attribute_mask", d.user_attribute_mask,
                     "Masking rate of user attributes.", lower_bound=0.0,
                     upper_bound=0.99)
  flags.DEFINE_float("history_mask", d.history_mask,
                     "Masking rate of history items.", lower_bound=0.0,
                     upper_bound=0.99)
  flags.DEFINE_float("item_attribute_mask", d.item_attribute_mask,
                     "Masking rate of item attributes.", lower_bound=0.0,
                     upper_bound=0.99)
  flags.DEFINE_float("item_users_mask", d.item_users_mask,
                     "Masking rate of an item's user-bag entries.",
                     lower_bound=0.0, upper_bound=0.99)
  flags.DEFINE_float("embedding_dropout", d.embedding_dropout,
                     "Dropout in the embedded feature space (views).",
                     lower_bound=0.0, upper_bound=0.99)
  flags.DEFINE_enum("projection", d.projection, ["mlp", "none"],
                    "Projection heads into the shared space.")
  flags.DEFINE_integer("projection_dim", d.projection_dim,
                       "Width of the shared space.", lower_bound=1)
  flags.DEFINE_list("term_temperatures", [], "Per-term temperature "
                    "overrides, e.g. ii=0.5,uu=0.2 (others use "
                    "--temperature).")
  flags.DEFINE_bool("mask_false_negatives", d.mask_false_negatives,
                    "Never use in-batch known positives (same user, or in "
                    "the row's history) as negatives in the basic, UI and "
                    "II losses.")
  flags.DEFINE_integer("contrastive_warmup_steps",
                       d.contrastive_warmup_steps, "Ramp the contrastive "
                       "weight from 0 over this many steps.", lower_bound=0)
  flags.DEFINE_integer("contrastive_batch_size", None, "Rows of each batch "
                       "that get views and contrastive terms (default: all).",
                       lower_bound=2)
  flags.DEFINE_enum("ii_positives", d.ii_positives, list(II_POSITIVES),
                    "Positive of each item in the II term: views (the other "
                    "perturbed view of the item, eq. 6) or cooccurrence (a "
                    "view of one of its --ii_neighbors most co-chosen items "
                    "among the training users).")
  flags.DEFINE_integer("ii_neighbors", d.ii_neighbors, "Co-occurrence "
                       "neighbours kept per item (--ii_positives="
                       "cooccurrence).", lower_bound=1)
  flags.DEFINE_float("distill_weight", d.distill_weight, "Weight of the "
                     "U2U-teacher term: the U2I query learns items of the "
                     "U2U channel's list, refreshed each epoch (0: off; "
                     "beyond the paper).", lower_bound=0.0)
  flags.DEFINE_integer("distill_items", d.distill_items, "Length of each "
                       "training user's U2U teacher list.", lower_bound=1)
  flags.DEFINE_float("distill_holdout", d.distill_holdout, "Fraction of "
                     "each training user's sequence its U2U teacher does "
                     "not see (0: the whole sequence, excluded).",
                     lower_bound=0.0, upper_bound=0.99)
  flags.DEFINE_integer("distill_start_epoch", d.distill_start_epoch,
                       "First epoch (0-based) with teacher lists; the "
                       "teacher term is 0 before it.", lower_bound=0)


def define_mining_flags() -> None:
  """Every ``MiningConfig`` setting as a flag."""
  if "mining_channels" in flags.FLAGS:
    return
  d = MiningConfig()
  flags.DEFINE_list("mining_channels", [], "Mined channels, any of uu,ii,ui "
                    "(each must also be in --mic_terms); empty = off.")
  flags.DEFINE_integer("num_neighbours", d.num_neighbours,
                       "kNN positives per anchor.", lower_bound=1)
  flags.DEFINE_integer("num_clusters", d.num_clusters,
                       "k-means++ clusters.", lower_bound=2)
  flags.DEFINE_integer("hard_negatives", d.hard_negatives,
                       "Hard negatives per example.", lower_bound=0)
  flags.DEFINE_enum("hard_negative_pool", d.hard_negative_pool,
                    ["nearest_cluster", "other_clusters"],
                    "Where hard negatives come from.")
  flags.DEFINE_float("mining_weight", d.positive_weight,
                     "Weight of the mined-positive term.", lower_bound=0.0)
  flags.DEFINE_integer("refresh_every_steps", None, "Rebuild neighbours and "
                       "clusters every n steps (default: once per epoch).",
                       lower_bound=1)
  flags.DEFINE_integer("mining_warmup_steps", d.warmup_steps, "No mining "
                       "(mined terms off) during the first this many steps.",
                       lower_bound=0)
  flags.DEFINE_enum("mining_index", d.index, ["auto", "exact", "scann"],
                    "Index used for kNN mining.")


def mining_config_from_flags(f) -> MiningConfig:
  if not f.mining_channels:
    return MiningConfig.off()
  return MiningConfig(
      channels=tuple(f.mining_channels), num_neighbours=f.num_neighbours,
      num_clusters=f.num_clusters, hard_negatives=f.hard_negatives,
      hard_negative_pool=f.hard_negative_pool,
      positive_weight=f.mining_weight,
      refresh_every_steps=f.refresh_every_steps, index=f.mining_index,
      warmup_steps=f.mining_warmup_steps)


def _term_temperatures(values: Sequence[str]) -> Dict[str, float]:
  out = {}
  for item in values:
    name, sep, value = item.partition("=")
    try:
      if not sep:
        raise ValueError
      out[name.strip()] = float(value)
    except ValueError:
      raise ValueError(f"--term_temperatures entries must read term=value "
                       f"(e.g. ii=0.5), got {item!r}.") from None
  return out


# Which flags set each MICConfig field that a preset provides.
_PRESET_FLAGS = {
    "terms": ("mic_terms",), "lambda_": ("mic_lambda",),
    "temperature": ("temperature",),
    "term_temperatures": ("term_temperatures",),
    "weights": ("w_ui", "w_uu", "w_ii"),
    "user_attribute_mask": ("user_attribute_mask",),
    "history_mask": ("history_mask",),
    "item_attribute_mask": ("item_attribute_mask",),
    "item_users_mask": ("item_users_mask",),
    "embedding_dropout": ("embedding_dropout",),
    "num_views": ("num_views",),
    "contrastive_batch_size": ("contrastive_batch_size",),
    "contrastive_warmup_steps": ("contrastive_warmup_steps",),
}


def mic_config_from_flags(f) -> MICConfig:
  config = _mic_config_from_flag_values(f)
  if getattr(f, "mic_preset", "paper") == "paper":
    return config
  preset = MICConfig.tuned().to_dict()
  values = config.to_dict()
  for field, names in _PRESET_FLAGS.items():
    if not any(f[n].present for n in names):
      values[field] = preset[field]
  return MICConfig.from_dict(values)


def _mic_config_from_flag_values(f) -> MICConfig:
  return MICConfig(
      terms=tuple(f.mic_terms), lambda_=f.mic_lambda,
      weights={"ui": f.w_ui, "uu": f.w_uu, "ii": f.w_ii},
      weighting=f.weighting, temperature=f.temperature,
      basic_loss=f.basic_loss, basic_temperature=f.basic_temperature,
      log_q_correction=f.log_q, num_views=f.num_views,
      user_attribute_mask=f.user_attribute_mask, history_mask=f.history_mask,
      item_attribute_mask=f.item_attribute_mask,
      item_users_mask=f.item_users_mask,
      embedding_dropout=f.embedding_dropout, projection=f.projection,
      projection_dim=f.projection_dim,
      contrastive_batch_size=f.contrastive_batch_size,
      term_temperatures=_term_temperatures(f.term_temperatures),
      mask_false_negatives=f.mask_false_negatives,
      contrastive_warmup_steps=f.contrastive_warmup_steps,
      ii_positives=f.ii_positives, ii_neighbors=f.ii_neighbors,
      distill_weight=f.distill_weight, distill_items=f.distill_items,
      distill_holdout=f.distill_holdout,
      distill_start_epoch=f.distill_start_epoch)


def dataset_kwargs_from_flags(f) -> Dict[str, Any]:
  """Loader arguments (paths, columns) from the data flags."""
  kwargs: Dict[str, Any] = {}
  if f.synthetic_scale is not None and not f.dataset.startswith("synthetic-"):
    raise ValueError(f"--synthetic_scale is for the synthetic-* datasets, "
                     f"not --dataset={f.dataset}.")
  if f.data_path:
    kwargs["path"] = f.data_path
  if f.dataset == "amazon-books" and f.metadata_path:
    kwargs["metadata_path"] = f.metadata_path
  if f.dataset == "custom":
    kwargs.update(user_col=f.user_col, item_col=f.item_col,
                  time_col=f.time_col,
                  user_features_path=f.user_features_path,
                  item_features_path=f.item_features_path,
                  item_bag_columns=tuple(f.item_bag_columns))
  elif f.dataset.startswith("synthetic-"):
    if f.data_path:
      raise ValueError(f"--data_path is not used by --dataset={f.dataset} "
                       "(it is generated under --data_dir).")
    if f.synthetic_scale is not None:
      kwargs["scale"] = f.synthetic_scale
  elif f.dataset in ("ml-1m", "ml-100k") and f.data_path:
    raise ValueError(f"--data_path is not used by --dataset={f.dataset} (it "
                     "is fetched); for official GroupLens files use "
                     "--dataset=ml-1m-grouplens --data_path=...")
  return kwargs


def experiment_config_from_flags(f) -> config_lib.ExperimentConfig:
  """Builds (and validates) an ``ExperimentConfig`` from parsed flags."""
  try:
    hidden = tuple(int(h) for h in f.hidden_units)
  except ValueError:
    raise ValueError(f"--hidden_units must be integers, got "
                     f"{f.hidden_units}.") from None
  bad = [b for b in f.baselines if b not in baselines.BASELINES]
  if bad:
    raise ValueError(f"Unknown --baselines {bad}; choose from {baselines.BASELINES}.")
  # Towers are Keras layers: the registry loads TensorFlow (after start_up).
  from mic_tf.towers import registry as tower_registry  # pylint: disable=g-import-not-at-top
  if f.tower not in tower_registry.available_towers():
    raise ValueError(f"Unknown --tower={f.tower}; available: "
                     f"{', '.join(tower_registry.available_towers())}.")
  tower_kwargs = {}
  if f.tower in ("comirec_sa", "comirec_dr"):
    tower_kwargs["num_interests"] = f.num_interests
  return config_lib.ExperimentConfig(
      data=config_lib.DataConfig(
          dataset=f.dataset, data_dir=f.data_dir,
          dataset_kwargs=dataset_kwargs_from_flags(f),
          train_user_fraction=f.train_user_fraction, maxlen=f.maxlen,
          max_item_users=f.max_item_users, use_user_id=f.use_user_id),
      model=config_lib.ModelConfig(
          tower=f.tower, embedding_dim=f.embedding_dim,
          output_dim=f.output_dim, hidden_units=hidden, dropout=f.dropout,
          init_order=f.init_order, tower_kwargs=tower_kwargs),
      training=config_lib.TrainingConfig(
          epochs=f.epochs, patience=f.patience or None,
          batch_size=f.batch_size, learning_rate=f.learning_rate,
          optimizer=f.optimizer, weight_decay=f.weight_decay,
          strategy=f.strategy, steps_per_epoch=f.steps_per_epoch,
          examples_per_epoch=f.examples_per_epoch, seed=f.seed),
      evaluation=config_lib.EvaluationConfig(
          select_on=tuple(f.select_on), exclude_history=f.exclude_history),
      mic=mic_config_from_flags(f), mining=mining_config_from_flags(f),
      output_dir=f.output_dir)


# The flag of each MICConfig field a flag sets alone, from its value: the
# preset's fields (``_PRESET_FLAGS``, where renamed flags such as
# ``mic_lambda`` live; the per-term temperatures are written from
# ``tau_<term>``) and the others, whose flag has the field's name.
_FLAG_OF_MIC_SETTING = {
    **{field: names[0] for field, names in _PRESET_FLAGS.items()
       if len(names) == 1 and field != "term_temperatures"},
    "log_q_correction": "log_q",
    **{field: field for field in (
        "basic_loss", "basic_temperature", "weighting", "projection",
        "projection_dim", "mask_false_negatives", "ii_positives",
        "ii_neighbors", "distill_weight", "distill_items",
        "distill_holdout", "distill_start_epoch")}}
_EXPERIMENT_FLAGS = ("learning_rate", "weight_decay", "dropout", "batch_size",
                     "embedding_dim", "output_dim", "hidden_units", "maxlen",
                     "max_item_users", "optimizer", "init_order")


def _flag_value(value: Any) -> str:
  if isinstance(value, bool):
    return "true" if value else "false"
  if isinstance(value, float):
    return repr(value)  # round-trips exactly
  if isinstance(value, (list, tuple)):
    return ",".join(_flag_value(v) for v in value)
  return str(value)


def flags_for_params(params: Mapping[str, Any],
                     config: config_lib.ExperimentConfig) -> List[str]:
  """The flags that give a search trial's settings, e.g. to train it again.

  Added to the flags of the search's starting point (``--mic_preset``,
  ``--tower``, ...), they give ``config`` back. Settings that one flag
  sets together are written whole from ``config``: any ``w_<term>`` writes
  the three weights, any ``tau_<term>`` every per-term temperature.

  Args:
    params: The trial's searched settings (names as in ``mic_tf.tuning``).
    config: The trial's configuration (``tuning.apply_params``).

  Returns:
    ``--name=value`` strings, sorted by name.

  Raises:
    ValueError: On a setting that no flag sets.
  """
  mic = config.mic.to_dict()
  out = {}
  for name in params:
    prefix, _, term = name.partition("_")
    if prefix == "w" and term in TERMS:
      for t in TERMS:
        out[f"w_{t}"] = _flag_value(config.mic.weights[t])
    elif prefix == "tau" and term in TERMS:
      out["term_temperatures"] = ",".join(
          f"{t}={v!r}" for t, v in sorted(config.mic.term_temperatures.items()))
    elif name in _FLAG_OF_MIC_SETTING:
      out[_FLAG_OF_MIC_SETTING[name]] = _flag_value(mic[name])
    elif name in _EXPERIMENT_FLAGS:
      out[name] = _flag_value(config.setting(name))
    else:
      raise ValueError(f"No flag sets the searched setting {name!r}; pass it "
                       "through the Python API (tuning.apply_params).")
  return [f"--{k}={v}" for k, v in sorted(out.items())]
