r"""Mean ± std over seeds of the per-channel reports of several runs.

Run experiments/evaluate.py on each run directory first, then e.g.:

  python experiments/channels_table.py --split=test \
      --groups='DSSM=runs/ablation/dssm_base_s*' \
      --groups='DSSM+MIC=runs/ablation/dssm_all_s*' --base=DSSM

A GLOB may also match the committed copies in docs/results/ (each run's
metrics.json copied as <cell>.json beside channels_<cell>.json), so the
tables of the results pages (docs/experiments/) regenerate from a clone
without the run directories:

  python experiments/channels_table.py --split=test \
      --groups='DSSM=docs/results/converged/dssm_base_s[0-4].json' \
      --groups='DSSM+MIC=docs/results/converged/dssm_all_s[0-4].json' \
      --base=DSSM

Each run's metrics.json gives its seed, selected epoch, the most epochs
allowed (config.epochs) and training time; cells whose selected epoch is the
last allowed one are flagged as not converged. With --base, every other
group is compared with it per channel, paired by seed (mean ± std of the
differences, paired t-test p-value, and the 2-pooled-std criterion); with
--pair=VARIANT:BASE (repeatable) each variant is compared with its own base,
e.g. every tower of Table 2 with its +MIC row in one table. The logic lives
in experiments/mic_harness/channel_tables.py.
"""

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("groups", [], "LABEL=GLOB of run directories.")
flags.DEFINE_enum("split", "test", ["test", "valid"], "Which report.")
flags.DEFINE_string("base", None, "Label of the group the others are "
                    "compared with (paired by seed).")
flags.DEFINE_multi_string("pair", [], "VARIANT:BASE: compare group VARIANT "
                          "with group BASE, paired by seed (repeat for each "
                          "tower of Table 2, e.g. --pair='YouTubeDNN+MIC:"
                          "YouTubeDNN').")
flags.DEFINE_string("compact", None, "Print one table of this metric only "
                    "(a row per group, a column per channel; exact index) "
                    "instead of every metric.")
flags.DEFINE_list("paired_metrics", ["recall@50"],
                  "Metrics of the paired comparison.")
flags.DEFINE_bool("sign_test", False, "Also pool every --pair and paired "
                  "seed into one sign test per channel (is the variant "
                  "higher more often than chance, across models).")
flags.DEFINE_bool("per_seed", False, "Also print each comparison's "
                  "difference on every paired seed, per channel, with the "
                  "epochs both runs selected.")


def main(argv):
  from mic_harness import channel_tables  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  print(channel_tables.channel_tables(
      FLAGS.groups, split=FLAGS.split, base=FLAGS.base, pairs=FLAGS.pair,
      compact=FLAGS.compact, paired_metrics=FLAGS.paired_metrics,
      sign_test=FLAGS.sign_test, per_seed=FLAGS.per_seed))


if __name__ == "__main__":
  cli.run(main)
