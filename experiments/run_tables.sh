#!/usr/bin/env bash
# Trains and evaluates every cell of the converged ML-1M tables of
# docs/experiments/, one cell at a time (or JOBS at a time, below), seed by
# seed, so that each finished seed completes a row across all tables before
# the next starts:
#
#   Table 2  DSSM, YouTubeDNN, ComiRec-DR, ComiRec-SA, each base and +MIC
#   Table 3  DSSM with each subset of the terms (UI, UU, II, pairs)
#   Mining   DSSM+MIC with nearest-neighbour mining (all+nn)
#   Sparse   Table 2's rows trained on a fifth of the training users
#            (--train_user_fraction=0.2, at most 60 epochs; "Sparser
#            training data"), in $MIC_TF_TABLES_DIR/sparse20
#   Fractions ComiRec-DR, base and +MIC, on a tenth and on half of the
#            training users ("How MIC's gain on ComiRec-DR follows the
#            amount of training data"), in sparse10/ and sparse50/
#   Tuned_base (not in the default TABLES) MIC on its tuned base's settings:
#            for each tower of TUNED_TOWERS, a search of the base's
#            settings on valid users (experiments/tune.py --space=base
#            --enqueue_base, TUNED_TRIALS trials, resumable; it runs once,
#            then reports its selection), then the base and +MIC trained on
#            the selected trial's settings ("flags: ..." of tune.py). On
#            TUNED_FRACTION of the training users (default 0.2: study in
#            tune_base_<tower>_sparse20/, cells in sparse20_tuned_base/, at
#            most 60 epochs; 1: tune_base_<tower>/ and tuned_base/, at most
#            40). With RESULTS_DIR the trial records are copied to
#            RESULTS_DIR/tuning_base_<tower>[_sparse20]/trials after the
#            search, and a study that is not on this machine is rebuilt
#            from them there.
#
# Every cell: early stopping on valid Recall@50 (patience 3, at most 40
# epochs), MIC cells with the tuned preset, then the four channels of the
# test users (exact, alpha chosen on valid users) into the run directory.
# Finished cells are kept, an interrupted one resumes from its backup: run it
# again after an interruption. Tables: experiments/channels_table.py (see
# docs/experiments/). One cell takes 15-60 min on a 2-core CPU (a sparse one
# 3-15); all 135 (27 a seed), days.
#
#   bash experiments/run_tables.sh            # everything, seeds 0-4
#   SEEDS="0" TABLES="towers" bash experiments/run_tables.sh
#   SEEDS=3,4 TABLES=towers bash experiments/run_tables.sh   # (or "3 4")
#   DRY_RUN=1 bash experiments/run_tables.sh  # print the commands only
#   EXTRA_FLAGS="--patience=5 --init_order=towers_first" \
#     MIC_TF_TABLES_DIR=runs/rerun bash experiments/run_tables.sh
#                         # other training flags for every cell (a new
#                         # directory: finished cells refuse other settings)
#   RESULTS_DIR=docs/results bash experiments/run_tables.sh
#                         # continue the committed grid on a new machine:
#                         # a cell whose JSON is in RESULTS_DIR (converged/,
#                         # sparse10/, sparse20/ or sparse50/) is skipped,
#                         # and each cell that finishes is copied there
#                         # (<tower>_<variant>_s<seed>.json and channels_...)
#                         # at once, ready to commit; without RESULTS_DIR
#                         # every cell is trained (a reproduction)
#   TABLES=tuned_base TUNED_FRACTION=1 TUNED_TOWERS=comirec_dr \
#     bash experiments/run_tables.sh
#                         # the tuned-base recipe on all of ML-1M
#   JOBS=2 bash experiments/run_tables.sh
#                         # two cells at a time, each with --threads=(cores
#                         # / JOBS), its output in $MIC_TF_TABLES_DIR/logs/;
#                         # on 2 cores 1.2-1.4x the cells per hour
#                         # (benchmarks/parallel_training.sh).
#                         # A failed cell does not stop the others; the
#                         # script exits 1 at the end if any failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON_BIN:-$ROOT/.venv/bin/python}"
OUT="${MIC_TF_TABLES_DIR:-runs}"
SEEDS="${SEEDS:-0 1 2 3 4}"
SEEDS="${SEEDS//,/ }"  # "2 3 4" or "2,3,4" (ablation.py's --seeds form)
for seed in $SEEDS; do
  if ! [[ "$seed" =~ ^[0-9]+$ ]]; then
    echo "run_tables.sh: SEEDS has '$seed', not a seed; give non-negative" \
         "integers, e.g. SEEDS=\"3 4\" or SEEDS=3,4." >&2
    exit 2
  fi
