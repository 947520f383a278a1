r"""Kills training runs at random points and checks that the next run recovers.

Each trial starts ``experiments/train.py`` (MovieLens-100k, a small DSSM so
an epoch takes a few seconds, ``--threads=1``, its own ``--output_dir``),
kills it with SIGKILL or SIGTERM at one of four points, then reruns the same
command and classifies what the second run did:

* ``training``: a uniformly random moment of the training phase (from the
  first ``Epoch 1/N`` line over the length of an uninterrupted run).
* ``best write``: while ``checkpoints/best`` is being written (the moment
  TensorFlow's ``checkpoints/best_temp/`` folder appears, after a random
  number of earlier best writes, plus a random delay of up to 2 ms).
* ``backup write``: the same for the ``BackupAndRestore`` state
  (``backup/chief/ckpt-*_temp/``).
* ``wrap-up``: after the last epoch (training is over, the test users are
  being evaluated and ``metrics.json`` written), a random delay after the
  last epoch's line (up to half the time an uninterrupted run takes from
  that line to its exit).

Before the rerun the script records the epochs the killed run had finished:
those in ``checkpoints/best.history.json`` (the run's own record) and those
it printed as done. After the rerun it reads ``metrics.json`` and classifies:

* ``resumed``: the rerun went on from the backup, retrained no finished
  epoch, and kept every finished epoch's record unchanged;
* ``restarted``: the killed run had finished no epoch and the rerun trained
  from epoch 1;
* ``refused``: the rerun exited with status 2 and a one-line
  ``train.py: error: ...`` message;
* ``broken``: anything else: a traceback, a finished epoch retrained or its
  record changed, an incomplete history, or a selected checkpoint whose
  valid Recall@50 differs from the one ``metrics.json`` reports (this
  process reloads every finished run with ``mic_tf.training.load_run`` and
  evaluates it). The target is 0.

A kill that came after the run had written ``metrics.json`` is counted as
``finished first`` (the run was complete; there is nothing to recover).
The ``hit`` column counts kills that landed while the temporary checkpoint
folder of that point existed; ``stale tmp`` counts reruns that left a
``*_temp`` folder behind.

Usage (the committed table; about 25 CPU-seconds a trial):

  python benchmarks/crash_safety.py --trials=40 --seed=0 \
      --output=docs/results/crash_safety.txt

``--quick`` runs one SIGKILL trial per point (a smoke test).
"""

import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional

from absl import app
from absl import flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # the Verifier imports this checkout's mic_tf
TRAIN = os.path.join(REPO, "experiments", "train.py")

FLAGS = flags.FLAGS
flags.DEFINE_integer("trials", 40, "Kill-and-rerun trials (spread evenly "
                     "over the 2 signals x 4 points).")
flags.DEFINE_integer("seed", 0, "Seed of the kill points and delays.")
flags.DEFINE_bool("quick", False, "One SIGKILL trial per point.")
flags.DEFINE_integer("epochs", 3, "Epochs of each training run.")
flags.DEFINE_string("work_dir", None, "Where the run directories go "
                    "(default: a temporary folder, removed at the end).")
flags.DEFINE_string("output", None, "Also write the report here.")
flags.DEFINE_integer("timeout", 900, "Seconds a (re)run may take.")

SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGTERM": signal.SIGTERM}
POINTS = ("training", "best write", "backup write", "wrap-up")
OUTCOMES = ("resumed", "restarted", "refused", "broken", "finished first")
_EPOCH_DONE = re.compile(r"^\s*\d+/\d+ - .*val_recall@")
_EPOCH_START = re.compile(r"^Epoch (\d+)/(\d+)")


def train_flags(epochs: int) -> List[str]:
  """The small, fast configuration every trial trains."""
  return ["--dataset=ml-100k", f"--epochs={epochs}", "--patience=100",
          "--batch_size=256", "--examples_per_epoch=2048",
          "--embedding_dim=64", "--output_dim=64", "--hidden_units=64",
          "--learning_rate=0.005", "--threads=1", "--verbose=2", "--seed=0"]


def _command(out_dir: str, epochs: int) -> List[str]:
  return [sys.executable, TRAIN] + train_flags(epochs) + [
      f"--output_dir={out_dir}"]


def _env() -> Dict[str, str]:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
  env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"]
                              if env.get("PYTHONPATH") else "")
  return env


def _read(path: str) -> str:
  try:
    with open(path, errors="replace") as f:
      return f.read()
  except OSError:
    return ""


