r"""Exports a finished run as SavedModels: towers and one server per channel.

Example (exact search):

  python experiments/export.py --run_dir=runs/dssm_mic_s0 \
      --export_dir=exports/dssm_mic_s0 --k=50 --index=exact

Serves the settings experiments/evaluate.py tuned for the run on valid users
(the newest channels*.json report in --run_dir holding a tuning), and prints
which report it took; a run never tuned is exported with the default
settings, and the line says so. --channel_config overrides both.

Writes <export_dir>/{user_tower,item_tower,u2i,u2u,i2i,itemknn,userknn,ease,
fused} and export.json (see ``mic_tf.export``; ``channel_config_source``
records where the settings came from). EASE is left out, with a line saying
so, above its item limit. The servers take raw item ids and raw
attribute values (signature ``recommend``) or the protocol's ids
(``recommend_ids``). ScaNN servers need ``import scann`` before
``tf.saved_model.load`` in the serving process
(``mic_tf.export.load_serving_model`` does it).
"""

from absl import app
from absl import flags

from mic_tf import cli
from mic_tf import names

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Directory of a finished training run "
                    "(the --output_dir of experiments/train.py).")
flags.DEFINE_string("export_dir", None, "Where to write the SavedModels.")
flags.DEFINE_list("channels", list(names.CHANNELS),
                  "Channel servers to export: any of "
                  f"{', '.join(names.CHANNELS)}.")
flags.DEFINE_integer("k", 50, "Items returned per user.", lower_bound=1)
flags.DEFINE_enum("index", "exact", list(names.INDEX_CHOICES),
                  "Search inside the servers: exact matmul or ScaNN ops "
                  "(auto: ScaNN sized by the pool).")
flags.DEFINE_string("channel_config", None, "ChannelConfig as a JSON file "
                    "(e.g. a channels_<split>.json report: its tuned "
                    "settings) or inline JSON; unset: the settings tuned "
                    "for the run (experiments/evaluate.py), else defaults.")
flags.DEFINE_bool("raw_ids", True, "Serve the data's raw ids besides the "
                  "protocol's ids.")
flags.mark_flags_as_required(["run_dir", "export_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Loaded once cli.run set the start-up environment (--deterministic).
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  from mic_tf import runs  # pylint: disable=g-import-not-at-top
  paths = runs.export_run(
      FLAGS.run_dir, FLAGS.export_dir, channels=FLAGS.channels, k=FLAGS.k,
      index=FLAGS.index,
      channel_config=(channels.load_channel_config(FLAGS.channel_config)
                      if FLAGS.channel_config else None),
      raw_ids=FLAGS.raw_ids)
  for name, path in paths.items():
    print(f"{name}: {path}")


if __name__ == "__main__":
  cli.run(main)