done
TABLES="${TABLES:-towers table3 mining sparse fractions}"
COMMON=(--dataset=ml-1m --epochs=40 --patience=3 --verbose=2)
read -r -a EXTRA <<< "${EXTRA_FLAGS:-}"
JOBS="${JOBS:-1}"
RESULTS_DIR="${RESULTS_DIR:-}"
TUNED_TOWERS="${TUNED_TOWERS:-dssm youtube_dnn comirec_dr comirec_sa}"
TUNED_TRIALS="${TUNED_TRIALS:-12}"
TUNED_FRACTION="${TUNED_FRACTION:-0.2}"
if ! TUNED_PERCENT=$(awk -v f="$TUNED_FRACTION" 'BEGIN {
    if (f !~ /^(0?\.[0-9]+|1(\.0*)?)$/ || f + 0 <= 0) exit 1
    printf "%d", f * 100 + 0.5 }'); then
  echo "run_tables.sh: TUNED_FRACTION='$TUNED_FRACTION' is not a fraction" \
       "in (0, 1]; use e.g. TUNED_FRACTION=0.2 or 1." >&2
  exit 2
fi
if (( TUNED_PERCENT == 100 )); then  # all training users, as Table 2
  TUNED_SUFFIX="" TUNED_OUT=tuned_base TUNED_DATA=() TUNED_EPOCHS=40
else  # as the sparse tables
  TUNED_SUFFIX="_sparse$TUNED_PERCENT" TUNED_OUT="sparse${TUNED_PERCENT}_tuned_base"
  TUNED_DATA=(--train_user_fraction="$TUNED_FRACTION" --epochs=60) TUNED_EPOCHS=60
fi
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then
  echo "run_tables.sh: JOBS='$JOBS' is not a positive integer; use e.g." \
       "JOBS=2." >&2
  exit 2
fi
if (( JOBS > 1 )) && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501 )); then
  echo "run_tables.sh: JOBS=$JOBS needs bash 5.1 or later (this is" \
       "$BASH_VERSION); use JOBS=1." >&2
  exit 2
fi
THREADS=()
if (( JOBS > 1 )); then
  cores=$(nproc 2>/dev/null || echo "$JOBS")
  THREADS=(--threads=$(( cores / JOBS > 0 ? cores / JOBS : 1 )))
fi
FAILED=0
PIDS=()
GRID='{"u2u": {"alpha": [0.0, 0.5, 1.0]}, "i2i": {"alpha": [0.0, 0.5, 1.0]}}'

run() {
  if [ -n "${DRY_RUN:-}" ]; then echo "$*"; else "$@"; fi
}

results_of() {  # output dir -> its folder under RESULTS_DIR
  case $(basename "$1") in
    sparse10|sparse20|sparse50|*tuned_base)
      echo "$RESULTS_DIR/$(basename "$1")" ;;
    *) echo "$RESULTS_DIR/converged" ;;
  esac
}

train_and_evaluate() {  # output dir, tower, variant, seed, [cell flags...]
  local out=$1 tower=$2 variant=$3 seed=$4 preset=() kept=""
  shift 4
  local name="${tower}_${variant}_s${seed}"
  if [ -n "$RESULTS_DIR" ]; then
    kept=$(results_of "$out")
    if [ -f "$kept/channels_$name.json" ]; then
      echo "$name: already in $kept, skipped"
      return 0
    fi
  fi
  [ "$variant" != base ] && preset=(--mic_preset=tuned)
  run "$PY" experiments/ablation.py "${COMMON[@]}" "${preset[@]}" \
    --towers="$tower" --variants="$variant" --seeds="$seed" \
    --output_dir="$out" "$@" ${THREADS[@]+"${THREADS[@]}"} \
    ${EXTRA[@]+"${EXTRA[@]}"}
  local dir="$out/${tower}_${variant}_s${seed}"
  if [ ! -f "$dir/channels_test.json" ]; then
    run "$PY" experiments/evaluate.py --run_dir="$dir" --split=test \
      --index=exact --tune_grid="$GRID" ${THREADS[@]+"${THREADS[@]}"}
  fi
  if [ -n "$kept" ]; then
    run mkdir -p "$kept"
    run cp "$dir/metrics.json" "$kept/$name.json"
    run cp "$dir/channels_test.json" "$kept/channels_$name.json"
  fi
}

reap() {  # waits for whichever started cell ends first; counts a failure
  local done_pid="" status=0 kept=() pid
  wait -n -p done_pid "${PIDS[@]}" || status=$?
  (( status == 0 )) || FAILED=$((FAILED + 1))
  for pid in "${PIDS[@]}"; do
    [ "$pid" = "$done_pid" ] || kept+=("$pid")
  done
  PIDS=(${kept[@]+"${kept[@]}"})
}

