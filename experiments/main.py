r"""The main job: a model's four channels beside four reference rows.

  python experiments/main.py --dataset=ml-1m --tower=dssm --mic_preset=tuned \
      --output_dir=runs/main

(``bash experiments/run_main.sh`` runs it with the documented settings.)
Fits MostPopular, ItemKNN, UserKNN and EASE (UserKNN's k and EASE's lambda
chosen on valid users), trains the model with early stopping on valid
users, tunes the U2U, I2I and fusion settings on valid users, and prints
one table for the test users: the reference rows and the model's U2I, U2U,
I2I and fused lists. Below it: the best list and its ratio to EASE, and
where the run, its TensorBoard logs and its learning curve (a PNG written
here) are. Every flag of experiments/train.py applies. All logic lives in
``mic_tf.main_job``.
"""

import os

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import cli

FLAGS = flags.FLAGS
cli.define_data_flags()
cli.define_training_flags()
cli.define_mic_flags()
cli.define_mining_flags()

LEARNING_CURVE = "learning_curve.png"
ABLATION = """\
DSSM against DSSM+MIC, five seeds each, trained to convergence (U2I):
  python experiments/ablation.py --dataset=ml-1m --towers=dssm \\
    --variants=base,all --seeds=0,1,2,3,4 --epochs=40 --patience=3 \\
    --mic_preset=tuned --output_dir=runs/table_dssm_mic
  its committed table (docs/experiments/dssm.md): python \\
    experiments/grid_table.py \\
    --grid=docs/results/converged/table_dssm_grid.json \\
    --grid=docs/results/converged/table_dssm_mic_grid.json"""


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.baselines:
    raise app.UsageError("--baselines is for experiments/train.py: the main "
                         "job always shows its four reference rows.")
  if not FLAGS.output_dir:
    raise app.UsageError("Pass --output_dir (the run directory).")
  # TensorFlow loads here, after cli.run applied the start-up environment.
  from mic_tf import main_job  # pylint: disable=g-import-not-at-top
  from mic_harness import learning_curves  # pylint: disable=g-import-not-at-top
  config = cli.experiment_config_from_flags(FLAGS)
  result = main_job.run_main_job(config, verbose=FLAGS.verbose)
  curve = learning_curves.plot(
      {result.model_label: [learning_curves.load(result.output_dir,
                                                 result.metric)]},
      os.path.join(result.output_dir, LEARNING_CURVE), result.metric,
      title=f"{config.data.dataset}, seed {config.training.seed}: valid {result.metric} "
      "by epoch")
  for line in main_job.tuned_lines(result.channels):
    print(line)
  print(result.table())
  print()
  print(result.summary)
  print(f"Run: {result.output_dir} (metrics.json, channels_test.json, "
        f"{main_job.RESULT_FILE}); TensorBoard: tensorboard --logdir "
        f"{result.tensorboard_dir}; learning curve: {curve}")
  print(ABLATION)


if __name__ == "__main__":
  cli.run(main)
