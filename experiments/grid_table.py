r"""Prints the tables of a finished grid (no training).

  python experiments/grid_table.py --grid=runs/ablation/grid.json \
      --paired_metrics=recall@50,recall@20

Reads one or more grid.json files written by experiments/ablation.py and
prints: mean ± std per model (with each seed's selected epoch / the most
epochs allowed, and how many seeds did not converge), each variant against
its tower's base paired by seed (mean ± std of the differences, paired
t-test p-value, and the 2-pooled-std criterion), and one row per cell.
"""

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("grid", [], "grid.json file(s) of finished grids.")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Which users.")
flags.DEFINE_list("paired_metrics", ["recall@50"],
                  "Metrics of the paired comparison.")
flags.DEFINE_string("base_variant", "base", "Variant the others are "
                    "compared with.")
flags.DEFINE_integer("default_max_epochs", None, "Most epochs allowed, for "
                     "rows of grid.json files written before max_epochs was "
                     "recorded (the --epochs those grids ran with).",
                     lower_bound=1)


def main(argv):
  from mic_harness import tables  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.grid:
    raise app.UsageError("Pass --grid=<output_dir>/grid.json.")
  print(tables.grid_tables(FLAGS.grid, split=FLAGS.split,
                         paired_metrics=FLAGS.paired_metrics,
                         base_variant=FLAGS.base_variant,
                         default_max_epochs=FLAGS.default_max_epochs))


if __name__ == "__main__":
  cli.run(main)
