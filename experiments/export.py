r"""Exports a finished run as SavedModels: towers and one server per channel.

Example:

  python experiments/export.py --run_dir=runs/dssm_mic_s0 \
      --export_dir=exports/dssm_mic_s0 --channels=u2i,u2u,i2i,fused \
      --k=50 --index=scann

Writes <export_dir>/{user_tower,item_tower,u2i,u2u,i2i,fused} and
export.json (see ``mic_tf.export`` for the signatures). ScaNN servers need
``import scann`` before ``tf.saved_model.load`` in the serving process
(``mic_tf.export.load_serving_model`` does it).
"""

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads Keras)
from mic_tf import channels
from mic_tf import cli
from mic_tf import export

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Directory of a finished training run "
                    "(the --output_dir of experiments/train.py).")
flags.DEFINE_string("export_dir", None, "Where to write the SavedModels.")
flags.DEFINE_list("channels", list(channels.CHANNELS),
                  "Channel servers to export: any of u2i, u2u, i2i, fused.")
flags.DEFINE_integer("k", 50, "Items returned per user.", lower_bound=1)
flags.DEFINE_enum("index", "exact", ["exact", "scann"],
                  "Search inside the servers: exact matmul or ScaNN ops.")
flags.DEFINE_string("channel_config", None, "ChannelConfig as a JSON file or "
                    "inline JSON (default settings if unset).")
flags.mark_flags_as_required(["run_dir", "export_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  paths = export.export_run(
      FLAGS.run_dir, FLAGS.export_dir, channels=FLAGS.channels, k=FLAGS.k,
      index=FLAGS.index,
      channel_config=channels.load_channel_config(FLAGS.channel_config))
  for name, path in paths.items():
    print(f"{name}: {path}")


if __name__ == "__main__":
  cli.run(main)