cell() {  # output dir, tower, variant, seed, [cell flags...]
  if (( JOBS == 1 )) || [ -n "${DRY_RUN:-}" ]; then
    train_and_evaluate "$@"
    return
  fi
  while (( ${#PIDS[@]} >= JOBS )); do reap; done
  local log="$OUT/logs/$(basename "$1")_${2}_${3}_s${4}.log"
  mkdir -p "$OUT/logs"
  echo "$(date '+%F %T') started $2 $3 seed $4 (log: $log)"
  ( set -e; train_and_evaluate "$@" ) >> "$log" 2>&1 &
  PIDS+=($!)
}

declare -A TUNED_DONE=()  # tower -> its selected flags, once searched
tuned_flags() {  # tower -> TUNED_FLAGS: the selected base trial's flags
  if [ -n "${TUNED_DONE[$1]+set}" ]; then
    read -r -a TUNED_FLAGS <<< "${TUNED_DONE[$1]}"
    return 0
  fi
  local tower=$1 study="$OUT/tune_base_${1}${TUNED_SUFFIX}"
  local records="$RESULTS_DIR/tuning_base_${1}${TUNED_SUFFIX}/trials"
  local log="$OUT/logs/tune_base_${1}${TUNED_SUFFIX}.log"
  if [ -n "$RESULTS_DIR" ] && [ ! -e "$study/study.db" ] \
      && compgen -G "$records/[0-9]*.json" > /dev/null; then
    run mkdir -p "$study/trials"
    run cp "$records"/[0-9]*.json "$study/trials/"
  fi
  TUNED_FLAGS=("<flags of $tower's selected trial>")
  local search=("$PY" experiments/tune.py --dataset=ml-1m --tower="$tower"
                --space=base --enqueue_base --num_trials="$TUNED_TRIALS"
                --epochs="$TUNED_EPOCHS" --patience=3 --study_dir="$study"
                --evaluate_best=false ${TUNED_DATA[@]+"${TUNED_DATA[@]}"}
                ${THREADS[@]+"${THREADS[@]}"}
                ${EXTRA[@]+"${EXTRA[@]}"})
  if [ -n "${DRY_RUN:-}" ]; then
    echo "${search[*]}"
    TUNED_DONE[$tower]="${TUNED_FLAGS[*]}"
    return 0
  fi
  mkdir -p "$OUT/logs"
  echo "$(date '+%F %T') $tower: base search (log: $log)"
  if ! "${search[@]}" >> "$log" 2>&1; then
    echo "run_tables.sh: the $tower base search failed: see $log." >&2
    return 1
  fi
  if [ -n "$RESULTS_DIR" ]; then
    mkdir -p "$records"
    cp "$study/trials"/[0-9]*.json "$records/"
  fi
  grep "^selected trial" "$log" | tail -n 1
  read -r -a TUNED_FLAGS <<< "$(sed -n 's/^flags: //p' "$log" | tail -n 1)"
  if (( ${#TUNED_FLAGS[@]} == 0 )); then
    echo "run_tables.sh: the $tower search printed no flags: see $log." >&2
    return 1
  fi
  TUNED_DONE[$tower]="${TUNED_FLAGS[*]}"
}

for table in $TABLES; do
  case $table in
    towers|table3|mining|sparse|fractions|tuned_base) ;;
    *) echo "run_tables.sh: unknown table '$table' in TABLES; use towers," \
            "table3, mining, sparse, fractions or tuned_base." >&2; exit 2 ;;
  esac
done

for seed in $SEEDS; do
  for table in $TABLES; do
    case $table in
      towers)
        cell "$OUT/table_dssm" dssm base "$seed"
        cell "$OUT/table_dssm_mic" dssm all "$seed"
        for tower in youtube_dnn comirec_dr comirec_sa; do
          cell "$OUT/table_towers" "$tower" base "$seed"
          cell "$OUT/table_towers_mic" "$tower" all "$seed"
        done ;;
      table3)
        for variant in ui uu ii ui+uu ui+ii uu+ii; do
          cell "$OUT/table3" dssm "$variant" "$seed"
        done ;;
      mining)
        cell "$OUT/table_mining" dssm all+nn "$seed" ;;
      sparse)
        for tower in dssm youtube_dnn comirec_sa comirec_dr; do
          for variant in base all; do
            cell "$OUT/sparse20" "$tower" "$variant" "$seed" \
              --train_user_fraction=0.2 --epochs=60
          done
        done ;;
      fractions)
        for percent in 10 50; do
          for variant in base all; do
            cell "$OUT/sparse$percent" comirec_dr "$variant" "$seed" \
              --train_user_fraction="0.$percent" --epochs=60
          done
        done ;;
      tuned_base)
        for tower in $TUNED_TOWERS; do
          tuned_flags "$tower" || { FAILED=$((FAILED + 1)); continue; }
          for variant in base all; do
            cell "$OUT/$TUNED_OUT" "$tower" "$variant" "$seed" \
              ${TUNED_DATA[@]+"${TUNED_DATA[@]}"} "${TUNED_FLAGS[@]}"
          done
        done ;;
    esac
  done
done
while (( ${#PIDS[@]} > 0 )); do reap; done
if (( FAILED > 0 )); then
  echo "run_tables.sh: $FAILED cell(s) failed: see $OUT/logs/." >&2
  exit 1
fi
