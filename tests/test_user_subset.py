"""experiments/user_subset.py: a seeded draw of whole users, as a CSV."""

import subprocess
import sys

import pandas as pd

from mic_tf.data import fetch

_BINARY = "experiments/user_subset.py"


def _run(tmp_path, *args):
  env = {"PATH": "/usr/bin:/bin", fetch.DATA_DIR_ENV: str(tmp_path / "data")}
  return subprocess.run([sys.executable, _BINARY, *args], env=env,
                        capture_output=True, text=True, check=False)


def test_keeps_every_interaction_of_the_drawn_users(tmp_path):
  folder = tmp_path / "data" / "ml-100k"
  folder.mkdir(parents=True)
  rows = [(u, i, 100 * u + i) for u in range(1, 21) for i in range(u % 4 + 2)]
  pd.DataFrame(rows, columns=["user_id:token", "item_id:token",
                              "timestamp:float"]).to_csv(
                                  folder / "ml-100k.inter", sep="\t",
                                  index=False)
  outputs = []
  for seed in (0, 0, 1):
    out = tmp_path / f"subset_{len(outputs)}.csv"
    done = _run(tmp_path, "--num_users=5", f"--subset_seed={seed}",
                f"--output={out}")
    assert done.returncode == 0, done.stderr
    outputs.append(pd.read_csv(out))
  first = outputs[0]
  assert list(first.columns) == ["user", "item", "timestamp"]
  assert first["user"].nunique() == 5
  for user, group in first.groupby("user"):
    assert len(group) == user % 4 + 2  # every interaction of the user
  pd.testing.assert_frame_equal(first, outputs[1])  # same seed, same draw
  assert set(first["user"]) != set(outputs[2]["user"])
  done = _run(tmp_path, "--num_users=50", f"--output={tmp_path / 'x.csv'}")
  assert done.returncode != 0
  assert "more than the 20 users" in done.stderr
