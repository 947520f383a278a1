"""Seeds x variants x towers grids: every cell trained, resumable.

The paper's Tables 2 and 3 compare models and loss settings; here every cell
(tower, variant, seed) is trained on the same prepared data and recorded
with its selected epoch, the most epochs allowed, its training time and its
valid and test metrics (``run_grid``; ``<output_dir>/grid.json``). A finished
cell is kept and an interrupted one resumes. ``experiments/ablation.py``
runs a grid; the tables of finished grids (mean ± std over seeds, paired
comparisons) are in ``mic_harness.tables``.
"""

import dataclasses
import json
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from absl import logging

from mic_tf import config as config_lib
from mic_tf import console
from mic_tf import features
from mic_tf import names
from mic_tf import training
from mic_tf.config import ExperimentConfig
from mic_tf.mining import MiningConfig
from mic_tf.models.config import TERMS


def parse_variant(name: str) -> Tuple[Tuple[str, ...], bool]:
  """Parses a variant name into (MIC terms, mining on?).

  ``"base"`` -> ((), False); ``"ui+uu"`` -> (("ui", "uu"), False); ``"all"``
  -> (all terms, False); a ``"+nn"`` suffix turns nearest-neighbour mining on
  for those terms (``"all+nn"``).
  """
  mined = name.endswith("+nn")
  if mined:
    name = name[:-len("+nn")]
  if name == "base":
    if mined:
      raise ValueError("Mining needs contrastive terms: 'base+nn' is not a "
                       "variant; use e.g. 'all+nn'.")
    return (), False
  if name == "all":
    return TERMS, mined
  terms = tuple(name.split("+"))
  bad = [t for t in terms if t not in TERMS]
  if bad:
    raise ValueError(f"Unknown term(s) {bad} in variant {name!r}; use base, "
                     f"all, or terms from {TERMS} joined by '+' (optionally "
                     "ending in '+nn' for mining).")
  return terms, mined


def run_grid(base: ExperimentConfig, towers: Sequence[str],
             variants: Sequence[str], seeds: Sequence[int],
             output_dir: Optional[str] = None,
             verbose: int = 2) -> List[Dict[str, Any]]:
  """Trains every (tower, variant, seed) cell on one prepared dataset.

  Args:
    base: Config of every run; tower, MIC terms, seed and output_dir are
      replaced per cell.
    towers: Tower names.
    variants: Variant names (see ``parse_variant``).
    seeds: Seeds.
    output_dir: Root of per-cell run directories and ``grid.json``.
    verbose: Keras verbosity.

  Returns:
    One dict per cell: tower, variant, seed, label, valid, test,
    best_epoch, epochs_run, max_epochs (``TrainingConfig.epochs``), converged,
    train_seconds, wall_seconds.
  """
  prepared = features.prepare_data(base)
  rows = []
  progress = console.Progress(
      "grid", len(towers) * len(variants) * len(seeds), "runs",
      log_every=0.0)
  for tower in towers:
    for variant in variants:
      terms, mined = parse_variant(variant)
      mining = MiningConfig.off()
      if mined:
        mining = base.mining if base.mining.enabled else MiningConfig()
        mining = dataclasses.replace(
            mining, channels=tuple(c for c in mining.channels if c in terms))
      for seed in seeds:
        mic = dataclasses.replace(base.mic, terms=terms)
        cell_dir = (os.path.join(output_dir, f"{tower}_{variant}_s{seed}")
                    if output_dir else None)
        config = base.replace_settings(tower=tower, mic=mic, seed=seed,
                                       mining=mining, output_dir=cell_dir)
        start = time.perf_counter()
        result = _finished_cell(config)
        if result is not None:
          logging.info("%s seed %d: finished before, kept (%s)",
                       names.model_label(tower, terms, mined), seed, cell_dir)
        else:
          result = training.run_experiment(config, prepared, verbose=verbose)
          result.pop("model")
        rows.append({"tower": tower, "variant": variant, "seed": seed,
                     "label": names.model_label(tower, terms, mined),
                     "valid": result["valid"], "test": result["test"],
                     "best_epoch": result["best_epoch"],
                     "epochs_run": result.get("epochs_run"),
                     "max_epochs": config.training.epochs,
                     "converged": result.get("converged"),
                     "train_seconds": training.whole_train_seconds(result),
                     "wall_seconds": time.perf_counter() - start})
        logging.info("%s seed %d test %s", rows[-1]["label"], seed,
                     result["test"])
        if output_dir:
          _dump(os.path.join(output_dir, "grid.json"), rows)
        progress.update()
  progress.close()
  return rows


def _finished_cell(config: ExperimentConfig) -> Optional[Dict[str, Any]]:
  """The results of a cell that already finished with this very config.

  A grid that was interrupted resumes: finished cells are read back, a cell
  cut off mid-training resumes from its backup, and a cell whose directory
  holds another config is an error (never silently mixed).
  """
  if not config.output_dir:
    return None
  path = os.path.join(config.output_dir, "metrics.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    result = json.load(f)
  # Through the dataclass: settings added since the cell ran compare at
  # their defaults.
  # (either layout: cells written before the config's sections are flat).
  normal = lambda d: config_lib.flat_settings(json.loads(json.dumps(
      ExperimentConfig.from_dict(d).to_dict(), default=list)))
  saved = normal(result["config"])
  wanted = normal(config.to_dict())
  # Where the cell lives is no setting: a moved grid still resumes.
  saved.pop("output_dir", None)
  wanted.pop("output_dir", None)
  if saved != wanted:
    diff = sorted(k for k in set(saved) | set(wanted)
                  if saved.get(k) != wanted.get(k))
    raise ValueError(
        f"{config.output_dir} holds a finished run with other settings "
        f"({', '.join(diff)}); use another --output_dir or remove it.")
  return result


def _dump(path: str, rows) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump(rows, f, indent=1)
  os.replace(tmp, path)
