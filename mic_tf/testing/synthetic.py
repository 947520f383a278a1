"""A small synthetic ``ProcessedDataset`` with learnable structure.

Users belong to latent groups; each group prefers a block of items, so a
model that learns anything beats popularity. Used by fast unit tests that need
no download.
"""

import numpy as np

from mic_tf.data.dataset import ProcessedDataset


def synthetic_dataset(num_users: int = 300, num_items: int = 120,
                      num_groups: int = 4, length: int = 20,
                      seed: int = 0) -> ProcessedDataset:
  """Builds a synthetic dataset following the protocol's id conventions.

  Args:
    num_users: Number of users.
    num_items: Item vocabulary size including padding 0.
    num_groups: Latent user groups.
    length: Interactions per user.
    seed: Random seed.

  Returns:
    A ``ProcessedDataset`` split 80/10/10 over users.
  """
  rng = np.random.default_rng(seed)
  groups = rng.integers(0, num_groups, num_users)
  items = np.arange(1, num_items)
  block = np.array_split(items, num_groups)
  sequences = []
  for u in range(num_users):
    preferred = block[groups[u]]
    k = min(length, len(items))
    n_pref = min(int(0.8 * k), len(preferred))
    seq = np.concatenate([
        rng.choice(preferred, n_pref, replace=False),
        rng.choice(np.setdiff1d(items, preferred), k - n_pref, replace=False)])
    rng.shuffle(seq)
    sequences.append(seq.astype(np.int32))
  perm = rng.permutation(num_users)
  n_train, n_valid = int(0.8 * num_users), int(0.1 * num_users)
  user_features = {"gender": (groups % 2 + 1).astype(np.int32),
                   "age": rng.integers(1, 5, num_users).astype(np.int32)}
  genre = np.zeros((num_items, 2), np.int32)
  for g, b in enumerate(block):
    genre[b, 0] = g + 1
  genre[1:, 1] = rng.integers(0, num_groups + 1, num_items - 1)
  year = np.zeros(num_items, np.int32)
  year[1:] = rng.integers(1, 6, num_items - 1)
  return ProcessedDataset(
      name="synthetic", num_items=num_items, sequences=sequences,
      train_users=np.sort(perm[:n_train]).astype(np.int32),
      valid_users=np.sort(perm[n_train:n_train + n_valid]).astype(np.int32),
      test_users=np.sort(perm[n_train + n_valid:]).astype(np.int32),
      user_features=user_features, user_vocab_sizes={"gender": 3, "age": 5},
      item_features={"genre": genre, "year": year},
      item_vocab_sizes={"genre": num_groups + 1, "year": 6},
      raw_user_ids=np.arange(num_users).astype(object),
      raw_item_ids=np.array([None] + list(range(1, num_items)), dtype=object),
      user_vocabs={"gender": np.array([None, "F", "M"], dtype=object),
                   "age": np.array([None, 18, 25, 35, 45], dtype=object)})
