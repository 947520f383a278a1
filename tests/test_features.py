"""Feature tables, the 80/20 history/target cut and the item user bags."""

import numpy as np
import pytest

import mic_tf  # noqa: F401
from mic_tf import errors
from mic_tf import features as F
from mic_tf.testing.synthetic import synthetic_dataset


@pytest.fixture(scope="module")
def ds():
  return synthetic_dataset(num_users=60, num_items=40, length=12, seed=3)


def test_pad_history_left_pads_and_keeps_order():
  seq = np.array([5, 6, 7, 8])
  np.testing.assert_array_equal(F.pad_history(seq, 3, 5), [0, 0, 5, 6, 7])
  np.testing.assert_array_equal(F.pad_history(seq, 4, 2), [7, 8])
  np.testing.assert_array_equal(F.pad_history(seq, 0, 3), [0, 0, 0])


def test_spec_fields_and_mask_ids(ds):
  t = F.build_feature_tables(ds, maxlen=7, max_item_users=5)
  spec = t.spec
  assert spec.user_field_names == ["gender", "age", "history"]
  assert spec.item_field_names == ["item_id", "genre", "year", "item_users"]
  hist = spec.user_field("history")
  assert hist.kind == F.SEQUENCE and hist.length == 7
  assert hist.mask_id == ds.num_items  # never a real item id
  assert spec.item_field("item_users").vocab_size == ds.num_users + 1
  assert F.FeatureSpec.from_json(spec.to_json()) == spec
  with pytest.raises(KeyError, match="No user field named"):
    spec.user_field("nope")


def test_item_user_bags_hold_only_training_users(ds):
  t = F.build_feature_tables(ds, maxlen=5, max_item_users=100)
  bags = t.item_table[F.ITEM_USERS]
  train = set(ds.train_users.tolist())
  for item in range(1, ds.num_items):
    users = {int(u) - 1 for u in bags[item] if u}
    expected = {int(u) for u in ds.train_users
                if item in set(ds.sequences[u].tolist())}
    assert users == expected
    assert users <= train
  assert not bags[0].any()


def test_item_user_bags_are_capped_and_seeded(ds):
  a = F.build_feature_tables(ds, maxlen=5, max_item_users=3, seed=1)
  b = F.build_feature_tables(ds, maxlen=5, max_item_users=3, seed=1)
  np.testing.assert_array_equal(a.item_table[F.ITEM_USERS],
                                b.item_table[F.ITEM_USERS])
  assert a.item_table[F.ITEM_USERS].shape == (ds.num_items, 3)


def test_eval_users_cut_80_20(ds):
  t = F.build_feature_tables(ds, maxlen=4)
  ev = F.eval_users(t, ds, ds.test_users)
  for u, hist, tgt, padded in zip(ev.users, ev.histories, ev.targets,
                                  ev.features["history"]):
    seq = ds.sequences[u]
    cut = int(0.8 * len(seq))
    np.testing.assert_array_equal(hist, seq[:cut])
    np.testing.assert_array_equal(tgt, seq[cut:])
    np.testing.assert_array_equal(padded, seq[cut - 4:cut])


def test_user_id_unknown_for_unseen_users(ds):
  t = F.build_feature_tables(ds, maxlen=4, use_user_id=True)
  users = np.array([ds.train_users[0], ds.test_users[0]])
  feats = t.user_features(users, np.zeros((2, 4), np.int32))
  assert feats["user_id"][0] == ds.train_users[0] + 1
  assert feats["user_id"][1] == 0


def test_training_positions(ds):
  pos = F.training_positions(ds, min_history=2)
  n = sum(len(ds.sequences[u]) - 2 for u in ds.train_users)
  assert len(pos) == n
  assert set(pos[:, 0].tolist()) == set(ds.train_users.tolist())
  assert pos[:, 1].min() == 2


def test_bad_maxlen():
  with pytest.raises(ValueError, match="maxlen"):
    F.build_feature_tables(synthetic_dataset(num_users=20), maxlen=0)


def test_item_counts_count_training_interactions(ds):
  t = F.build_feature_tables(ds, maxlen=5)
  want = np.zeros(ds.num_items, np.int64)
  for u in ds.train_users:
    for item in ds.sequences[u]:
      want[item] += 1
  want[0] = 0
  np.testing.assert_array_equal(t.item_counts, want)


def test_history_memory_is_checked_before_allocating():
  ds = synthetic_dataset(num_users=20, length=9)
  evaluated = len(ds.valid_users) + len(ds.test_users)
  needed = F.history_bytes(ds, maxlen=100, batch_size=8, embedding_dim=4)
  assert needed == 4 * 100 * (8 * 4 + evaluated)
  F.check_history_memory(ds, 100, 8, 4, available=needed)
  with pytest.raises(errors.UserError,
                     match=r"more than the 0\.0 GiB of memory available\. "
                     r"The longest sequence has 9 items, so --maxlen=9 "
                     r"already keeps every interaction"):
    F.check_history_memory(ds, 100, 8, 4, available=needed - 1)
