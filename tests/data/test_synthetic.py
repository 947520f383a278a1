"""Tests for the synthetic Books / Taobao generator, through the real loaders."""

import hashlib

import mic_tf  # noqa: F401
import numpy as np
import pytest

from mic_tf.data import protocol
from mic_tf.data import registry
from mic_tf.data import synthetic as S


def _digest(path):
  return hashlib.sha256(path.read_bytes()).hexdigest()


def test_books_files_load_with_the_real_loader_at_the_exact_shape(tmp_path):
  raw = registry.load_dataset("synthetic-books", data_dir=tmp_path,
                              scale=0.001, seed=3)
  ds = protocol.apply_comirec_protocol(raw)
  shape = S.BOOKS.scaled(0.001)
  # Every user and item has >= 5 interactions: the 5-core keeps them all.
  assert ds.num_users == shape.users == 459
  assert ds.num_items - 1 == shape.items == 314
  assert ds.num_interactions == shape.interactions == 8898
  assert "category" in ds.item_features
  # 2% of the items have no categories: some are 0 (missing), most are not.
  missing = np.mean(ds.item_features["category"][1:] == 0)
  assert 0 < missing < 0.1
  folder = next((tmp_path / "synthetic-books").iterdir())
  assert (folder / "reviews_Books_5.json").exists()
  assert (folder / "meta_Books.json").read_text().startswith("{'asin': ")


def test_generation_is_seeded(tmp_path):
  a = S.write_amazon_books(tmp_path / "a", scale=0.0005, seed=1)
  b = S.write_amazon_books(tmp_path / "b", scale=0.0005, seed=1)
  c = S.write_amazon_books(tmp_path / "c", scale=0.0005, seed=2)
  assert _digest(a["reviews"]) == _digest(b["reviews"])
  assert _digest(a["metadata"]) == _digest(b["metadata"])
  assert _digest(a["reviews"]) != _digest(c["reviews"])


def test_degrees_are_power_law_with_exact_totals():
  log = S.generate_interactions(S.BOOKS, scale=0.01, seed=0)
  stats = S.describe_log(log)
  assert stats["interactions"] == S.BOOKS.scaled(0.01).interactions
  assert stats["min_user_degree"] == stats["min_item_degree"] == 5
  item_deg = np.bincount(log.items)
  # Heavy tail: the most popular item has far more than the median one.
  assert item_deg.max() > 20 * np.median(item_deg)
  assert stats["repeated_pairs"] < 0.1


def test_latent_topics_make_history_predictive():
  """Recommending the popular items of the topics of a user's last five
  history items beats global popularity threefold: the structure is
  learnable."""
  log = S.generate_interactions(S.BOOKS, scale=0.05, seed=0)
  order = np.lexsort((log.days, log.users))
  users, items = log.users[order], log.items[order]
  log_pop = np.log(np.bincount(items, minlength=log.shape.items))
  global_top = np.argsort(-log_pop)[:50]
  starts = np.searchsorted(users, np.arange(log.shape.users))
  ends = np.append(starts[1:], len(users))
  hits_pop = hits_topic = 0
  for u in range(0, log.shape.users, 7):
    seq = items[starts[u]:ends[u]]
    cut = int(0.8 * len(seq))
    history, targets = seq[:cut], seq[cut:]
    counts = np.bincount(log.item_topic[history[-5:]],
                         minlength=log.item_topic.max() + 1)
    weight = counts[log.item_topic]
    score = np.where(weight > 0, np.log(np.maximum(weight, 1)) + log_pop,
                     -np.inf)
    top = np.argpartition(-score, 50)[:50]
    hits_pop += np.isin(targets, global_top).sum()
    hits_topic += np.isin(targets, top).sum()
  assert hits_topic > 2.5 * hits_pop


def test_taobao_file_keeps_pv_rows_and_the_shape(tmp_path):
  raw = registry.load_dataset("synthetic-taobao", data_dir=tmp_path,
                              scale=0.0002, seed=0)
  shape = S.TAOBAO.scaled(0.0002)
  assert len(raw.interactions) == shape.interactions
  ds = protocol.apply_comirec_protocol(raw)
  assert ds.num_users == shape.users
  assert ds.num_items - 1 == shape.items
  assert ds.item_vocab_sizes["category"] > 2
  text = next((tmp_path / "synthetic-taobao").iterdir()).joinpath(
      "UserBehavior.csv").read_text()
  behaviors = {line.split(",")[3] for line in text.splitlines()[:20000]}
  assert {"pv", "cart", "fav", "buy"} <= behaviors


def test_bad_scale_is_refused():
  with pytest.raises(ValueError, match="scale must be positive"):
    S.BOOKS.scaled(0)
