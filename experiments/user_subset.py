r"""Writes a seeded subset of a MovieLens dataset's users as a custom CSV.

A stand-in for a small rating dataset of a few hundred users (the regime of
docs/experiments/fusion-selection.md), trained with --dataset=custom:

  python experiments/user_subset.py --dataset=ml-100k --num_users=300 \
      --subset_seed=0 --output=runs/small/ml100k_300u_k0.csv
  python experiments/train.py --dataset=custom \
      --data_path=runs/small/ml100k_300u_k0.csv --tower=dssm ...

Every interaction of ``--num_users`` users drawn without replacement
(``numpy.random.default_rng(--subset_seed)`` over the sorted user ids) from
the cached RecBole copy (experiments/train.py --dataset=ml-100k fetches it
first), as user,item,timestamp. The file is MovieLens data: keep it out of
the repository.
"""

import os

from absl import app
from absl import flags
import numpy as np
import pandas as pd

from mic_tf.data import fetch

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "ml-100k", ["ml-100k", "ml-1m"],
                  "Cached MovieLens dataset to draw from.")
flags.DEFINE_integer("num_users", 300, "Users to keep.", lower_bound=1)
flags.DEFINE_integer("subset_seed", 0, "Seed of the draw.")
flags.DEFINE_string("output", None, "CSV file to write.", required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  path = fetch.data_dir() / FLAGS.dataset / f"{FLAGS.dataset}.inter"
  if not path.exists():
    raise app.UsageError(
        f"{path} is missing: fetch it first, e.g. python -c \"from "
        f"mic_tf.data.fetch import fetch_movielens; "
        f"fetch_movielens('{FLAGS.dataset}')\".")
  table = pd.read_csv(path, sep="\t")
  table.columns = [c.split(":")[0] for c in table.columns]
  users = np.sort(table["user_id"].unique())
  if FLAGS.num_users > len(users):
    raise app.UsageError(f"--num_users={FLAGS.num_users} is more than the "
                         f"{len(users)} users of {FLAGS.dataset}.")
  keep = np.random.default_rng(FLAGS.subset_seed).choice(
      users, FLAGS.num_users, replace=False)
  out = table[table["user_id"].isin(keep)][
      ["user_id", "item_id", "timestamp"]]
  out.columns = ["user", "item", "timestamp"]
  os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
  out.to_csv(FLAGS.output, index=False)
  print(f"{FLAGS.output}: {FLAGS.num_users} users, {len(out):,} "
        "interactions")


if __name__ == "__main__":
  app.run(main)
