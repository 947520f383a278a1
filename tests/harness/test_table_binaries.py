"""experiments/grid_table.py and channels_table.py on generated JSON."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from mic_harness import channel_tables

_ROOT = pathlib.Path(__file__).resolve().parents[2]


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

  out = _run("channels_table.py", "--base=DSSM", "--per_seed", "--sign_test",
             f"--groups=DSSM={tmp_path}/dssm_base_s*",
             f"--groups=MIC={tmp_path}/dssm_ui_s*")
  assert "| exact | u2i | MIC | 3 | 13.00 ± 1.73 |" in out
  # --per_seed: each paired seed's difference and both selected epochs.
  assert "| exact | MIC | DSSM | 0 | 4 / 4; 4 / 4 | +1.00 |" in out
  assert "| exact | MIC | DSSM | 2 | 2 / 4; 2 / 4 | +3.00 |" in out
  # --sign_test pools --base's comparisons too: 3 seeds higher, p = 2/8.
  assert "| exact | u2i | 1 | 3 | 3 | 0 | 0.25 | no |" in out
  assert "| 4, 2, 2 / 4 | 1/3: s0 | 7 |" in out
  assert "| exact | u2i | MIC | DSSM | 0, 1, 2 | 1/3: s0; 1/3: s0 | " \
         "+2.00 ± 1.00 |" in out

  # The rest through the binary's library function (one process: each
  # binary start costs seconds of TensorFlow import).
  def tables(*groups, **kwargs):
    return channel_tables.channel_tables(list(groups), **kwargs)

  out = tables(f"DSSM={tmp_path}/dssm_base_s*", compact="recall@50")
  assert "| DSSM | 3 | 11.00 ± 1.00 | 21.00 ± 1.00 | 4, 2, 2 / 4 |" in out

  # The committed copies (metrics.json as <cell>.json beside
  # channels_<cell>.json) give the same tables as the run directories.
  docs = tmp_path / "docs"
  docs.mkdir()
  for run in tmp_path.glob("dssm_*_s*"):
    (docs / f"{run.name}.json").write_text(
        (run / "metrics.json").read_text())
    (docs / f"channels_{run.name}.json").write_text(
        (run / "channels_test.json").read_text())
  from_runs = tables(f"DSSM={tmp_path}/dssm_base_s*",
                     f"MIC={tmp_path}/dssm_ui_s*", base="DSSM")
  from_docs = tables(f"DSSM={docs}/dssm_base_s*.json",
                     f"MIC={docs}/dssm_ui_s*.json", base="DSSM")
  assert from_docs == from_runs
  # --pair compares a variant with its own base: the same rows as --base.
  paired = tables(f"DSSM={docs}/dssm_base_s*.json",
                  f"MIC={docs}/dssm_ui_s*.json", pairs=["MIC:DSSM"])
  assert paired == from_docs
  with pytest.raises(ValueError, match="only test reports are committed"):
    tables(f"DSSM={docs}/dssm_base_s*.json", split="valid")


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
  # Table 2: 4 towers x (base, MIC); Table 3: 6 term subsets; mining: 1;
  # Table 2 again on a fifth of the training users: 8; ComiRec-DR on a
  # tenth and on half of them: 4.
  assert len(trains) == 27
  assert len([l for l in lines if "experiments/evaluate.py" in l]) == 27
  mic = [l for l in trains if "--variants=base" not in l]
  assert all("--mic_preset=tuned" in l for l in mic) and len(mic) == 17
  sparse = [l for l in trains if "--train_user_fraction=0.2" in l]
  assert len(sparse) == 8
  assert all(f"--output_dir={tmp_path}/sparse20 --train_user_fraction=0.2 "
             "--epochs=60" in l for l in sparse)
  for percent in ("10", "50"):
    fraction = [l for l in trains
                if f"--train_user_fraction=0.{percent} " in l]
    assert len(fraction) == 2
    assert all("--towers=comirec_dr" in l and
               f"--output_dir={tmp_path}/sparse{percent} " in l
               for l in fraction)
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


def test_run_tables_takes_seeds_with_commas_or_spaces(tmp_path):
  spaces = _tables_plan(tmp_path, SEEDS="3 4", TABLES="mining")
  commas = _tables_plan(tmp_path, SEEDS="3,4", TABLES="mining")
  assert spaces.returncode == commas.returncode == 0, commas.stderr
  assert commas.stdout == spaces.stdout
  assert "--seeds=3 " in commas.stdout and "--seeds=4 " in commas.stdout
  bad = _tables_plan(tmp_path, SEEDS="3;4", TABLES="mining")
  assert bad.returncode == 2 and bad.stdout == ""
  assert "SEEDS has '3;4', not a seed" in bad.stderr


def test_run_tables_passes_extra_flags_to_every_training_command(tmp_path):
  done = _tables_plan(tmp_path, SEEDS="0", TABLES="mining",
                      EXTRA_FLAGS="--patience=5 --init_order=towers_first")
  assert done.returncode == 0, done.stderr
  trains = [l for l in done.stdout.splitlines()
            if "experiments/ablation.py" in l]
  assert len(trains) == 1
  assert trains[0].endswith("--patience=5 --init_order=towers_first")
  # Extra flags come last, so they override a table's own (absl keeps the
  # last value of a flag): here the sparse table's epoch limit.
  sparse = _tables_plan(tmp_path, SEEDS="0", TABLES="sparse",
                        EXTRA_FLAGS="--epochs=80").stdout
  trains = [l for l in sparse.splitlines() if "experiments/ablation.py" in l]
  assert len(trains) == 8
  assert all(l.endswith("--epochs=60 --epochs=80") for l in trains)


def test_run_tables_jobs_plans_threads_and_refuses_a_bad_count(tmp_path):
  cores = int(subprocess.run(["nproc"], capture_output=True, text=True,
                             check=True).stdout)
  done = _tables_plan(tmp_path, SEEDS="0", TABLES="mining", JOBS="2")
  assert done.returncode == 0, done.stderr
  lines = [l for l in done.stdout.splitlines() if "experiments/" in l]
  assert len(lines) == 2  # train, evaluate
  assert all(f"--threads={max(1, cores // 2)}" in l for l in lines)
  assert "--threads" not in _tables_plan(tmp_path, SEEDS="0",
                                         TABLES="mining").stdout
  bad = _tables_plan(tmp_path, JOBS="two")
  assert bad.returncode == 2
  assert "JOBS='two' is not a positive integer" in bad.stderr


def test_run_tables_jobs_runs_cells_side_by_side_and_reports_failures(
    tmp_path):
  # A stand-in Python: each training command logs its start and end, takes
  # half a second, and the "ii" cell fails.
  events = tmp_path / "events.log"
  stub = tmp_path / "python"
  stub.write_text(f"""#!/usr/bin/env bash
