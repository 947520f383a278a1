r"""Evaluates the retrieval channels (U2I, U2U, I2I, fused) of a finished run.

Example (test users, every channel, exact and ScaNN indexes):

  python experiments/evaluate.py --run_dir=runs/dssm_mic_s0 --split=test \
      --channels=u2i,u2u,i2i,fused --index=both

Prints one row per (index, channel) and writes
<run_dir>/channels_<split>.json. With --channels=u2i --index=exact the U2I row
equals the test numbers in the run's metrics.json. Channel settings (U2U N
and alpha, I2I M' and M, fusion rule) come from --channel_config, a JSON file
or inline JSON in the form of ``ChannelConfig.to_json()``, or are tuned on
the valid users first with --tune_grid (the chosen settings are printed and
stored in the JSON). All logic lives in ``mic_tf.channels.report``.
"""

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import channels
from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Directory of a finished training run "
                    "(the --output_dir of experiments/train.py).")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Users to evaluate.")
flags.DEFINE_list("channels", list(channels.CHANNELS),
                  "Channels: any of u2i, u2u, i2i, fused.")
flags.DEFINE_enum("index", "exact", ["exact", "scann", "both"],
                  "Nearest-neighbour index of the searches.")
flags.DEFINE_string("channel_config", None, "ChannelConfig as a JSON file or "
                    "inline JSON (default settings if unset).")
flags.DEFINE_string("tune_grid", None, "Optional JSON (file or inline) "
                    "{channel: {setting: [values]}} for u2u, i2i and/or "
                    "fused, tuned on the valid users before evaluating, "
                    "e.g. '{\"u2u\": {\"alpha\": [0.3, 0.7]}}'.")
flags.DEFINE_string("tune_metric", "recall@50", "Metric the tuning maximises.")
flags.mark_flag_as_required("run_dir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  report = channels.evaluate_run(
      FLAGS.run_dir, split=FLAGS.split, channels=FLAGS.channels,
      index=FLAGS.index,
      channel_config=channels.load_channel_config(FLAGS.channel_config),
      tune_grids=channels.load_json_option(FLAGS.tune_grid, "tune_grid"),
      tune_metric=FLAGS.tune_metric)
  tuning = report.get("tuning", {}).get("channels", {})
  for channel, tuned in tuning.items():
    print(f"{channel} tuned on valid users: {tuned['best_params']}")
  print(channels.format_table(report["results"]))


if __name__ == "__main__":
  cli.run(main)
