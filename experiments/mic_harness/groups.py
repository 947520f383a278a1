"""Groups of runs named on the command line as ``LABEL=GLOB[,GLOB...]``.

Every analysis binary (``channels_table.py``, ``learning_curves.py``,
``user_groups.py``) compares groups of runs, one group per model, a run per
seed. A group is given as ``--groups='DSSM=runs/table_dssm/dssm_base_s*'``;
several globs may be joined with commas. A glob may match run directories or,
where the binary says so, committed copies of a run's ``metrics.json`` (e.g.
``docs/results/converged/dssm_base_s0.json``); the channel reports committed
beside them (``channels_*.json``) are never runs themselves.
"""

import glob
import os
from typing import Dict, List, Sequence

EXAMPLE = "'DSSM=runs/table_dssm/dssm_base_s*'"


def _is_run(path: str, dirs_only: bool) -> bool:
  if os.path.basename(path).startswith("channels_"):
    return False
  return os.path.isdir(path) or (not dirs_only and path.endswith(".json")
                                 and os.path.isfile(path))


def parse(specs: Sequence[str], dirs_only: bool = False
          ) -> Dict[str, List[str]]:
  """``LABEL=GLOB[,GLOB...]`` specs -> label -> sorted run paths.

  Args:
    specs: The ``--groups`` values, in the order given (the order of the
      returned labels).
    dirs_only: Accept run directories only (a binary that re-encodes users
      needs the checkpoint, not a copy of the metrics).

  Raises:
    ValueError: On a spec without a label or a glob, a label given twice, or
      a glob that matches no run.
  """
  what = "run directory" if dirs_only else "run directory or metrics file"
  groups: Dict[str, List[str]] = {}
  for spec in specs:
    label, sep, patterns = spec.partition("=")
    label = label.strip()
    if not sep or not label or not patterns.strip(","):
      raise ValueError(f"--groups needs LABEL=GLOB, got {spec!r}; e.g. "
                       f"--groups={EXAMPLE}.")
    if label in groups:
      raise ValueError(f"--groups label {label!r} is given twice; join its "
                       "globs with commas in one --groups instead.")
    paths = []
    for pattern in (p for p in patterns.split(",") if p):
      found = [p for p in glob.glob(pattern) if _is_run(p, dirs_only)]
      if not found:
        raise ValueError(f"No {what} matches {pattern!r} (group {label!r}).")
      paths += found
    groups[label] = sorted(set(paths))
  return groups
