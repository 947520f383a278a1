"""Tests for mic_tf.data.protocol (the ComiRec preprocessing protocol)."""

import collections
import random

import mic_tf  # noqa: F401
import numpy as np
import pandas as pd
import pytest

from mic_tf.data import protocol
from mic_tf.data.dataset import RawDataset


def _raw(rows, name="toy", **kwargs):
  frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
  return RawDataset(name=name, interactions=frame, **kwargs)


def _reference(rows, min_count=5, seed=1230):
  """A plain-Python rendition of the documented ComiRec rules."""
  counts = collections.Counter(item for _, item, _ in rows)
  first_seen = {}
  for _, item, _ in rows:
    first_seen.setdefault(item, len(first_seen))
  ranked = sorted(counts, key=lambda i: (-counts[i], first_seen[i]))
  item_ids = {i: n + 1 for n, i in enumerate(ranked) if counts[i] >= min_count}
  per_user = collections.OrderedDict()
  for user, item, time in rows:
    per_user.setdefault(user, []).append((item, time))
  users = [u for u, events in per_user.items()
           if sum(item in item_ids for item, _ in events) >= min_count]
  random.Random(seed).shuffle(users)
  sequences = []
  for user in users:
    events = sorted(per_user[user], key=lambda e: e[1])
    sequences.append([item_ids[i] for i, _ in events if i in item_ids])
  return users, item_ids, sequences


def _random_rows(seed, num_users=60, num_items=40, num_events=1500):
  rng = np.random.default_rng(seed)
  users = rng.integers(0, num_users, num_events)
  # Skewed item popularity so that some items fall below the threshold.
  items = np.minimum(rng.geometric(0.08, num_events), num_items)
  times = rng.integers(0, 50, num_events)  # many tied timestamps
  return [(f"u{u}", int(i), int(t)) for u, i, t in zip(users, items, times)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_plain_python_reference(seed):
  rows = _random_rows(seed)
  ds = protocol.apply_comirec_protocol(_raw(rows))
  users, item_ids, sequences = _reference(rows)
  assert list(ds.raw_user_ids) == users
  assert ds.num_items == len(item_ids) + 1
  assert {raw: i for i, raw in enumerate(ds.raw_item_ids) if i} == item_ids
  assert [s.tolist() for s in ds.sequences] == sequences
  assert all(s.dtype == np.int32 for s in ds.sequences)


def test_tied_timestamps_keep_file_order():
  rows = [("a", "x", 5), ("a", "y", 1), ("a", "z", 5), ("a", "w", 1),
          ("a", "x", 1), ("a", "v", 3)]
  ds = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                       min_user_count=1)
  raw_ids = ds.raw_item_ids[ds.sequences[0]].tolist()
  assert raw_ids == ["y", "w", "x", "v", "x", "z"]


def test_popularity_ids_and_tie_break_by_first_appearance():
  rows = ([("u", "late", t) for t in range(3)] +
          [("u", "early", t) for t in range(3)] +
          [("u", "top", t) for t in range(4)] + [("u", "rare", 0)])
  ds = protocol.apply_comirec_protocol(_raw(rows), min_item_count=2,
                                       min_user_count=1)
  assert ds.raw_item_ids.tolist() == [None, "top", "late", "early"]
  assert 0 not in ds.sequences[0]


def test_item_popularity_modes():
  rows = ([("heavy", "a", 0), ("heavy", "a", 1)] +
          [("light", "b", t) for t in range(4)] +
          [("other", "a", 0), ("other", "a", 1), ("other", "b", 9),
           ("other", "c", 9), ("other", "c", 10), ("other", "lonely", 3),
           ("other", "lonely", 4)] +
          [("heavy", "c", t) for t in range(3)] +
          [("lost", "d", 0), ("lost", "d", 1)])
  ds = protocol.apply_comirec_protocol(_raw(rows), min_item_count=2,
                                       min_user_count=2)
  # Counts b 5, c 5, a 4, lonely 2, d 2; ties by first appearance.
  assert ds.raw_item_ids.tolist() == [None, "b", "c", "a", "lonely", "d"]

  # "lost" has < 5 events and is dropped, taking 3 of a's 7 events.
  rows = ([("heavy", "a", 0), ("heavy", "a", 1)] +
          [("heavy", "c", t) for t in range(3)] +
          [("other", "a", 0), ("other", "a", 1), ("other", "b", 9),
           ("other", "c", 9), ("other", "c", 10), ("other", "lonely", 3),
           ("other", "lonely", 4)] +
          [("lost", "a", t) for t in range(3)] + [("lost", "d", 0)])
  all_events = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                               min_user_count=5)
  kept = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                         min_user_count=5,
                                         item_popularity="kept_interactions")
  assert sorted(all_events.raw_user_ids) == ["heavy", "other"]
  # ComiRec: counts over all events (a 7, c 5, lonely 2, b 1, d 1), and "d"
  # keeps an id although no kept user has it.
  assert all_events.raw_item_ids.tolist() == [None, "a", "c", "lonely", "b",
                                              "d"]
  # Re-counted over kept interactions (c 5, a 4, lonely 2, b 1); "d" dropped.
  assert kept.raw_item_ids.tolist() == [None, "c", "a", "lonely", "b"]
  assert kept.num_interactions == all_events.num_interactions == 12


