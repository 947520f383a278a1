r"""Trains one model on one dataset and evaluates it (U2I, exact retrieval).

Example (DSSM + MIC with all three contrastive terms on MovieLens-1M):

  python experiments/train.py --dataset=ml-1m --tower=dssm \
      --mic_terms=ui,uu,ii --epochs=3 --output_dir=runs/dssm_mic_s0

Writes config.json, metrics.json (valid + test, every metric, both NDCG
variants), checkpoints, TensorBoard logs under --output_dir, and prints a
table. All logic lives in the library: ``mic_tf.config`` (the settings),
``mic_tf.training`` (the training loop) and ``mic_tf.baselines`` (the
reference rows of --baselines).
"""

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import baselines
from mic_tf import cli

FLAGS = flags.FLAGS
cli.define_data_flags()
cli.define_training_flags()
cli.define_mic_flags()
cli.define_mining_flags()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = cli.experiment_config_from_flags(FLAGS)
  results = baselines.run_with_baselines(config, FLAGS.baselines,
                                         verbose=FLAGS.verbose)
  print(baselines.results_table(results))


if __name__ == "__main__":
  cli.run(main)
