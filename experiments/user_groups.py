r"""Recall@50 of each channel for test users grouped by history length.

Run experiments/evaluate.py on each run first (its valid-tuned channel
settings are reused), then e.g.:

  python experiments/user_groups.py \
      --groups='DSSM=runs/table_dssm/dssm_base_s*' \
      --groups='DSSM+MIC=runs/table_dssm_mic/dssm_all_s*' --base=DSSM \
      --num_groups=3 --output=docs/results/converged/user_groups_dssm.json

Users are split into --num_groups groups of about equal size by the number
of distinct items in their input history; each group's recall is the mean
over its users, per run, then mean ± std over seeds, and every model is
compared with --base paired by seed. Writes the JSON (--output) and a
Markdown twin (.md). Logic: mic_harness.user_groups.
"""

import json
import os

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("groups", [], "LABEL=GLOB of run directories "
                          "(repeat the flag for each model).")
flags.DEFINE_string("base", None, "Label the others are compared with.")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Users to evaluate.")
flags.DEFINE_list("channels", None, "Channels (default: each run's report).")
flags.DEFINE_integer("num_groups", 3, "Groups of users by history length.",
                     lower_bound=1)
flags.DEFINE_string("output", None, "JSON to write (and a .md twin).")


def main(argv):
  from mic_harness import groups as groups_lib  # pylint: disable=g-import-not-at-top
  from mic_harness import user_groups  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.groups:
    raise app.UsageError("Give at least one --groups=LABEL=GLOB.")
  dirs = groups_lib.parse(FLAGS.groups, dirs_only=True)
  record = user_groups.compare_by_history(
      dirs, FLAGS.split, FLAGS.channels, FLAGS.num_groups, FLAGS.base)
  table = record.pop("table")
  print(f"{record.pop('num_users')} {FLAGS.split} users; history lengths "
        f"(distinct items) grouped as {record['labels']}; every run's users "
        "average to its saved report")
  print(table)
  if FLAGS.output:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)),
                exist_ok=True)
    with open(FLAGS.output, "w") as f:
      json.dump(record, f, indent=1)
    with open(os.path.splitext(FLAGS.output)[0] + ".md", "w") as f:
      f.write(table + "\n")
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
