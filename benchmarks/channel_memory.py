r"""Process RSS while channels are built, used, freed and rebuilt.

Shows where a long evaluation's memory goes: after the channel assets of an
(untrained) DSSM on the synthetic Amazon-Books data, it builds the U2I, U2U
and I2I channels of one index kind, retrieves every test user, deletes the
channels, trims the C heap (``malloc_trim``), and does it all twice:

  python benchmarks/channel_memory.py --scale=0.3 --index=scann

One line per step: the resident set (``VmRSS``) in GiB.
"""

import ctypes
import gc

from absl import app
from absl import flags

import mic_tf  # noqa: F401  (Keras 2 first)

from mic_tf import channels as channel_lib
from mic_tf import names
from mic_tf.channels.evaluate import retrieve_users
from mic_tf.config import ExperimentConfig
from mic_tf.data import fetch
from mic_tf.data import protocol
from mic_tf.data import registry
from mic_tf.data import synthetic
from mic_tf.features import prepare_data
from mic_tf.models.build import build_model
from mic_tf.models.build import build_variables
from mic_tf.models.config import MICConfig

FLAGS = flags.FLAGS
flags.DEFINE_float("scale", 0.3, "Fraction of Amazon Books' size.")
flags.DEFINE_enum("index", names.SCANN, list(names.INDEX_KINDS),
                  "Index of the channels.")
flags.DEFINE_integer("rounds", 2, "Build/use/free rounds.")


def _rss_gib() -> float:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) / 2**20
  return float("nan")


def main(argv):
  del argv
  data_dir = fetch.data_dir(None)
  synthetic.books_files(data_dir, FLAGS.scale, 0)
  dataset = protocol.apply_comirec_protocol(registry.load_dataset(
      "synthetic-books", data_dir=data_dir, scale=FLAGS.scale, seed=0))
  config = ExperimentConfig.from_settings(
      dataset="synthetic-books", mic=MICConfig.base())
  prepared = prepare_data(config, dataset)
  model = build_model(config, prepared.tables, dataset)
  build_variables(model, prepared.tables)
  assets = channel_lib.ChannelAssets(model, prepared.tables, dataset)
  for name in ("item_shared", "item_space", "train_user_space"):
    getattr(assets, name)
  print(f"scale {FLAGS.scale:g}, {FLAGS.index} channels, "
        f"{len(prepared.test.users):,} test users")
  print(f"assets ready: {_rss_gib():.2f} GiB")
  libc = ctypes.CDLL("libc.so.6")
  for r in range(FLAGS.rounds):
    built = channel_lib.build_channels(assets, names.BASE_CHANNELS, 50,
                                       FLAGS.index)
    print(f"round {r}: built {_rss_gib():.2f} GiB")
    for channel in names.BASE_CHANNELS:
      retrieve_users(built[channel], prepared.test)
    print(f"round {r}: every test user retrieved {_rss_gib():.2f} GiB")
    del built
    gc.collect()
    print(f"round {r}: channels deleted {_rss_gib():.2f} GiB")
    libc.malloc_trim(0)
    print(f"round {r}: malloc_trim {_rss_gib():.2f} GiB")


if __name__ == "__main__":
  app.run(main)