case " $* " in
  *ablation.py*)
    cell=$(printf '%s\\n' "$@" | grep -- '--variants=' | cut -d= -f2)
    echo "start $cell" >> {events}
    sleep 0.5
    echo "end $cell" >> {events}
    [ "$cell" != ii ] ;;
esac
""")
  stub.chmod(0o755)
  done = subprocess.run(
      ["bash", str(_ROOT / "experiments" / "run_tables.sh")],
      env=dict(os.environ, MIC_TF_TABLES_DIR=str(tmp_path / "out"),
               PYTHON_BIN=str(stub), SEEDS="0", TABLES="table3", JOBS="2"),
      capture_output=True, text=True, timeout=60, check=False)
  assert done.returncode == 1, done.stderr
  assert "1 cell(s) failed" in done.stderr
  running, most = 0, 0
  lines = events.read_text().splitlines()
  for line in lines:
    running += 1 if line.startswith("start") else -1
    most = max(most, running)
  assert most == 2  # two at a time, never more
  # Every cell ran, the failed one too, and each has its own log.
  assert sorted(l.split()[1] for l in lines if l.startswith("start")) == \
      sorted(["ui", "uu", "ii", "ui+uu", "ui+ii", "uu+ii"])
  assert len(list((tmp_path / "out" / "logs").glob("table3_dssm_*_s0.log"))
             ) == 6


def test_run_tables_continues_from_committed_cells_and_keeps_new_ones(
    tmp_path):
  """RESULTS_DIR: committed cells are skipped, finished ones copied there."""
  results = tmp_path / "results"
  (results / "converged").mkdir(parents=True)
  (results / "converged" / "channels_dssm_base_s1.json").write_text("{}")
  plan = _tables_plan(tmp_path / "runs", SEEDS="1", TABLES="towers sparse",
                      RESULTS_DIR=str(results)).stdout.splitlines()
  trains = [l for l in plan if "experiments/ablation.py" in l]
  assert len(trains) == 15  # 16 cells, DSSM's base is committed
  assert not any("--towers=dssm --variants=base" in l and
                 f"--output_dir={tmp_path}/runs/table_dssm " in l
                 for l in trains)
  assert f"dssm_base_s1: already in {results}/converged, skipped" in plan
  copies = [l for l in plan if l.startswith("cp ")]
  assert (f"cp {tmp_path}/runs/table_towers_mic/comirec_sa_all_s1/"
          f"channels_test.json {results}/converged/"
          "channels_comirec_sa_all_s1.json") in copies
  assert (f"cp {tmp_path}/runs/sparse20/youtube_dnn_base_s1/metrics.json "
          f"{results}/sparse20/youtube_dnn_base_s1.json") in copies
  assert len(copies) == 30
  # Without RESULTS_DIR nothing is skipped and nothing copied.
  plain = _tables_plan(tmp_path / "runs", SEEDS="1", TABLES="towers sparse")
  assert not any(l.startswith("cp ") for l in plain.stdout.splitlines())
  assert len([l for l in plain.stdout.splitlines()
              if "experiments/ablation.py" in l]) == 16


def test_run_tables_tuned_base_trains_both_models_on_the_selected_flags(
    tmp_path):
  """TABLES=tuned_base: one search per tower, its "flags:" line reaches
  the base and the MIC cell; with RESULTS_DIR the trial records are kept
  and a study that is only committed is rebuilt from them."""
  events = tmp_path / "events.log"
  stub = tmp_path / "python"
  stub.write_text(f"""#!/usr/bin/env bash
