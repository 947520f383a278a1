r"""Learning curves: valid Recall@50 epoch by epoch, per seed and per group.

Reads each run's per-epoch history (a run directory or a committed copy of its
metrics.json) and writes one PNG, the curves as JSON and a Markdown table of
the mean over seeds per epoch (also printed). E.g. the DSSM rows of
docs/experiments/dssm.md:

  python experiments/learning_curves.py \
      --groups='DSSM=docs/results/converged/dssm_base_s[0-4].json' \
      --groups='DSSM+MIC=docs/results/converged/dssm_all_s[0-4].json' \
      --output=docs/curves/dssm_ml1m.png

Logic: experiments/mic_harness/learning_curves.py.
"""

import json
import os

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("groups", [], "LABEL=GLOB[,GLOB...] of run "
                          "directories or metrics.json files.")
flags.DEFINE_string("metric", "recall@50", "Validation metric plotted.")
flags.DEFINE_string("output", None, "PNG path; its .json twin gets every "
                    "curve, its .md twin the per-epoch table.", required=True)
flags.DEFINE_string("title", "", "Plot title.")


def main(argv):
  from mic_harness import groups as groups_lib  # pylint: disable=g-import-not-at-top
  from mic_harness import learning_curves  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.groups:
    raise app.UsageError("Pass --groups=LABEL=GLOB (one per group).")
  groups = learning_curves.load_groups(groups_lib.parse(FLAGS.groups),
                                       FLAGS.metric)
  path = learning_curves.plot(groups, FLAGS.output, FLAGS.metric, FLAGS.title)
  with open(os.path.splitext(path)[0] + ".json", "w") as f:
    json.dump({"metric": FLAGS.metric, "split": "valid",
               "groups": {label: [{"source": c.source, "seed": c.seed,
                                   "epochs": c.epochs, "values": c.values,
                                   "best_epoch": c.best_epoch,
                                   "max_epochs": c.max_epochs}
                                  for c in curves]
                          for label, curves in groups.items()}},
              f, indent=1)
  table = learning_curves.curves_table(groups, FLAGS.metric)
  with open(os.path.splitext(path)[0] + ".md", "w") as f:
    f.write(table + "\n")
  print(table)
  print(f"\nWrote {path}")


if __name__ == "__main__":
  cli.run(main)
