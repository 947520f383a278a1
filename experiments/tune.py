r"""Seeded hyper-parameter search on validation users (Optuna, pruned).

Example (a quick search; DSSM + MIC on MovieLens-1M):

  python experiments/tune.py --dataset=ml-1m --mic_terms=ui,uu,ii \
      --space=mic --num_trials=16 --epochs=4 --patience=2 \
      --study_dir=runs/tune_mic

The search near convergence that follows MICConfig.tuned()
(docs/experiments/dssm.md, "How the preset was chosen"; its first trial is
the preset itself, the three best trials are re-scored on two more seeds):

  python experiments/tune.py --dataset=ml-1m --mic_preset=tuned \
      --space=mic --num_trials=24 --epochs=20 --patience=3 \
      --init_order=towers_first --enqueue_base --rescore_top=3 \
      --rescore_seeds=1,2 --study_dir=runs/tune_mic_v2

Every trial selects its epoch on validation Recall@50 and is written to
<study_dir>/trials/NNN.json; an interrupted search resumes, and the JSON
records alone are enough for that: copy a committed trials/ folder (without
study.db) into --study_dir and run the same command again; the study is
rebuilt from the records and continues after the last one. With
--rescore_top=K the K best completed trials are trained again on
--rescore_seeds (rescore/NNN.json) and the trial with the best mean valid
Recall@50 over its seeds is selected: one seed's valid score moves by about
half a point, so a single-seed ranking partly ranks noise. The test users
are evaluated once, after the search, for the selected trial
(<study_dir>/best.json). Logic: mic_tf.tuning.
"""

import json

from absl import app
from absl import flags

from mic_tf import cli

FLAGS = flags.FLAGS
cli.define_data_flags()
cli.define_training_flags()
cli.define_mic_flags()
cli.define_mining_flags()
flags.DEFINE_string("study_dir", None, "Study folder (resumes if present).",
                    required=True)
flags.DEFINE_integer("num_trials", 16, "Finished trials wanted.",
                     lower_bound=1)
flags.DEFINE_integer("tune_seed", 0, "Seed of the sampler.")
flags.DEFINE_integer("startup_trials", 4, "Random trials before TPE and "
                     "before pruning starts.", lower_bound=1)
# The names of mic_tf.tuning.SPACES (tests/test_tuning.py checks them): the
# tuning module loads TensorFlow, which must wait for cli.run's start-up.
SPACES = ("base", "base_wd", "mic")
flags.DEFINE_enum("space", "mic", list(SPACES),
                  "Search space: mic (the MIC objective), base (the base "
                  "model's optimisation, loss and dropout) or base_wd (base "
                  "plus weight decay, 0 or 0.001 ... 0.3).")
flags.DEFINE_bool("enqueue_base", False, "In a new study, the first trial "
                  "is the starting configuration's own values (e.g. "
                  "--mic_preset=tuned), so the search always compares "
                  "against it.")
flags.DEFINE_integer("rescore_top", 0, "After the search, train this many "
                     "of the best completed trials again on --rescore_seeds "
                     "and select on the mean over seeds (0: select on the "
                     "search seed alone).", lower_bound=0)
flags.DEFINE_list("rescore_seeds", ["1", "2"], "Extra training seeds for "
                  "--rescore_top (the search itself trains on --seed).")
flags.DEFINE_bool("evaluate_best", True, "After the search, evaluate the "
                  "test users once with the selected trial.")


def print_trial(record, score_name):
  """One line per finished trial: its state, value, epochs and time."""
  state = (f"pruned after epoch {record['pruned_at_epoch']}"
           if record["state"] == "pruned" else "complete")
  print(f"trial {record['number']} {state}: valid {score_name} "
        f"{record['value']:.3f} (epoch {record['best_epoch']} of "
        f"{record['epochs_run']}, {record['seconds'] / 60:.0f} min)",
        flush=True)


def main(argv):
  # Loaded once cli.run set the start-up environment (--deterministic).
  from mic_tf import training  # pylint: disable=g-import-not-at-top
  from mic_tf import tuning  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  base = cli.experiment_config_from_flags(FLAGS)
  base.output_dir = None
  # What ranks the trials: valid U2I Recall@50, or the --select_on mean.
  score_name = training.selection_description(base.evaluation.select_on,
                                              base.evaluation.cutoffs)
  space = tuning.SPACES[FLAGS.space]
  if FLAGS.space == "mic" and not base.mic.terms:
    raise ValueError("--space=mic searches the MIC objective: pass "
                     "--mic_terms (e.g. ui,uu,ii).")
  tuning.run_study(base, space, FLAGS.study_dir, FLAGS.num_trials,
                   seed=FLAGS.tune_seed, startup_trials=FLAGS.startup_trials,
                   enqueue_base=FLAGS.enqueue_base,
                   on_trial=lambda r: print_trial(r, score_name))
  if FLAGS.rescore_top:
    try:
      seeds = [int(s) for s in FLAGS.rescore_seeds]
    except ValueError as e:
      raise app.UsageError(f"--rescore_seeds={','.join(FLAGS.rescore_seeds)}"
                           ": give integers, e.g. --rescore_seeds=1,2") from e
    for r in tuning.rescore_top_trials(FLAGS.study_dir, FLAGS.rescore_top,
                                       seeds):
      print(f"trial {r['number']}: valid {score_name} by seed " + ", ".join(
          f"{k}: {v:.3f}" for k, v in r["valid_by_seed"].items())
            + f"; mean {r['mean']:.3f}")
  best = tuning.best_trial_record(FLAGS.study_dir)
  mean = (f", mean over seeds {best['rescore']['seeds']}: "
          f"{best['rescore']['mean']:.3f}" if "rescore" in best else "")
  print(f"selected trial {best['number']}: valid {score_name} "
        f"{best['value']:.3f}{mean} (epoch {best['best_epoch']} of "
        f"{best['epochs_run']})")
  print(json.dumps(best["params"], indent=1, sort_keys=True))
  # To train the selected settings on more seeds or data (train.py,
  # ablation.py): the search's own flags plus these.
  print("flags: " + " ".join(cli.flags_for_params(
      best["params"], tuning.apply_params(base, best["params"]))))
  if FLAGS.evaluate_best:
    out = tuning.evaluate_best(FLAGS.study_dir)
    print("test (evaluated once): " + " ".join(
        f"{k}={v:.3f}" for k, v in sorted(out["test"].items())))


if __name__ == "__main__":
  cli.run(main)