def test_no_dedup_by_default_and_optional_dedup():
  rows = [("u", "x", 1), ("u", "x", 2), ("u", "y", 3)]
  ds = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                       min_user_count=1)
  assert ds.num_interactions == 3
  ds = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                       min_user_count=1, drop_duplicates=True)
  assert ds.raw_item_ids[ds.sequences[0]].tolist() == ["x", "y"]


def test_split_is_seeded_and_follows_comirec_cuts():
  rows = [(f"u{u}", "i", t) for u in range(23) for t in range(1)]
  ds = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                       min_user_count=1)
  assert (len(ds.train_users), len(ds.valid_users), len(ds.test_users)) == (
      int(23 * 0.8), int(23 * 0.9) - int(23 * 0.8), 23 - int(23 * 0.9))
  np.testing.assert_array_equal(
      np.concatenate([ds.train_users, ds.valid_users, ds.test_users]),
      np.arange(23))
  expected = [f"u{u}" for u in range(23)]
  random.Random(1230).shuffle(expected)
  assert ds.raw_user_ids.tolist() == expected
  other = protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                          min_user_count=1, split_seed=7)
  assert other.raw_user_ids.tolist() != expected
  for n in (10, 100, 943, 6040):
    cuts = protocol._split_cuts(n, (0.8, 0.1, 0.1))  # pylint: disable=W0212
    assert cuts == (int(n * 0.8), int(n * 0.9))


