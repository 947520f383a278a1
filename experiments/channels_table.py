r"""Mean ± std over seeds of the per-channel reports of several runs.

Run experiments/evaluate.py on each run directory first, then e.g.:

  python experiments/channels_table.py --split=test \
      --groups='DSSM=runs/ablation/dssm_base_s*' \
      --groups='DSSM+MIC=runs/ablation/dssm_all_s*' --base=DSSM

A GLOB may also match the committed copies in docs/results/ (each run's
metrics.json copied as <cell>.json beside channels_<cell>.json), so the
tables of docs/results.md regenerate from a clone without the run directories:

  python experiments/channels_table.py --split=test \
      --groups='DSSM=docs/results/converged/dssm_base_s[0-4].json' \
      --groups='DSSM+MIC=docs/results/converged/dssm_all_s[0-4].json' \
      --base=DSSM

Each run's metrics.json gives its seed, selected epoch, the most epochs
allowed (config.epochs) and training time; cells whose selected epoch is the
last allowed one are flagged as not converged. With --base, every other
group is compared with it per channel, paired by seed (mean ± std of the
differences, paired t-test p-value, and the 2-pooled-std criterion); with
--pair=VARIANT:BASE (repeatable) each variant is compared with its own base,
e.g. every tower of Table 2 with its +MIC row in one table.
"""

import json
import os

from absl import app
from absl import flags

from mic_tf import cli
from mic_tf import grid
from mic_tf import training
from mic_tf.analysis import groups as groups_lib

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("groups", [], "LABEL=GLOB of run directories.")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Which report.")
flags.DEFINE_string("base", None, "Label of the group the others are "
                    "compared with (paired by seed).")
flags.DEFINE_multi_string("pair", [], "VARIANT:BASE: compare group VARIANT "
                          "with group BASE, paired by seed (repeat for each "
                          "tower of Table 2, e.g. --pair='YouTubeDNN+MIC:"
                          "YouTubeDNN').")
flags.DEFINE_string("compact", None, "Print one table of this metric only "
                    "(a row per group, a column per channel; exact index) "
                    "instead of every metric.")
flags.DEFINE_list("paired_metrics", ["recall@50"],
                  "Metrics of the paired comparison.")


def committed_copy(path: str) -> bool:
  """Whether ``path`` is a committed copy of a run's metrics.json (e.g.
  ``docs/results/converged/dssm_base_s0.json``) rather than a run dir."""
  return os.path.isfile(path) and path.endswith(".json")


def report_path(run: str, split: str) -> str:
  """The channel report of a run dir, or the committed copy beside a
  committed metrics copy (``channels_<name>.json``, test users only)."""
  if committed_copy(run):
    if split != "test":
      raise ValueError(f"{run} is a committed copy: only test reports are "
                       "committed (use --split=test, or the run dirs).")
    folder, name = os.path.split(run)
    return os.path.join(folder, f"channels_{name}")
  return os.path.join(run, f"channels_{split}.json")


def load_run_info(run_dir: str) -> dict:
  """Seed, selected epoch, most epochs allowed, training time and the
  selected epoch's valid Recall@50 of a run (a run dir or a committed copy
  of its metrics.json)."""
  path = (run_dir if committed_copy(run_dir)
          else os.path.join(run_dir, "metrics.json"))
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} is missing: {run_dir!r} is not a "
                            "finished run of experiments/train.py.")
  with open(path) as f:
    metrics = json.load(f)
  info = {"seed": metrics["seed"], "best_epoch": metrics["best_epoch"],
          "max_epochs": metrics["config"]["epochs"],
          "epochs_run": metrics.get("epochs_run", len(metrics["history"])),
          "train_seconds": training.whole_train_seconds(metrics)}
  valid = metrics.get("valid", {}).get("recall@50")
  if valid is not None:
    info[grid.VALID_KEY] = valid
  return info


def parse_pair(spec: str):
  """``'VARIANT:BASE'`` -> ``('VARIANT', 'BASE')``."""
  variant, sep, base = spec.rpartition(":")
  if not sep or not variant or not base:
    raise ValueError(f"--pair needs VARIANT:BASE (two --groups labels), got "
                     f"{spec!r}; e.g. --pair='DSSM+MIC:DSSM'.")
  return variant, base


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  pairs = [parse_pair(spec) for spec in FLAGS.pair]
  groups = {}
  for label, runs in groups_lib.parse(FLAGS.groups).items():
    reports = []
    for run in runs:
      path = report_path(run, FLAGS.split)
      if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} is missing: run experiments/evaluate.py --run_dir={run} "
            "first." if not committed_copy(run) else
            f"{path} is missing: {run} has no committed channel report.")
      with open(path) as f:
        reports.append({**json.load(f), "run": load_run_info(run)})
    groups[label] = reports
  if FLAGS.compact:
    print(grid.channel_metric_table(groups, FLAGS.compact))
  else:
    print(grid.channel_summary_table(groups))
  print()
  print(grid.EPOCH_LEGEND)
  if FLAGS.base or pairs:
    print()
    print(grid.channel_paired_table(groups, FLAGS.base,
                                    metrics=FLAGS.paired_metrics,
                                    pairs=pairs))


if __name__ == "__main__":
  cli.run(main)
