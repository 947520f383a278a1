r"""Plots each channel of groups of runs beside the reference rows.

From committed JSON only, e.g. the figure of docs/experiments/dssm.md and
docs/experiments/reference.md:

  python experiments/channels_figure.py \
      --groups='DSSM=docs/results/converged/dssm_base_s[0-4].json' \
      --groups='DSSM+MIC=docs/results/converged/dssm_all_s[0-4].json' \
      --baselines=docs/results/baselines_ml1m.json \
      --output=docs/figures/channels_vs_reference.png

Writes the PNG and its .json twin (every value it shows; the docs' test
checks the twin against the committed JSON). Logic:
experiments/mic_harness/channel_figure.py.
"""

import json
import os

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("groups", [], "LABEL=GLOB[,GLOB...] of run "
                          "directories or committed metrics copies (their "
                          "channels_*.json reports beside them).")
flags.DEFINE_string("baselines", None, "JSON of experiments/baselines.py "
                    "(the reference rows).", required=True)
flags.DEFINE_string("metric", "recall@50", "Test metric shown.")
flags.DEFINE_string("output", None, "PNG path; its .json twin gets every "
                    "value shown.", required=True)


def main(argv):
  from mic_harness import channel_figure  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not FLAGS.groups:
    raise app.UsageError("Pass --groups=LABEL=GLOB (one per group).")
  data = channel_figure.figure_data(FLAGS.groups, FLAGS.baselines,
                                    FLAGS.metric)
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  channel_figure.plot(data, FLAGS.output)
  twin = os.path.splitext(FLAGS.output)[0] + ".json"
  with open(twin, "w") as f:
    json.dump(data, f, indent=1, ensure_ascii=False)
    f.write("\n")
  print(f"wrote {FLAGS.output} and {twin}")


if __name__ == "__main__":
  cli.run(main)
