r"""Ways of choosing the fused list's rule on valid users, scored on test users.

For one finished run: the channels are tuned on the valid users as
``evaluate.py`` tunes them (``DEFAULT_GRIDS`` without the fusion), every
fusable channel's list is retrieved once for the valid and the test users,
and each strategy picks a rule on the valid users:

  search       the fusion search without the prior (the grid's best rule,
               weights refined): ``--fusion_prior_margin=none``
  grid         the grid's best rule, unrefined
  prior        ``mic_tf.channels.PRIOR_FUSION`` always
  rrf_all      reciprocal rank fusion of all six channels, equal weights
  prior_se<z>  the prior unless the search's rule beats it on the valid
               users by more than z standard errors of the paired per-user
               difference (z = 2 is the library's default, ``PRIOR_MARGIN``)
  <channel>_alone  one channel's own list

  python experiments/fusion_strategies.py --run_dir=runs/x \
      --output=docs/results/fusion_prior/x.json

With ``--summary=GLOB`` it reads such files and prints, per strategy, the
mean test Recall@50, its difference from ``search`` (mean ± std over the
files, and a paired t-test's p) and its ratio to each run's best reference row (ItemKNN, UserKNN,
EASE as channels; MostPopular is never the best here).
"""

import glob
import json

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A finished run of train.py.")
flags.DEFINE_string("output", None, "Where to write the JSON.")
flags.DEFINE_string("summary", None, "Summarise these JSON files instead.")

MARGINS = (1.0, 2.0, 3.0)
REFERENCES = ("itemknn", "userknn", "ease")


def strategies(run_dir: str):
  """Each strategy's rule and its valid and test Recall@50 (percent)."""
  # Loaded once cli.run set the start-up environment.
  import numpy as np  # pylint: disable=g-import-not-at-top
  from mic_tf import names  # pylint: disable=g-import-not-at-top
  from mic_tf import training  # pylint: disable=g-import-not-at-top
  from mic_tf import channels  # pylint: disable=g-import-not-at-top
  from mic_tf.channels import tuning  # pylint: disable=g-import-not-at-top
  _, prepared, model = training.load_run(run_dir)
  assets = channels.ChannelAssets(model, prepared.tables, prepared.dataset)
  grids = {c: g for c, g in channels.DEFAULT_GRIDS.items()
           if c != names.FUSED}
  config, _ = channels.tune_channels(assets, prepared.valid, grids)
  k, fusable = 50, list(names.FUSABLE)
  scores = {}
  for split in ("valid", "test"):
    users = getattr(prepared, split)
    lists = tuning._fusion_lists(assets, users, fusable, config, k, True,  # pylint: disable=protected-access
                                 256)
    scores[split] = tuning._RuleScores(lists, users.targets, k, "recall@50",  # pylint: disable=protected-access
                                       (20, 50))
  rules, seen = [], set()
  for point in tuning._grid_points(channels.DEFAULT_GRIDS[names.FUSED]):  # pylint: disable=protected-access
    rule = tuning._with_section(config, names.FUSED, point)  # pylint: disable=protected-access
    if tuning._fusion_key(rule.fusion) not in seen:  # pylint: disable=protected-access
      seen.add(tuning._fusion_key(rule.fusion))  # pylint: disable=protected-access
      rules.append(rule)
  values = np.array([scores["valid"](r)[1]["recall@50"] for r in rules])
  best = int(np.argmax(values))
  searched, _, _ = tuning._refine(scores["valid"], rules[best],  # pylint: disable=protected-access
                                  float(values[best]), None, fusable, 2,
                                  tuning.REFINE_FACTORS)
  prior = tuning._prior_rule(config, fusable)  # pylint: disable=protected-access
  chosen = {"search": searched, "grid": rules[best], "prior": prior,
            "rrf_all": config.replace(fusion=channels.FusionConfig(
                mode="rrf", weights=[[c, 1.0] for c in fusable]))}
  for z in MARGINS:
    keep, _ = tuning._against_prior(scores["valid"], searched, prior, z)  # pylint: disable=protected-access
    chosen[f"prior_se{z:g}"] = prior if keep else searched
  for c in fusable:
    chosen[f"{c}_alone"] = config.replace(
        fusion=channels.FusionConfig(weights=[[c, 1.0]]))
  return {"run_dir": run_dir, "num_valid": len(prepared.valid.targets),
          "num_test": len(prepared.test.targets),
          "strategies": {name: {"rule": rule.fusion.describe(),
                                "valid": scores["valid"](rule)[1]["recall@50"],
                                "test": scores["test"](rule)[1]["recall@50"]}
                         for name, rule in chosen.items()}}


def summarize(pattern: str) -> str:
  """Markdown: each strategy against ``search`` over the files."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from scipy import stats  # pylint: disable=g-import-not-at-top
  files = sorted(glob.glob(pattern))
  if not files:
    raise app.UsageError(f"--summary={pattern} matches no file.")
  runs = [json.load(open(f))["strategies"] for f in files]  # pylint: disable=consider-using-with
  best_ref = np.array([max(r[f"{c}_alone"]["test"] for c in REFERENCES)
                       for r in runs])
  search = np.array([r["search"]["test"] for r in runs])
  lines = [f"{len(files)} runs ({pattern})", "",
           "| strategy | test recall@50 | − search | p (paired t) | × best "
           "reference row (min) | runs above search / below |",
           "|---|---|---|---|---|---|"]
  for name in runs[0]:
    test = np.array([r[name]["test"] for r in runs])
    diff = test - search
    ratio = test / best_ref
    p = (stats.ttest_rel(test, search).pvalue
         if len(diff) > 1 and diff.any() else float("nan"))
    lines.append(f"| {name} | {test.mean():.2f} | {diff.mean():+.2f} ± "
                 f"{diff.std(ddof=1) if len(diff) > 1 else 0.0:.2f} | "
                 f"{'' if np.isnan(p) else f'{p:.3g}'} | "
                 f"{ratio.mean():.3f} ({ratio.min():.2f}) | "
                 f"{int((diff > 0).sum())} / {int((diff < 0).sum())} |")
  return "\n".join(lines)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if FLAGS.summary:
    print(summarize(FLAGS.summary))
    return
  if not FLAGS.run_dir or not FLAGS.output:
    raise app.UsageError("Give --run_dir and --output (or --summary=GLOB).")
  out = strategies(FLAGS.run_dir)
  with open(FLAGS.output, "w") as f:
    json.dump(out, f, indent=1)
  for name, r in out["strategies"].items():
    print(f"{name:14s} valid {r['valid']:6.2f} test {r['test']:6.2f}  "
          f"{r['rule']}")


if __name__ == "__main__":
  cli.run(main)