arg() {{ printf '%s\\n' "$@" | grep -- "^--$1=" | tail -n 1 | cut -d= -f2-; }}
case " $* " in
  *tune.py*)
    study=$(arg study_dir "$@")
    echo "tune $(arg tower "$@") $(ls "$study/trials" 2>/dev/null | wc -l)" >> {events}
    mkdir -p "$study/trials"; echo '{{}}' > "$study/trials/001.json"
    echo "selected trial 1: valid recall@50 19.000 (epoch 9 of 12)"
    echo "flags: --dropout=0.3 --learning_rate=0.002" ;;
  *ablation.py*)
    echo "train $*" >> {events}
    run="$(arg output_dir "$@")/$(arg towers "$@")_$(arg variants "$@")_s$(arg seeds "$@")"
    mkdir -p "$run"; echo '{{}}' > "$run/metrics.json"
    echo '{{}}' > "$run/channels_test.json" ;;
esac
""")
  stub.chmod(0o755)
  results = tmp_path / "results"
  committed = results / "tuning_base_comirec_dr_sparse20" / "trials"
  committed.mkdir(parents=True)
  (committed / "000.json").write_text("{}")
  done = subprocess.run(
      ["bash", str(_ROOT / "experiments" / "run_tables.sh")],
      env=dict(os.environ, MIC_TF_TABLES_DIR=str(tmp_path / "out"),
               PYTHON_BIN=str(stub), SEEDS="0 1", TABLES="tuned_base",
               TUNED_TOWERS="comirec_dr", RESULTS_DIR=str(results)),
      capture_output=True, text=True, timeout=60, check=False)
  assert done.returncode == 0, done.stderr
  lines = events.read_text().splitlines()
  # The committed record was copied into the study before the first run.
  assert lines[0] == "tune comirec_dr 1"
  trains = [l for l in lines if l.startswith("train ")]
  assert len(trains) == 4  # base and MIC, seeds 0 and 1
  assert all(l.endswith("--train_user_fraction=0.2 --epochs=60 "
                        "--dropout=0.3 --learning_rate=0.002")
             for l in trains)
  assert sum("--mic_preset=tuned" in l for l in trains) == 2
  assert "selected trial 1" in done.stdout
  assert sorted(p.name for p in committed.iterdir()) == ["000.json",
                                                         "001.json"]
  kept = results / "sparse20_tuned_base"
  assert (kept / "channels_comirec_dr_all_s1.json").exists()
  # A search that prints no flags fails that tower, loudly.
  stub.write_text("#!/usr/bin/env bash\necho 'no flags'\n")
  failed = subprocess.run(
      ["bash", str(_ROOT / "experiments" / "run_tables.sh")],
      env=dict(os.environ, MIC_TF_TABLES_DIR=str(tmp_path / "out2"),
               PYTHON_BIN=str(stub), SEEDS="0", TABLES="tuned_base",
               TUNED_TOWERS="dssm"),
      capture_output=True, text=True, timeout=60, check=False)
  assert failed.returncode == 1
  assert "the dssm search printed no flags" in failed.stderr
  bad = _tables_plan(tmp_path, TABLES="tuned_base", TUNED_FRACTION="0")
  assert bad.returncode == 2 and "is not a fraction in (0, 1]" in bad.stderr
