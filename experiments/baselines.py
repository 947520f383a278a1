r"""Computes only the no-training reference rows (no model is trained).

Example (the four rows of the README on MovieLens-1M):

  python experiments/baselines.py --dataset=ml-1m \
      --baselines=mostpop,itemknn,userknn,ease \
      --output=docs/results/baselines_ml1m.json

Same data, protocol and metrics as experiments/train.py (ComiRec protocol,
valid and test users, history excluded). UserKNN's neighbours k and EASE's L2
weight are picked on the valid users (grids in
mic_tf.baselines.BASELINE_GRIDS); the test users are evaluated once, with the
chosen value, which is printed and stored in the JSON with the valid metrics
of every value tried.
"""

import json
import os
import platform
import sys
import time

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import baselines
from mic_tf import cli
from mic_tf.config import ExperimentConfig
from mic_tf.features import prepare_data

FLAGS = flags.FLAGS
cli.define_data_flags()
flags.DEFINE_list("baselines", list(baselines.BASELINES),
                  f"Reference rows, any of {', '.join(baselines.BASELINES)}.")
cli.define_setting_flag("bool", "exclude_history")
flags.DEFINE_string("output", None, "Optional JSON file for the rows.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  bad = [b for b in FLAGS.baselines if b not in baselines.BASELINES]
  if bad or not FLAGS.baselines:
    raise app.UsageError(f"--baselines must list some of "
                         f"{baselines.BASELINES}, got {FLAGS.baselines}.")
  config = ExperimentConfig.from_settings(
      dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
      dataset_kwargs=cli.dataset_kwargs_from_flags(FLAGS),
      train_user_fraction=FLAGS.train_user_fraction,
      exclude_history=FLAGS.exclude_history)
  start = time.perf_counter()
  prepared = prepare_data(config)
  rows = []
  for name in FLAGS.baselines:
    rows.append(baselines.run_baseline(name, prepared,
                                       config.evaluation.cutoffs,
                                       config.evaluation.exclude_history))
    print(f"{rows[-1]['name']}: {rows[-1]['seconds']:.1f} s", flush=True)
  print(baselines.results_table(rows))
  if FLAGS.output:
    ds = prepared.dataset
    record = {
        "command": " ".join(["python", "experiments/baselines.py"] +
                            sys.argv[1:]),
        "dataset": config.data.dataset, "num_items": int(ds.num_items),
        "num_train_users": int(len(ds.train_users)),
        "train_user_fraction": ds.train_user_fraction,
        "num_valid_users": int(len(prepared.valid.users)),
        "num_test_users": int(len(prepared.test.users)),
        "cutoffs": list(config.evaluation.cutoffs),
        "exclude_history": config.evaluation.exclude_history,
        "machine": (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                    f"{platform.python_version()}"),
        "total_seconds": time.perf_counter() - start,
        "rows": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)),
                exist_ok=True)
    with open(FLAGS.output, "w") as f:
      json.dump(record, f, indent=1)
    print(f"Wrote {FLAGS.output}")


if __name__ == "__main__":
  cli.run(main)
