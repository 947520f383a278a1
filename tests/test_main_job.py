"""The main job's rows and summary (the end-to-end run: test_reproducibility)."""

import pytest

from mic_tf import main_job
from mic_tf import training
from mic_tf.models.config import MICConfig


def _row(name, recall, **extra):
  return {"name": name, "test": {"recall@50": recall}, **extra}


def test_summary_names_the_best_list_and_its_ratio_to_ease():
  rows = [_row("MostPopular", 10.0), _row("EASE", 20.0, params={"l2": 500}),
          _row("DSSM+MIC U2I", 21.0, channel="u2i"),
          _row("DSSM+MIC fused", 25.0, channel="fused")]
  assert main_job.summarize(rows, "recall@50", "DSSM+MIC") == (
      "Best list on the test users (recall@50): DSSM+MIC fused at 25.000, "
      "1.25x EASE (l2=500) at 20.000.")


def test_summary_when_a_reference_row_is_best_gives_the_models_best_too():
  rows = [_row("EASE", 20.0, params={"l2": 500}),
          _row("UserKNN", 22.0, params={"neighbours": 50}),
          _row("DSSM+MIC U2I", 19.0, channel="u2i"),
          _row("DSSM+MIC U2U", 18.0, channel="u2u")]
  assert main_job.summarize(rows, "recall@50", "DSSM+MIC") == (
      "Best list on the test users (recall@50): UserKNN (neighbours=50) at "
      "22.000, 1.10x EASE (l2=500) at 20.000; DSSM+MIC's best, U2I at "
      "19.000, is 0.95x EASE.")
  assert main_job.summarize(rows[:1] + rows[2:], "recall@50", "DSSM+MIC") == (
      "Best list on the test users (recall@50): EASE (l2=500) at 20.000; "
      "DSSM+MIC's best, U2I at 19.000, is 0.95x EASE.")


def test_channel_rows_take_valid_metrics_from_training_and_tuning():
  report = {
      "results": {"exact": {"u2i": {"recall@50": 1.0},
                            "u2u": {"recall@50": 2.0},
                            "fused": {"recall@50": 3.0}}},
      "tuning": {"metric": "recall@50", "channels": {
          "u2u": {"best_params": {"alpha": 0.5}, "best_value": 7.0,
                  "rows": [{"alpha": 0.0, "recall@50": 6.0},
                           {"alpha": 0.5, "recall@50": 7.0}]},
          "fused": {"best_params": {"mode": "rrf",
                                    "weights": [["u2i", 1.0]]},
                    "best_value": 8.0,  # refined past the grid's rows
                    "rows": [{"mode": "rrf", "weights": [["u2i", 2.0]],
                              "recall@50": 7.5, "recall@20": 3.0}]}}}}
  rows = main_job.channel_rows("DSSM+MIC", {"valid": {"recall@50": 5.0}},
                               report)
  assert [r["name"] for r in rows] == ["DSSM+MIC U2I", "DSSM+MIC U2U",
                                       "DSSM+MIC fused"]
  assert [r["valid"] for r in rows] == [{"recall@50": 5.0},
                                        {"recall@50": 7.0},
                                        {"recall@50": 8.0}]
  assert rows[1]["settings"] == {"alpha": 0.5} and "params" not in rows[1]
  assert main_job.tuned_lines(report) == [
      "U2U tuned on valid users: alpha=0.5 (recall@50 7.000)",
      "fused tuned on valid users: mode=rrf, weights=u2i:1 (recall@50 "
      "8.000)"]


def test_model_label():
  assert main_job.model_label(training.ExperimentConfig(
      mic=MICConfig.tuned())) == "DSSM+MIC(UI+UU+II)"
  assert main_job.model_label(training.ExperimentConfig.from_settings(
      tower="youtube_dnn")) == "youtube_dnn"


def test_bad_arguments_are_refused_before_any_work():
  with pytest.raises(ValueError, match="needs an output_dir"):
    main_job.run_main_job(training.ExperimentConfig())
  with pytest.raises(ValueError, match="Unknown reference rows"):
    main_job.run_main_job(training.ExperimentConfig(output_dir="x"),
                          reference=("knn",))