def _json(path: str) -> Optional[Any]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _best_temp(out_dir: str) -> bool:
  return os.path.isdir(os.path.join(out_dir, "checkpoints", "best_temp"))


def _backup_temp(out_dir: str) -> bool:
  return bool(glob.glob(os.path.join(out_dir, "backup", "chief", "*_temp")))


def _lines(text: str) -> List[str]:
  # Keras' progress output ends lines with \r or \n.
  return re.split(r"[\r\n]+", text)


def _printed_epochs(log: str) -> List[int]:
  """Epochs the log shows as finished (their summary line was printed)."""
  done, current = [], None
  for line in _lines(log):
    m = _EPOCH_START.match(line)
    if m:
      current = int(m.group(1))
    elif current is not None and _EPOCH_DONE.match(line):
      done.append(current)
  return done


def _started_epochs(log: str) -> List[int]:
  return [int(m.group(1)) for m in map(_EPOCH_START.match, _lines(log)) if m]


def reference_run(work: str, epochs: int, timeout: int) -> Dict[str, float]:
  """One uninterrupted run: how long training and the wrap-up take."""
  out_dir = os.path.join(work, "reference")
  log_path = out_dir + ".log"
  with open(log_path, "w") as log:
    start = time.monotonic()
    proc = subprocess.Popen(_command(out_dir, epochs), stdout=log,
                            stderr=subprocess.STDOUT, env=_env())
    first = last = None
    while proc.poll() is None:
      text = _read(log_path)
      now = time.monotonic()
      if first is None and "Epoch 1/" in text:
        first = now
      if last is None and len(_printed_epochs(text)) >= epochs:
        last = now
      if now - start > timeout:
        proc.kill()
        raise RuntimeError("the reference run timed out")
      time.sleep(0.05)
    end = time.monotonic()
  if proc.returncode or first is None or last is None:
    raise RuntimeError(f"the reference run failed:\n{_read(log_path)[-3000:]}")
  history = _json(os.path.join(out_dir, "metrics.json"))["history"]
  best, improvements = -1.0, 0
  for h in history:
    if h["recall@50"] > best:
      best, improvements = h["recall@50"], improvements + 1
  return {"training": last - first, "wrap_up": end - last,
          "best_writes": improvements, "total": end - start}


def _kill_when(proc, out_dir, log_path, point, rng, ref, epochs, timeout):
  """Waits for the kill point of ``point``; returns True if it killed."""
  start = time.monotonic()
  if point == "training":
    trigger = lambda text: "Epoch 1/" in text
    delay = rng.uniform(0, ref["training"])
    skip = 0
  elif point == "best write":
    trigger = lambda text: _best_temp(out_dir)
    delay = rng.uniform(0, 0.002)
    skip = rng.randrange(max(1, int(ref["best_writes"])))
  elif point == "backup write":
    trigger = lambda text: _backup_temp(out_dir)
    delay = rng.uniform(0, 0.002)
    skip = rng.randrange(epochs)
  else:  # wrap-up (its second half is mostly the interpreter's exit)
    trigger = lambda text: len(_printed_epochs(text)) >= epochs
    delay = rng.uniform(0, ref["wrap_up"] / 2)
    skip = 0
  seen, was_on = 0, False
  while proc.poll() is None:
    if time.monotonic() - start > timeout:
      return False
    on = trigger(_read(log_path) if point in ("training", "wrap-up") else "")
    if on and not was_on:
      if seen == skip:
        end = time.monotonic() + delay
        while proc.poll() is None:
          left = end - time.monotonic()
          if left <= 0:
            break
          if left > 0.005:  # sleep through long delays, spin the last ms
            time.sleep(min(left - 0.004, 0.01))
        return True
      seen += 1
    was_on = on
    time.sleep(0.0005 if point.endswith("write") else 0.01)
  return False


class Verifier:
  """Reloads a finished run and checks its checkpoint against its record."""

  def __init__(self):
    self._prepared = None

  def check(self, out_dir: str) -> Optional[str]:
    """None if the selected checkpoint scores what metrics.json says."""
    import mic_tf  # noqa: F401  pylint: disable=g-import-not-at-top
    from mic_tf import training  # pylint: disable=g-import-not-at-top
    from mic_tf.channels.evaluate import evaluate_u2i  # pylint: disable=g-import-not-at-top
    config, self._prepared, model = training.load_run(out_dir,
                                                      self._prepared)
    evaluation = config.evaluation
    got = evaluate_u2i(model, self._prepared.valid, evaluation.cutoffs,
                       evaluation.exclude_history, evaluation.eval_batch_size)
    want = _json(os.path.join(out_dir, "metrics.json"))["valid"]
    key = f"recall@{max(evaluation.cutoffs)}"
    if abs(got[key] - want[key]) > 1e-3:
      return (f"checkpoint valid {key} {got[key]:.4f}, metrics.json "
              f"{want[key]:.4f}")
    return None