def test_features_encoding():
  rows = [("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "c", 4),
          ("u3", "c", 5)]
  users = pd.DataFrame({"sex": ["F", "M", "F", "M"],
                        "age": [18.0, np.nan, 25.0, 56.0]},
                       index=pd.Index(["u1", "u2", "ghost", "u4"]))
  items = pd.DataFrame(
      {"tags": [["t2", "t1", "t2"], None, ["t3", "t1", "t2", "t4"]],
       "brand": ["z", "y", np.nan]},
      index=pd.Index(["a", "b", "zzz"]))
  raw = _raw(rows, user_features=users, item_features=items,
             item_bag_columns=["tags"])
  ds = protocol.apply_comirec_protocol(raw, min_item_count=1,
                                       min_user_count=1, max_item_bag=2)
  # Item ids: a(2), c(2), b(1) -> 1, 2, 3. "c" is not in the item table.
  assert ds.raw_item_ids.tolist() == [None, "a", "c", "b"]
  assert ds.item_vocab_sizes == {"tags": 3, "brand": 3}
  np.testing.assert_array_equal(ds.item_features["tags"],
                                [[0, 0], [2, 1], [0, 0], [0, 0]])
  np.testing.assert_array_equal(ds.item_features["brand"], [0, 2, 0, 1])
  assert ds.user_vocab_sizes == {"sex": 3, "age": 2}
  by_raw = {raw_id: u for u, raw_id in enumerate(ds.raw_user_ids)}
  sex, age = ds.user_features["sex"], ds.user_features["age"]
  assert (sex[by_raw["u1"]], sex[by_raw["u2"]], sex[by_raw["u3"]]) == (1, 2, 0)
  assert (age[by_raw["u1"]], age[by_raw["u2"]], age[by_raw["u3"]]) == (1, 0, 0)
  assert all(v.dtype == np.int32 for v in ds.user_features.values())
  assert all(v.dtype == np.int32 for v in ds.item_features.values())


def test_real_ml100k(ml100k):
  ds = protocol.apply_comirec_protocol(ml100k)
  n = ds.num_users
  assert n == 943 and ds.num_items == 1350
  assert (len(ds.train_users), len(ds.valid_users), len(ds.test_users)) == (
      754, 94, 95)
  assert abs(len(ds.train_users) / n - 0.8) < 1 / n
  groups = [set(ds.train_users), set(ds.valid_users), set(ds.test_users)]
  assert not (groups[0] & groups[1] or groups[0] & groups[2] or
              groups[1] & groups[2])
  assert set().union(*groups) == set(range(n))
  assert min(len(s) for s in ds.sequences) >= 5
  raw_counts = ml100k.interactions["item"].value_counts()
  counts = raw_counts.reindex(ds.raw_item_ids[1:]).to_numpy()
  assert counts.min() >= 5
  assert (np.diff(counts) <= 0).all()  # ids by descending popularity
  assert ds.num_interactions == int(
      ml100k.interactions["item"].isin(ds.raw_item_ids[1:]).sum())
  # Sequences are time-ordered.
  times = ml100k.interactions.groupby(["user", "item"])["timestamp"].first()
  for u in range(0, n, 97):
    raw_items = ds.raw_item_ids[ds.sequences[u]]
    seq_times = times.loc[[(ds.raw_user_ids[u], i) for i in raw_items]]
    assert (np.diff(seq_times.to_numpy()) >= 0).all()
  assert set(ds.item_features) == {"genres", "year"}
  assert ds.item_features["genres"].shape[0] == ds.num_items
  assert not ds.item_features["genres"][0].any()
  assert ds.user_vocab_sizes["age"] == 8
  assert (ds.user_features["gender"] > 0).all()
  text = protocol.describe(ds)
  assert "943 users" in text and "1,349 items" in text and "754/94/95" in text
  again = protocol.apply_comirec_protocol(ml100k)
  assert all(np.array_equal(a, b)
             for a, b in zip(ds.sequences, again.sequences))


def test_threshold_errors_name_the_threshold():
  rows = [("u1", "a", 1), ("u2", "a", 2), ("u1", "b", 3)]
  with pytest.raises(ValueError, match="min_item_count=3"):
    protocol.apply_comirec_protocol(_raw(rows), min_item_count=3)
  with pytest.raises(ValueError, match="min_user_count=3"):
    protocol.apply_comirec_protocol(_raw(rows), min_item_count=1,
                                    min_user_count=3)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": (0.8, 0.1)}, "three non-negative fractions"),
    ({"split": (0.8, 0.3, -0.1)}, "three non-negative fractions"),
    ({"min_item_count": 0}, ">= 1"),
    ({"item_popularity": "recent"}, "item_popularity"),
    ({"max_item_bag": 0}, "max_item_bag"),
])
def test_argument_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    protocol.apply_comirec_protocol(_raw([("u", "i", 1)]), **kwargs)


def test_input_errors():
  frame = pd.DataFrame({"user": ["u"], "item": ["i"]})
  with pytest.raises(ValueError, match=r"lack columns \['timestamp'\]"):
    protocol.apply_comirec_protocol(RawDataset("x", frame))
  with pytest.raises(ValueError, match="empty"):
    protocol.apply_comirec_protocol(_raw([]))
  with pytest.raises(ValueError, match="numeric"):
    protocol.apply_comirec_protocol(_raw([("u", "i", "yesterday")]))
  with pytest.raises(ValueError, match="no timestamp"):
    protocol.apply_comirec_protocol(_raw([("u", "i", np.nan)]))
  with pytest.raises(ValueError, match="missing item"):
    protocol.apply_comirec_protocol(_raw([("u", None, 1.0)]))


def test_feature_table_errors():
  rows = [("u", "i", 1)]
  dupes = pd.DataFrame({"f": [1, 2]}, index=pd.Index(["u", "u"]))
  with pytest.raises(ValueError, match="duplicate ids"):
    protocol.apply_comirec_protocol(_raw(rows, user_features=dupes),
                                    min_item_count=1, min_user_count=1)
  int_ids = pd.DataFrame({"f": [1]}, index=pd.Index([7]))
  with pytest.raises(ValueError, match="id types agree"):
    protocol.apply_comirec_protocol(_raw(rows, item_features=int_ids),
                                    min_item_count=1, min_user_count=1)
  text_bag = pd.DataFrame({"tags": ["a|b"]}, index=pd.Index(["i"]))
  with pytest.raises(ValueError, match="instead of a list"):
    protocol.apply_comirec_protocol(
        _raw(rows, item_features=text_bag, item_bag_columns=["tags"]),
        min_item_count=1, min_user_count=1)
  with pytest.raises(ValueError, match="not item_features columns"):
    protocol.apply_comirec_protocol(
        _raw(rows, item_features=text_bag, item_bag_columns=["genres"]),
        min_item_count=1, min_user_count=1)
