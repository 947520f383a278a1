r"""Trains a grid of towers x MIC variants x seeds and prints mean ± std.

Paper Table 3 style (which contrastive terms help, U2I channel), e.g.:

  python experiments/ablation.py --dataset=ml-1m --towers=dssm \
      --variants=base,ui,uu,ii,all --seeds=0,1,2 --output_dir=runs/ablation

Paper Table 2 style (each tower with and without MIC):

  python experiments/ablation.py --towers=dssm,youtube_dnn,comirec_sa,\
comirec_dr --variants=base,all --seeds=0,1,2 --output_dir=runs/towers

Mining (nearest-neighbour views) with and without, all three channels:

  python experiments/ablation.py --variants=all,all+nn --seeds=0,1,2

Every other flag of experiments/train.py applies to every cell. Writes
<output_dir>/grid.json (every cell) and prints the tables (mean ± std, each
variant against base paired by seed, one row per cell with its selected
epoch); experiments/grid_table.py prints them again from grid.json.
"""

from absl import app
from absl import flags

import mic_tf  # noqa: F401
from mic_tf import cli

FLAGS = flags.FLAGS
cli.define_data_flags()
cli.define_training_flags()
cli.define_mic_flags()
cli.define_mining_flags()
flags.DEFINE_list("towers", ["dssm"], "Towers to compare.")
flags.DEFINE_list("variants", ["base", "ui", "uu", "ii", "all"],
                  "MIC variants: base, all, or terms joined by '+'; a '+nn' "
                  "suffix adds nearest-neighbour mining (e.g. all+nn).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every cell.")


def main(argv):
  from mic_harness import grid  # pylint: disable=g-import-not-at-top
  from mic_harness import tables  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  base = cli.experiment_config_from_flags(FLAGS)
  for v in FLAGS.variants:
    grid.parse_variant(v)  # fail fast on a typo
  try:
    seeds = [int(s) for s in FLAGS.seeds]
  except ValueError:
    raise app.UsageError(f"--seeds must be integers, got {FLAGS.seeds}; "
                         "e.g. --seeds=0,1,2.") from None
  rows = grid.run_grid(base, FLAGS.towers, FLAGS.variants, seeds,
                       FLAGS.output_dir, verbose=FLAGS.verbose)
  print(tables.summary_table(rows))
  print()
  print(tables.EPOCH_LEGEND)
  if "base" in FLAGS.variants and len(FLAGS.variants) > 1:
    print()
    print(tables.paired_table(rows))
  print()
  print(tables.cells_table(rows))


if __name__ == "__main__":
  cli.run(main)
