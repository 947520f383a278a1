"""Bad input through the binaries: one line naming the problem, exit status 2.

Each case runs a binary's ``main`` in this process through ``cli.invoke``
(what ``cli.run`` does after ``app.run`` parsed the command line), so the
cases cost no TensorFlow start-up; one case runs a real subprocess to check
the whole command line path (``app.run``, the start-up environment).
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

from absl import flags
import numpy as np
import pytest

import mic_tf  # noqa: F401
from mic_tf import cli
from mic_tf import errors

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_SUFFIX = "_binary"  # module names of binaries loaded by tests


def _drop_binary_flags():
  """Removes flags that test-loaded binaries defined (names may clash).

  absl records a binary loaded by ``exec_module`` as defined by
  ``importlib._bootstrap`` (here and in other tests that load binaries).
  """
  for module, defined in list(flags.FLAGS.flags_by_module_dict().items()):
    if module.endswith(_SUFFIX) or module == "importlib._bootstrap":
      for flag in list(defined):  # deleting edits this list
        if flag.name in flags.FLAGS:
          delattr(flags.FLAGS, flag.name)


def _load(name):
  _drop_binary_flags()
  spec = importlib.util.spec_from_file_location(
      name + _SUFFIX, _ROOT / "experiments" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.fixture()
def run_binary(capsys):
  """Runs ``experiments/<name>.py`` with argv; returns (exit code, stderr)."""

  def _run(name, *argv):
    module = _load(name)
    try:
      with pytest.raises(SystemExit) as exit_info:
        cli.invoke(module.main, [f"{name}.py", *argv])
    finally:
      flags.FLAGS.unparse_flags()
    err = capsys.readouterr().err
    return exit_info.value.code, err

  yield _run
  _drop_binary_flags()


def _tiny_flags(csv, output_dir):
  return [f"--data_path={csv}", "--dataset=custom", "--epochs=1",
          "--batch_size=64", "--embedding_dim=8", "--output_dim=8",
          "--hidden_units=8", "--maxlen=5", "--max_item_users=4",
          "--projection_dim=8", f"--output_dir={output_dir}", "--verbose=0"]


def _unfinished_run(directory, **config_changes):
  """A run directory that looks like a crashed run (backup + config)."""
  os.makedirs(os.path.join(directory, "backup"))
  with open(os.path.join(directory, "backup", "state"), "w") as f:
    f.write("x")
  config = mic_tf.training.ExperimentConfig().to_dict()
  config.update(config_changes)
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config, f, default=list)


def _old_version_run(directory):
  """A finished-looking run whose config has a setting we do not know."""
  os.makedirs(os.path.join(directory, "checkpoints"))
  open(os.path.join(directory, "checkpoints", "best.index"), "w").close()
  config = mic_tf.training.ExperimentConfig().to_dict()
  config["learning_rate_schedule"] = "cosine"
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump(config, f, default=list)


# (binary, argv builder, expected message). The builder gets tmp_path and
# the interactions CSV.
CASES = {
    "flag below its bound": (
        "train", lambda t, c: ["--epochs=0"],
        "flag --epochs=0: 0 is not a positive integer"),
    "unknown dataset": (
        "train", lambda t, c: ["--dataset=ml-20m"],
        "value should be one of"),
    "misspelt flag": (
        "train", lambda t, c: ["--epoch=3"],
        "Unknown command line flag 'epoch'. Did you mean: epochs ?"),
    "unknown flag": (
        "train", lambda t, c: ["--zzz=3"],
        "Unknown command line flag 'zzz'; run with --helpshort to list the "
        "flags"),
    "unexpected argument": (
        "train", lambda t, c: ["ml-1m"],
        "Unexpected arguments: ['ml-1m']"),
    "unknown reference row": (
        "train", lambda t, c: ["--baselines=popular"],
        "Unknown --baselines ['popular']; choose from"),
    "non-integer hidden units": (
        "train", lambda t, c: ["--hidden_units=a,b"],
        "--hidden_units must be integers"),
    "unknown MIC term": (
        "train", lambda t, c: ["--mic_terms=xy"],
        "Unknown contrastive term"),
    "unknown tower": (
        "train", lambda t, c: ["--tower=transformer"],
        "Unknown --tower=transformer; available:"),
    "data path for a fetched dataset": (
        "train", lambda t, c: ["--dataset=ml-100k", "--data_path=/x.csv"],
        "--data_path is not used by --dataset=ml-100k"),
    "custom data without a file": (
        "train", lambda t, c: ["--dataset=custom"],
        "needs the interactions file"),
    "missing data file": (
        "train", lambda t, c: ["--dataset=custom",
                               f"--data_path={t / 'none.csv'}"],
        "none.csv does not exist; pass the path of a .csv or .parquet"),
    "data path naming a directory": (
        "train", lambda t, c: ["--dataset=custom",
                               f"--data_path={os.path.dirname(c)}"],
        "is a directory; pass the path of the .csv or .parquet file itself, "
        "e.g. "),
    "malformed data file": (
        "train", lambda t, c: ["--dataset=custom",
                               f"--data_path={_garbage(t)}"],
        "is not a readable CSV file"),
    "wrong column name": (
        "train", lambda t, c: ["--dataset=custom", f"--data_path={c}",
                               "--user_col=uid"],
        "has no column 'uid' (from user_col)"),
    "dataset file absent from the data dir": (
        "train", lambda t, c: ["--dataset=taobao", f"--data_dir={t}"],
        "No taobao file given"),
    "output dir naming a file": (
        "train", lambda t, c: _tiny_flags(c, _file(t / "taken")),
        "taken is a file, not a directory; pass a directory for the run"),
    "fewer training examples than a batch": (
        "train", lambda t, c: _tiny_flags(c, t / "run") + ["--batch_size=2048"],
        "Only 1056 training examples, fewer than batch_size=2048: not one "
        "full batch (the in-batch negatives need full batches). Pass "
        "--batch_size=1056 or less"),
    "history longer than memory holds": (
        "train", lambda t, c: _tiny_flags(c, t / "run") + [
            "--maxlen=100000000"],
        "--maxlen=100000000 needs at least 199.7 GiB for the history "
        "tensors (a batch of 64 histories embedded in 8 dimensions, plus "
        "the evaluated users'), more than the "),
    "resuming a run of other settings": (
        "train", lambda t, c: _tiny_flags(c, _made(_unfinished_run,
                                                   t / "run", seed=7)),
        "holds an unfinished run with other settings ("),
    "evaluate without --run_dir": (
        "evaluate", lambda t, c: [],
        "Flag --run_dir must have a value other than None"),
    "evaluate a directory that is no run": (
        "evaluate", lambda t, c: [f"--run_dir={t}"],
        "is not a run directory written by experiments/train.py"),
    "evaluate a run of another version": (
        "evaluate",
        lambda t, c: [f"--run_dir={_made(_old_version_run, t / 'old')}"],
        "Unknown experiment settings ['learning_rate_schedule']: the config "
        "was written by another mic-tf version"),
    "malformed channel config": (
        "evaluate", lambda t, c: [f"--run_dir={t}",
                                  "--channel_config={not json"],
        "neither"),
    "unknown channel": (
        "evaluate", lambda t, c: [f"--run_dir={t}", "--channels=u2x"],
        "Unknown channel(s) ['u2x']"),
    "negative fusion prior margin": (
        "evaluate", lambda t, c: [f"--run_dir={t}",
                                  "--fusion_prior_margin=-1"],
        "--fusion_prior_margin=-1: give a number >= 0, 'default' or 'none'"),
    "export without --export_dir": (
        "export", lambda t, c: [f"--run_dir={t}"],
        "Flag --export_dir must have a value other than None"),
    "non-integer seeds": (
        "ablation", lambda t, c: ["--seeds=0,one"],
        "--seeds must be integers"),
    "mining a base model": (
        "ablation", lambda t, c: ["--variants=base+nn"],
        "Mining needs contrastive terms"),
    "unknown selection channel": (
        "train", lambda t, c: ["--dataset=ml-100k", "--select_on=u2i,u2x"],
        "select_on must name distinct channels"),
    "training user fraction above 1": (
        "train", lambda t, c: ["--dataset=ml-100k", "--train_user_fraction=2"],
        "train_user_fraction must be in (0, 1]"),
    "table group without a label": (
        "channels_table", lambda t, c: ["--groups=runs/*"],
        "--groups needs LABEL=GLOB"),
    "table group matching nothing": (
        "channels_table", lambda t, c: [f"--groups=A={t}/none*"],
        "No run directory or metrics file matches"),
    "table pair without a colon": (
        "channels_table", lambda t, c: [f"--groups=A={t}", "--pair=A"],
        "--pair needs VARIANT:BASE"),
    "curve group without a label": (
        "learning_curves", lambda t, c: ["--groups=runs/*",
                                         f"--output={t}/c.png"],
        "--groups needs LABEL=GLOB"),
    "curve group matching nothing": (
        "learning_curves", lambda t, c: [f"--groups=A={t}/none*",
                                         f"--output={t}/c.png"],
        "No run directory or metrics file matches"),
}


def _garbage(tmp_path):
  path = tmp_path / "broken.csv"
  path.write_bytes(b'user,item,timestamp\n1,"2,3\n' + bytes(range(256)))
  return path


def _file(path):
  path.write_text("")
  return path


def _made(make, directory, **kwargs):
  make(str(directory), **kwargs)
  return directory


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(case, run_binary, tmp_path,
                                          interactions_csv):
  binary, argv, expected = CASES[case]
  code, err = run_binary(binary, *argv(tmp_path, interactions_csv))
  assert code == cli.USER_ERROR_EXIT_CODE, err
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith(f"{binary}.py: error: "), lines[0]
  assert expected in lines[0], lines[0]
  assert "Traceback" not in err


def test_debug_flag_shows_the_traceback(run_binary):
  module = _load("train")
  with pytest.raises(ValueError, match="Unknown --baselines"):
    cli.invoke(module.main, ["train.py", "--baselines=popular", "--debug"])
  flags.FLAGS.unparse_flags()


def test_bugs_keep_their_traceback():
  def main(argv):
    del argv
    return np.zeros((2, 2)).reshape(3)  # numpy raises ValueError: a bug

  with pytest.raises(ValueError, match="cannot reshape"):
    cli.invoke(main, ["prog"])

  def main_key(argv):
    return {}[argv[0]]

  with pytest.raises(KeyError):
    cli.invoke(main_key, ["prog"])


def test_the_rule():
  def own():
    raise ValueError("checked")

  def builtin():
    return int("x")

  for fn, expected in ((own, False), (builtin, False)):
    try:
      fn()
    except ValueError as error:  # raised in tests/, not in mic_tf/
      assert errors.is_user_error(error) is expected
  try:
    own()
  except ValueError as error:
    assert errors.is_user_error(error, extra_dirs=[os.path.dirname(
        __file__)])
  try:
    builtin()
  except ValueError as error:
    assert not errors.is_user_error(error, extra_dirs=[os.path.dirname(
        __file__)])
  assert errors.is_user_error(errors.UserError("x"))
  assert errors.is_user_error(FileNotFoundError("x"))
  assert not errors.is_user_error(RuntimeError("x"))
  assert not errors.is_user_error(TypeError("x"))


@pytest.mark.slow
def test_command_line_prints_one_line_and_exits_2(tmp_path):
  """The one real process: app.run, the start-up environment, stderr."""
  env = dict(os.environ, PYTHONPATH=str(_ROOT))
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  done = subprocess.run(
      [sys.executable, str(_ROOT / "experiments" / "evaluate.py"),
       f"--run_dir={tmp_path}"], env=env, capture_output=True, text=True,
      timeout=300, check=False)
  assert done.returncode == 2, done.stderr[-3000:]
  assert done.stderr.strip().splitlines() == [
      f"evaluate.py: error: {tmp_path}/config.json not found: "
      f"{str(tmp_path)!r} is not a run directory written by "
      "experiments/train.py (pass its --output_dir)."], done.stderr[-3000:]
  assert done.stdout == ""


@pytest.fixture(scope="module")
def corrupt_run(interactions_csv, tmp_path_factory):
  """A finished tiny run whose checkpoint data file lost its second half."""
  directory = tmp_path_factory.mktemp("corrupt")
  module = _load("train")
  try:
    cli.invoke(module.main, ["train.py", *_tiny_flags(interactions_csv,
                                                      directory)])
  finally:
    flags.FLAGS.unparse_flags()
    _drop_binary_flags()
  (data,) = (directory / "checkpoints").glob("best.data-*")
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  return directory


@pytest.mark.parametrize("binary", ["evaluate", "export"])
def test_corrupt_checkpoint_is_one_line(binary, corrupt_run, run_binary,
                                        tmp_path):
  extra = ([f"--export_dir={tmp_path / 'export'}"] if binary == "export"
           else ["--tune_grid=none"])
  code, err = run_binary(binary, f"--run_dir={corrupt_run}", *extra)
  assert code == cli.USER_ERROR_EXIT_CODE, err
  lines = err.strip().splitlines()
  assert len(lines) == 1, err
  assert lines[0].startswith(
      f"{binary}.py: error: The checkpoint {corrupt_run}/checkpoints/best is "
      "corrupt ("), lines[0]
  assert "Copy the run directory again from a good copy or retrain" in lines[0]