def classify(out_dir: str, before: Dict[str, Any], rc: int, log: str,
             epochs: int, verifier: Verifier) -> Dict[str, Any]:
  """The outcome of the rerun (module docstring)."""
  lines = [l for l in _lines(log) if l.strip()]
  result = {"rc": rc, "stale_tmp": _best_temp(out_dir) or _backup_temp(
      out_dir)}
  if rc != 0:
    errors = [l for l in lines if re.match(r"^train\.py: error: ", l)]
    if rc == 2 and errors and "Traceback" not in log:
      return {**result, "outcome": "refused", "why": errors[-1][:300]}
    return {**result, "outcome": "broken",
            "why": f"exit {rc}: " + (lines[-1][:300] if lines else "")}
  metrics = _json(os.path.join(out_dir, "metrics.json"))
  if metrics is None:
    return {**result, "outcome": "broken", "why": "no metrics.json"}
  history = {h["epoch"]: h for h in metrics["history"]}
  trained = _started_epochs(log)
  first = min(trained) if trained else epochs + 1
  result["first_epoch"] = first
  finished = sorted(set(before["recorded"]) | set(before["printed"]))
  problems = []
  if sorted(history) != list(range(1, epochs + 1)):
    problems.append(f"history holds epochs {sorted(history)}")
  lost = [e for e in finished if e >= first]
  if lost:
    problems.append(f"finished epochs {lost} trained again")
  for e, h in before["history"].items():
    if e < first and history.get(e) != h:
      problems.append(f"epoch {e}'s record changed")
  if not problems:
    mismatch = verifier.check(out_dir)
    if mismatch:
      problems.append(mismatch)
  if problems:
    return {**result, "outcome": "broken", "why": "; ".join(problems)}
  if first == 1:
    return {**result, "outcome": "restarted" if not finished else "broken"}
  return {**result, "outcome": "resumed"}


def run_trial(work: str, index: int, sig_name: str, point: str,
              rng: random.Random, ref: Dict[str, float], epochs: int,
              timeout: int, verifier: Verifier) -> Dict[str, Any]:
  out_dir = os.path.join(work, f"trial{index:03d}")
  log_path = out_dir + ".kill.log"
  trial = {"trial": index, "signal": sig_name, "point": point}
  with open(log_path, "w") as log:
    proc = subprocess.Popen(_command(out_dir, epochs), stdout=log,
                            stderr=subprocess.STDOUT, env=_env())
    start = time.monotonic()
    fired = _kill_when(proc, out_dir, log_path, point, rng, ref, epochs,
                       timeout)
    if fired and proc.poll() is None:
      os.kill(proc.pid, SIGNALS[sig_name])
      trial["kill_s"] = round(time.monotonic() - start, 3)
    else:
      if proc.poll() is None:
        proc.kill()
    proc.wait()
  if "kill_s" not in trial:
    trial.update(outcome="not triggered", rc=proc.returncode)
    shutil.rmtree(out_dir, ignore_errors=True)
    return trial
  trial["hit"] = {"best write": _best_temp(out_dir),
                  "backup write": _backup_temp(out_dir)}.get(point)
  killed_log = _read(log_path)
  state = _json(os.path.join(out_dir, "checkpoints", "best.history.json"))
  before = {"printed": _printed_epochs(killed_log),
            "history": {h["epoch"]: h for h in (state or {}).get(
                "history", [])}}
  before["recorded"] = sorted(before["history"])
  trial["finished_before"] = sorted(set(before["recorded"]) |
                                    set(before["printed"]))
  if os.path.exists(os.path.join(out_dir, "metrics.json")):
    trial["outcome"] = "finished first"
    shutil.rmtree(out_dir, ignore_errors=True)
    return trial
  rerun_log = out_dir + ".rerun.log"
  with open(rerun_log, "w") as log:
    try:
      rc = subprocess.run(_command(out_dir, epochs), stdout=log,
                          stderr=subprocess.STDOUT, env=_env(),
                          timeout=timeout).returncode
    except subprocess.TimeoutExpired:
      rc = -1
  trial.update(classify(out_dir, before, rc, _read(rerun_log), epochs,
                        verifier))
  if trial["outcome"] != "broken":
    shutil.rmtree(out_dir, ignore_errors=True)
  return trial


