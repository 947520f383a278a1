r"""Evaluates the retrieval channels of a finished run.

The learned channels (U2I, U2U, I2I), the classical ones (ItemKNN, UserKNN,
EASE: the reference models as channels) and their fusion.

Example (tune on valid users with the default grid, then test users, every
channel, exact and ScaNN indexes):

  python experiments/evaluate.py --run_dir=runs/dssm_mic_s0 --split=test \
      --channels=u2i,u2u,i2i,fused --index=both

Prints the settings chosen on the valid users (and whether a true mix of
channels beat the best single channel there, and which channels the chosen
fusion uses), then one row per (index, channel), and writes
<run_dir>/channels_<split>.json. By default the U2U (N, gamma, alpha), I2I
(M', M, alpha), ItemKNN (neighbourhood), UserKNN (k), EASE (lambda) and
fusion settings (quota, score-normalised or reciprocal-rank fusion and the
channels' weights, each channel alone included, then the weights refined by
coordinate ascent) are tuned on the valid users with
``mic_tf.channels.DEFAULT_GRIDS``; EASE is left out (one line says so)
above its item limit;
--tune_grid replaces that grid (JSON file or inline JSON) or switches tuning
off (--tune_grid=none, then --channel_config or the defaults are used). With
--channels=u2i --index=exact the U2I row equals the test numbers in the
run's metrics.json. All logic lives in ``mic_tf.runs``.
"""

from absl import app
from absl import flags

from mic_tf import cli
from mic_tf import names

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "Directory of a finished training run "
                    "(the --output_dir of experiments/train.py).")
flags.DEFINE_enum("split", "test", list(names.EVAL_SPLITS),
                  "Users to evaluate.")
flags.DEFINE_list("channels", list(names.CHANNELS),
                  f"Channels: any of {', '.join(names.CHANNELS)}.")
flags.DEFINE_enum("index", "exact", list(names.EVAL_INDEX_CHOICES),
                  "Nearest-neighbour index of the searches.")
flags.DEFINE_string("channel_config", None, "ChannelConfig as a JSON file or "
                    "inline JSON: the settings, or the starting point of "
                    "the tuning (defaults if unset).")
flags.DEFINE_string("tune_grid", "default", "'default' (tune every channel "
                    "and the fusion on valid users with the default grid), "
                    "'none' (no tuning), or JSON (file or inline) "
                    "{channel: {setting: [values]}} for u2u, i2i, itemknn, "
                    "userknn, ease and/or fused, e.g. "
                    "'{\"u2u\": {\"alpha\": [0.3, 0.7]}}'.")
flags.DEFINE_string("tune_metric", "recall@50", "Metric the tuning maximises.")
flags.DEFINE_integer("fusion_folds", None, "With 2 or more: folds of the "
                     "valid users that first choose how complex a fusion "
                     "rule may be (each channel alone, pairs, the grid, the "
                     "grid's best refined); 0: the refined best rule of all "
                     "valid users; unset: mic_tf.channels.FUSION_FOLDS.",
                     lower_bound=0)
flags.DEFINE_string("fusion_prior_margin", "default", "The fusion serves "
                    "the searched rule only when it beats the prior rule "
                    "(mic_tf.channels.PRIOR_FUSION) on the valid users by "
                    "more than this many standard errors: a number >= 0, "
                    "'default' (mic_tf.channels.PRIOR_MARGIN) or 'none' "
                    "(always the searched rule).")
flags.DEFINE_string("report_name", None, "File name of the report in "
                    "--run_dir (default channels_<split>.json).")
flags.mark_flag_as_required("run_dir")


def tune_grids(value: str):
  """The grids of --tune_grid."""
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  if value == "default":
    return channels.DEFAULT_GRIDS
  if value in ("none", ""):
    return None
  return channels.load_json_option(value, "tune_grid")


def prior_margin(value: str):
  """The value of --fusion_prior_margin for ``runs.evaluate_run``."""
  if value in ("default", "none"):
    return None if value == "none" else value
  try:
    margin = float(value)
  except ValueError:
    margin = -1.0
  if not margin >= 0:
    raise app.UsageError(f"--fusion_prior_margin={value}: give a number >= 0"
                         ", 'default' or 'none'.")
  return margin


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Loaded once cli.run set the start-up environment (--deterministic).
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  from mic_tf import runs  # pylint: disable=g-import-not-at-top
  report = runs.evaluate_run(
      FLAGS.run_dir, split=FLAGS.split, channels=FLAGS.channels,
      index=FLAGS.index,
      channel_config=channels.load_channel_config(FLAGS.channel_config),
      tune_grids=tune_grids(FLAGS.tune_grid), tune_metric=FLAGS.tune_metric,
      report_name=FLAGS.report_name, fusion_folds=FLAGS.fusion_folds,
      prior_margin=prior_margin(FLAGS.fusion_prior_margin))
  tuning = report.get("tuning", {})
  for channel, tuned in tuning.get("channels", {}).items():
    print(f"{channel} tuned on valid users: {tuned['best_params']} "
          f"({tuning['metric']} {tuned['best_value']:.3f})")
    summary = tuned.get("summary")
    if summary and "mix_wins" in summary:
      print(f"  valid {tuning['metric']}: best single channel "
            f"{summary['best_single']} {summary['best_single_value']:.3f}, "
            f"best mix {summary['best_mix']} "
            f"{summary['best_mix_value']:.3f}: "
            f"{'a mix wins' if summary['mix_wins'] else 'no mix wins'}")
    if summary and summary.get("family_values"):
      print(f"  held-out {tuning['metric']} on {summary['folds']} folds of "
            "the valid users: " + ", ".join(
                f"{f} {v:.3f}" for f, v in summary["family_values"].items())
            + f"; chosen family: {summary['family']}")
    if summary and "chosen" in summary:
      how = (f"weights refined from {summary['grid_best']}"
             if summary["refined"] else f"best rule of {summary['family']}")
      if summary.get("kept_prior"):
        how = (f"the prior: the search's best beat it by "
               f"{summary['search_minus_prior']:+.3f} "
               f"(standard error {summary['search_minus_prior_se']:.3f})")
      print(f"  chosen fusion: {summary['chosen']} ({how}); channels used: "
            f"{', '.join(summary['channels_used'])}")
  if "fusion" in report:
    print(f"fused list: {report['fusion']['rule']} (channels "
          f"{', '.join(report['fusion']['channels'])})")
  print(runs.format_table(report["results"]))


if __name__ == "__main__":
  cli.run(main)
