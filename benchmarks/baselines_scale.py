r"""Sparse ItemKNN / UserKNN at Amazon Books size, on synthetic data.

  python benchmarks/baselines_scale.py --items=314000 --users=100000

Draws users with log-normal history lengths (median ~13, mean ~18, clipped
to 5 .. 500) over items with Zipf-like popularity (p ~ rank^-0.9), fits each
model on every user, retrieves the top 50 for --eval_users of them (history
excluded), and prints wall and CPU seconds and the peak resident memory of
the process so far. EASE is only constructed, to show its size error. No
quality is measured (the data are random).
"""

import resource
import time

from absl import app
from absl import flags
import numpy as np

from mic_tf import baselines

FLAGS = flags.FLAGS
flags.DEFINE_integer("items", 314_000, "Item vocabulary (Books: ~314k).")
flags.DEFINE_integer("users", 100_000, "Training users.")
flags.DEFINE_integer("eval_users", 5000, "Users retrieved for.")
flags.DEFINE_list("models", ["itemknn100", "userknn50", "itemknn"],
                  "itemknn<N> (neighbourhood N), itemknn (all), userknn<k>.")
flags.DEFINE_integer("seed", 0, "Seed of the synthetic data.")


def _model(name, num_items):
  if name == "itemknn":
    return baselines.ItemKNN(num_items)
  if name.startswith("itemknn"):
    return baselines.ItemKNN(num_items, neighbourhood=int(name[7:]))
  if name.startswith("userknn"):
    return baselines.UserKNN(num_items, neighbours=int(name[7:]))
  raise app.UsageError(f"Unknown model {name!r}.")


def main(argv):
  del argv
  rng = np.random.default_rng(FLAGS.seed)
  lengths = np.clip(rng.lognormal(2.6, 0.8, FLAGS.users).astype(int), 5, 500)
  popularity = 1.0 / np.arange(1, FLAGS.items) ** 0.9
  flat = rng.choice(np.arange(1, FLAGS.items), size=int(lengths.sum()),
                    p=popularity / popularity.sum())
  starts = np.concatenate([[0], np.cumsum(lengths)])
  sequences = [flat[starts[i]:starts[i + 1]] for i in range(FLAGS.users)]
  histories = sequences[:FLAGS.eval_users]
  print(f"{FLAGS.users} users, {FLAGS.items} items, {lengths.sum()} "
        f"interactions (mean length {lengths.mean():.1f})", flush=True)
  for name in FLAGS.models:
    model = _model(name, FLAGS.items)
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(sequences)
    fit = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    model.retrieve(histories, 50)
    ret = (time.perf_counter() - wall, time.process_time() - cpu)
    nnz = (f", similarity nonzeros {model.similarity_.nnz:,}"
           if hasattr(model, "similarity_") else "")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"{name}: fit {fit[0]:.0f} s wall / {fit[1]:.0f} s CPU; retrieve "
          f"{FLAGS.eval_users} users {ret[0]:.0f} s wall / {ret[1]:.0f} s "
          f"CPU{nnz}; peak RSS so far {peak:.2f} GiB", flush=True)
    del model
  try:
    baselines.EASE(FLAGS.items)
  except ValueError as e:
    print(f"EASE: {e}")


if __name__ == "__main__":
  app.run(main)
