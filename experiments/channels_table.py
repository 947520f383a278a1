r"""Mean ± std over seeds of the per-channel reports of several runs.

Run experiments/evaluate.py on each run directory first, then e.g.:

  python experiments/channels_table.py --split=test \
      --groups='DSSM=runs/ablation/dssm_base_s*' \
      --groups='DSSM+MIC=runs/ablation/dssm_all_s*'
"""

import glob
import json
import os

from absl import app
from absl import flags

from mic_tf import grid

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("groups", [], "LABEL=GLOB of run directories.")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Which report.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  groups = {}
  for spec in FLAGS.groups:
    if "=" not in spec:
      raise app.UsageError(f"--groups needs LABEL=GLOB, got {spec!r}.")
    label, pattern = spec.split("=", 1)
    dirs = sorted(glob.glob(pattern))
    reports = []
    for d in dirs:
      path = os.path.join(d, f"channels_{FLAGS.split}.json")
      if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: run experiments/"
                                f"evaluate.py --run_dir={d} first.")
      with open(path) as f:
        reports.append(json.load(f))
    if not reports:
      raise FileNotFoundError(f"No run directory matches {pattern!r}.")
    groups[label] = reports
  print(grid.channel_summary_table(groups))


if __name__ == "__main__":
  app.run(main)