def table(trials: List[Dict[str, Any]]) -> str:
  cols = ["signal", "point", "trials", "hit"] + list(OUTCOMES) + [
      "not triggered", "stale tmp"]
  rows = []
  for sig in SIGNALS:
    for point in POINTS:
      group = [t for t in trials if t["signal"] == sig and t["point"] == point]
      if not group:
        continue
      hit = ("-" if not point.endswith("write") else
             str(sum(bool(t.get("hit")) for t in group)))
      rows.append([sig, point, str(len(group)), hit] +
                  [str(sum(t["outcome"] == o for t in group))
                   for o in OUTCOMES + ("not triggered",)] +
                  [str(sum(bool(t.get("stale_tmp")) for t in group))])
  total = ["all", "", str(len(trials)), "-"] + [
      str(sum(t["outcome"] == o for t in trials))
      for o in OUTCOMES + ("not triggered",)] + [
          str(sum(bool(t.get("stale_tmp")) for t in trials))]
  rows.append(total)
  widths = [max(len(r[i]) for r in [cols] + rows) for i in range(len(cols))]
  fmt = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths)))
  return "\n".join([fmt(cols)] + [fmt(r) for r in rows])


def _plan(trials: int, quick: bool, rng: random.Random):
  if quick:
    return [("SIGKILL", p) for p in POINTS]
  cells = [(s, p) for s in SIGNALS for p in POINTS]
  plan = [cells[i % len(cells)] for i in range(trials)]
  rng.shuffle(plan)
  return plan


def make_report(trials, planned, ref, wall) -> str:
  from mic_tf import run_record  # pylint: disable=g-import-not-at-top
  flags_used = " ".join(a for a in sys.argv[1:] if not a.startswith(
      ("--work_dir", "--output")))
  done = (f"{len(trials)} trials" if len(trials) == planned else
          f"{len(trials)} of {planned} planned trials (interrupted)")
  return "\n".join([
      f"# python benchmarks/crash_safety.py {flags_used}".rstrip(),
      f"# hardware: {run_record.hardware_line()}",
      "# each trial: python experiments/train.py "
      + " ".join(train_flags(FLAGS.epochs)) + " --output_dir=<trial dir>,",
      "# killed at the point below, then the same command rerun "
      "(see the docstring of benchmarks/crash_safety.py).",
      f"# uninterrupted run: training {ref['training']:.1f} s, wrap-up "
      f"{ref['wrap_up']:.1f} s; {done}, wall time {wall:.0f} s",
      "",
      table(trials),
      "",
      "# per trial: signal, point, kill time (s after start), epochs "
      "finished before the kill, first epoch the rerun trained, outcome",
  ] + [
      f"{t['trial']:3d} {t['signal']} {t['point']:<12} "
      f"{t.get('kill_s', '-')!s:>7} finished={t.get('finished_before', '-')}"
      f" first={t.get('first_epoch', '-')} {t['outcome']}"
      + (f" ({t['why']})" if t.get("why") else "")
      for t in trials])


def main(argv):
  del argv
  rng = random.Random(FLAGS.seed)
  own_work = FLAGS.work_dir is None
  work = FLAGS.work_dir or tempfile.mkdtemp(prefix="crash_safety_")
  os.makedirs(work, exist_ok=True)
  started = time.monotonic()
  ref = reference_run(work, FLAGS.epochs, FLAGS.timeout)
  print(f"reference run: training {ref['training']:.1f} s, wrap-up "
        f"{ref['wrap_up']:.1f} s, {int(ref['best_writes'])} best writes",
        flush=True)
  verifier = Verifier()
  trials = []
  plan = _plan(FLAGS.trials, FLAGS.quick, rng)
  for i, (sig, point) in enumerate(plan):
    t = run_trial(work, i, sig, point, rng, ref, FLAGS.epochs,
                  FLAGS.timeout, verifier)
    trials.append(t)
    print(json.dumps(t, sort_keys=True), flush=True)
    report = make_report(trials, len(plan), ref, time.monotonic() - started)
    if FLAGS.output:  # after every trial: an interrupted run still reports
      with open(FLAGS.output, "w") as f:
        f.write(report + "\n")
  print("\n" + report)
  if own_work and not any(t["outcome"] == "broken" for t in trials):
    shutil.rmtree(work, ignore_errors=True)
  elif any(t["outcome"] == "broken" for t in trials):
    print(f"broken run directories kept under {work}")


if __name__ == "__main__":
  app.run(main)
