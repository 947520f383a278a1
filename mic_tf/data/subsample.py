"""Sparser training data: a seeded fraction of the training users.

Contrastive objectives are often said to help most where interactions are
few. ``keep_train_users`` tests that on any dataset without changing the
evaluation: the valid and test users, their histories and targets stay as
the protocol made them, while training (the examples, the items' user bags,
item counts, the U2U channel's neighbour pool and mining's user pool, which
all read ``train_users``) sees only the kept users, each with the whole of
their sequence. ``DataConfig.train_user_fraction`` (``--train_user_
fraction``) applies it in ``mic_tf.features.prepare_data``, so evaluation and
export of a run rebuild the same subset from its config.
"""

import dataclasses

import numpy as np

from mic_tf.data.dataset import ProcessedDataset


def check_fraction(fraction: float) -> float:
  """Returns ``fraction`` as a float if it is in (0, 1]."""
  fraction = float(fraction)
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"train_user_fraction must be in (0, 1], got "
                     f"{fraction}; e.g. 0.2 keeps a fifth of the training "
                     "users.")
  return fraction


def keep_train_users(dataset: ProcessedDataset, fraction: float,
                     seed: int = 0) -> ProcessedDataset:
  """The dataset with ``round(fraction * T)`` of its ``T`` training users.

  The kept users are a uniform draw keyed by ``seed`` alone (the same for
  every training seed of a grid), returned sorted. A smaller fraction keeps
  a subset of a larger one's users at the same seed. At least one user is
  kept.

  Args:
    dataset: A processed dataset holding all of the protocol's training
      users (``train_user_fraction == 1.0``).
    fraction: In ``(0, 1]``; 1.0 returns ``dataset`` itself.
    seed: Seed of the draw (``ExperimentConfig.data_seed``).

  Raises:
    ValueError: If ``fraction`` is outside ``(0, 1]`` or ``dataset`` was
      already subsampled to another fraction.
  """
  fraction = check_fraction(fraction)
  if dataset.train_user_fraction == fraction:
    return dataset
  if dataset.train_user_fraction != 1.0:
    raise ValueError(
        f"{dataset.name} already keeps {dataset.train_user_fraction} of its "
        f"training users; subsample the full dataset to {fraction} instead.")
  users = np.asarray(dataset.train_users)
  keep = max(1, int(round(fraction * len(users))))
  order = np.random.default_rng(seed).permutation(len(users))
  kept = np.sort(users[order[:keep]]).astype(users.dtype)
  return dataclasses.replace(dataset, train_users=kept,
                             train_user_fraction=fraction)
