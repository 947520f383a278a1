"""experiments/grid_table.py and channels_table.py on generated JSON."""

import json
import os
import pathlib
import subprocess
import sys

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(script, *args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=str(_ROOT) + os.pathsep + os.environ.get(
                 "PYTHONPATH", ""))
  done = subprocess.run([sys.executable, str(_ROOT / "experiments" / script),
                         *args], capture_output=True, text=True, env=env,
                        timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  return done.stdout


def test_grid_table_and_channels_table(tmp_path):
  rows = []
  for variant, label, values in (("base", "DSSM", (10.0, 12.0, 11.0)),
                                 ("ui", "DSSM+MIC(UI)", (11.0, 14.0, 14.0))):
    for seed, recall in enumerate(values):
      metrics = {m: recall for m in ("recall@20", "ndcg@20", "hr@20",
                                     "recall@50", "ndcg@50", "hr@50")}
      rows.append({"tower": "dssm", "variant": variant, "seed": seed,
                   "label": label, "valid": metrics, "test": metrics,
                   "best_epoch": 2, "train_seconds": 5.0})
      run = tmp_path / f"dssm_{variant}_s{seed}"
      run.mkdir()
      (run / "metrics.json").write_text(json.dumps(
          {"seed": seed, "best_epoch": 2 if seed else 4,
           "config": {"epochs": 4}, "history": [{}] * 4,
           "train_seconds": 7.0, "valid": {"recall@50": recall + 10}}))
      (run / "channels_test.json").write_text(json.dumps(
          {"results": {"exact": {"u2i": metrics}}}))
  grid_json = tmp_path / "grid.json"
  grid_json.write_text(json.dumps(rows))

  out = _run("grid_table.py", f"--grid={grid_json}", "--default_max_epochs=2")
  assert "| DSSM | 3 | 11.00 ± 1.00 |" in out
  assert "| 2, 2, 2 / 2 | 3/3: s0, s1, s2 |" in out  # last epoch: flagged
  assert "| DSSM+MIC(UI) | DSSM | 0, 1, 2 | 3/3: s0, s1, s2; 3/3: s0, s1, " \
         "s2 | +2.00 ± 1.00 | 1.41 | 0.0742 | no | no | n.s. |" in out
  assert "NOT CONVERGED" in out

  out = _run("channels_table.py", "--base=DSSM",
             f"--groups=DSSM={tmp_path}/dssm_base_s*",
             f"--groups=MIC={tmp_path}/dssm_ui_s*")
  assert "| exact | u2i | MIC | 3 | 13.00 ± 1.73 |" in out
  assert "| 4, 2, 2 / 4 | 1/3: s0 | 7 |" in out
  assert "| exact | u2i | MIC | DSSM | 0, 1, 2 | 1/3: s0; 1/3: s0 | " \
         "+2.00 ± 1.00 |" in out

  out = _run("channels_table.py", "--compact=recall@50",
             f"--groups=DSSM={tmp_path}/dssm_base_s*")
  assert "| DSSM | 3 | 11.00 ± 1.00 | 21.00 ± 1.00 | 4, 2, 2 / 4 |" in out


def _tables_plan(tmp_path, **env):
  return subprocess.run(
      ["bash", str(_ROOT / "experiments" / "run_tables.sh")],
      env=dict(os.environ, DRY_RUN="1", MIC_TF_TABLES_DIR=str(tmp_path),
               **env), capture_output=True, text=True, timeout=60,
      check=False)


def test_run_tables_plans_every_cell_of_a_seed_and_skips_evaluated_ones(
    tmp_path):
  done = _tables_plan(tmp_path, SEEDS="0")
  assert done.returncode == 0, done.stderr
  lines = done.stdout.splitlines()
  trains = [l for l in lines if "experiments/ablation.py" in l]
  # Table 2: 4 towers x (base, MIC); Table 3: 6 term subsets; mining: 1.
  assert len(trains) == 15
  assert len([l for l in lines if "experiments/evaluate.py" in l]) == 15
  mic = [l for l in trains if "--variants=base" not in l]
  assert all("--mic_preset=tuned" in l for l in mic) and len(mic) == 11
  assert any("--towers=comirec_sa --variants=all --seeds=0" in l
             for l in trains)
  assert any("--variants=all+nn" in l for l in trains)
  # A cell whose channels are evaluated is not evaluated again.
  run = tmp_path / "table_dssm" / "dssm_base_s0"
  run.mkdir(parents=True)
  (run / "channels_test.json").write_text("{}")
  again = _tables_plan(tmp_path, SEEDS="0", TABLES="towers").stdout
  assert f"--run_dir={run} " not in again
  assert len([l for l in again.splitlines() if "evaluate.py" in l]) == 7


def test_run_tables_refuses_an_unknown_table(tmp_path):
  done = _tables_plan(tmp_path, TABLES="towers tabel3")
  assert done.returncode == 2
  assert "unknown table 'tabel3'" in done.stderr
  assert done.stdout == ""


def test_run_tables_passes_extra_flags_to_every_training_command(tmp_path):
  done = _tables_plan(tmp_path, SEEDS="0", TABLES="mining",
                      EXTRA_FLAGS="--patience=5 --init_order=towers_first")
  assert done.returncode == 0, done.stderr
  trains = [l for l in done.stdout.splitlines()
            if "experiments/ablation.py" in l]
  assert len(trains) == 1
  assert trains[0].endswith("--patience=5 --init_order=towers_first")
