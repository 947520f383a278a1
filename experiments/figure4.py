r"""Paper Figure 4: alignment/uniformity of MIC variants against recall.

Train the Table 3 variants, evaluate each run's channels, then plot, e.g.:

  python experiments/ablation.py --dataset=ml-1m --towers=dssm \
      --variants=base,ui,uu,ii,ui+uu,ui+ii,uu+ii,all --seeds=0,1,2 \
      --output_dir=runs/table3
  for d in runs/table3/dssm_*; do
    python experiments/evaluate.py --run_dir=$d --split=test \
        --channels=u2i,u2u,i2i
  done
  python experiments/figure4.py --run_dirs='runs/table3/dssm_*' \
      --output_dir=docs/figure4

Writes <output_dir>/figure4_u2i.png, figure4_u2u.png, figure4_i2i.png (one
point per variant, mean over its seeds, coloured by the channel's recall)
and figure4.json (every run's numbers). The positive pairs of each space are
defined in experiments/mic_harness/alignment_uniformity.py.
"""

import glob
import json
import os

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_list("run_dirs", [], "Run directories or glob patterns.")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Users measured.")
flags.DEFINE_string("metric", "recall@50", "Channel metric of the colours.")
flags.DEFINE_enum("index", "exact", ["exact", "scann"], "Index whose channel "
                  "results colour the points.")
flags.DEFINE_string("output_dir", "docs/figure4", "Where the PNGs and JSON go.")
flags.DEFINE_integer("max_points", 4096, "Points per uniformity (seeded "
                     "subset above).", lower_bound=2)
flags.DEFINE_integer("max_pairs", 20000, "Positive pairs per alignment "
                     "(seeded subset above).", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the subsets.")


def main(argv):
  from mic_harness import figure4  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  run_dirs = []
  for pattern in FLAGS.run_dirs:
    found = sorted(d for d in glob.glob(pattern) if os.path.isdir(d))
    if not found:
      raise app.UsageError(f"No run directory matches {pattern!r}.")
    run_dirs += found
  if not run_dirs:
    raise app.UsageError("Pass --run_dirs (directories or globs).")
  records = figure4.collect(run_dirs, split=FLAGS.split, metric=FLAGS.metric,
                            index=FLAGS.index, max_points=FLAGS.max_points,
                            max_pairs=FLAGS.max_pairs, seed=FLAGS.seed)
  paths = figure4.plot(records, FLAGS.output_dir)
  summary = figure4.summarise(records)
  with open(os.path.join(FLAGS.output_dir, "figure4.json"), "w") as f:
    json.dump({"split": FLAGS.split, "metric": FLAGS.metric,
               "index": FLAGS.index, "runs": records, "points": summary},
              f, indent=1)
  header = ["variant", "seeds"] + list(figure4.GEOMETRY) + [
      f"{c} {FLAGS.metric}" for c in figure4.CHANNELS]
  print("| " + " | ".join(header) + " |")
  print("|" + "---|" * len(header))
  for p in summary:
    print("| " + " | ".join(
        [p["label"], str(len(p["seeds"]))] +
        [f"{p['geometry'][k]:.3f}" for k in figure4.GEOMETRY] +
        [f"{p['recall'][c]:.2f}" for c in figure4.CHANNELS]) + " |")
  for path in paths:
    print(f"Wrote {path}")


if __name__ == "__main__":
  cli.run(main)
