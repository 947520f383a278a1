"""Tests for mic_tf.baselines on tiny hand-made fixtures."""

import math

import numpy as np
import pytest

from mic_tf import baselines


def _seqs(*rows):
  return [np.array(r, dtype=np.int32) for r in rows]


class TestTopKRows:

  def test_ties_go_to_lower_id_and_inf_is_padding(self):
    scores = np.array([[0.0, 1.0, 1.0, 2.0, 1.0],
                       [-np.inf, 0.5, -np.inf, -np.inf, -np.inf]])
    assert baselines.top_k_rows(scores, 3).tolist() == [[3, 1, 2], [1, -1, -1]]
    assert baselines.top_k_rows(scores, 5).tolist() == [
        [3, 1, 2, 4, 0], [1, -1, -1, -1, -1]]

  def test_matches_full_sort_on_random_ties(self):
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 30)).astype(np.float32)
    want = np.argsort(-scores, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(baselines.top_k_rows(scores, 7), want)


class TestMostPopular:
  # Interactions: item 4 x3, item 1 x2, item 2 x2, item 3 x1, item 5 x0.
  # By users, item 4 would only tie with 3 (one user each): counting
  # interactions ranks it first, as ComiRec's mostpop.py does.
  TRAIN = _seqs([2, 4, 4, 4], [2, 1, 0], [1, 3])

  def test_counts_and_ranking(self):
    model = baselines.MostPopular(6).fit(self.TRAIN)
    assert model.counts_.tolist() == [0, 2, 2, 1, 3, 0]
    assert model.ranking_.tolist() == [4, 1, 2, 3, 5]

  def test_retrieve_excludes_history_and_pads(self):
    model = baselines.MostPopular(6).fit(self.TRAIN)
    got = model.retrieve(_seqs([4], [], [1, 2, 3, 4, 0]), k=2)
    assert got.dtype == np.int64
    assert got.tolist() == [[1, 2], [4, 1], [5, -1]]

  def test_retrieve_without_exclusion(self):
    model = baselines.MostPopular(6).fit(self.TRAIN)
    got = model.retrieve(_seqs([4], [1, 2]), k=5, exclude_history=False)
    assert got.tolist() == [[4, 1, 2, 3, 5]] * 2

  def test_errors(self):
    with pytest.raises(ValueError, match="not fitted"):
      baselines.MostPopular(6).retrieve(_seqs([1]), 1)
    model = baselines.MostPopular(6).fit(self.TRAIN)
    with pytest.raises(ValueError, match="exceeds the 5 real items"):
      model.retrieve(_seqs([1]), 6)
    with pytest.raises(ValueError, match="outside"):
      model.retrieve(_seqs([6]), 1)
    with pytest.raises(ValueError, match="outside"):
      baselines.MostPopular(3).fit(_seqs([1, 3]))
    with pytest.raises(ValueError, match="num_items"):
      baselines.MostPopular(1)


S12 = 2 / math.sqrt(6)  # c(1,2)=2, c(1)=2, c(2)=3
S13 = 1 / 2  # c(1,3)=1, c(1)=2, c(3)=2
S23 = 1 / math.sqrt(6)  # c(2,3)=1, c(2)=3, c(3)=2
S34 = 1 / math.sqrt(2)  # c(3,4)=1, c(3)=2, c(4)=1


class TestItemKNN:
  # Binary user-item sets: {1, 2}, {1, 2, 3}, {3, 4}, {2}; the repeated 2 and
  # the padding 0 must not change anything.
  TRAIN = _seqs([1, 2, 2], [1, 2, 3], [3, 4, 0], [2])

  def test_cosine_similarity(self):
    sim = baselines.ItemKNN(5).fit(self.TRAIN).similarity_
    want = np.zeros((5, 5))
    for (i, j), value in {(1, 2): S12, (1, 3): S13, (2, 3): S23,
                          (3, 4): S34}.items():
      want[i, j] = want[j, i] = value
    np.testing.assert_allclose(sim, want, rtol=1e-6)

  def test_shrink(self):
    sim = baselines.ItemKNN(5, shrink=1.0).fit(self.TRAIN).similarity_
    assert sim[1, 2] == pytest.approx(2 / (math.sqrt(6) + 1))
    assert sim[3, 4] == pytest.approx(1 / (math.sqrt(2) + 1))
    assert sim[4, 4] == 0.0

  def test_retrieve(self):
    model = baselines.ItemKNN(5).fit(self.TRAIN)
    got = model.retrieve(_seqs([1], [3], [1, 3], [1, 1], [2, 4]), k=2)
    # [1]: 2 (S12) > 3 (S13).  [3]: 4 (S34) > 1 (S13) > 2 (S23).
    # [1, 3]: 2 (S12 + S23 = 1.22) > 4 (S34).  [2, 4]: 3 (S23 + S34) > 1.
    assert got.tolist() == [[2, 3], [4, 1], [2, 4], [2, 3], [3, 1]]

  def test_retrieve_zero_scores_fall_back_to_lower_ids(self):
    model = baselines.ItemKNN(5).fit(self.TRAIN)
    # [1] scores: 2 -> S12, 3 -> S13, 4 -> 0; empty history: all 0.
    got = model.retrieve(_seqs([1], []), k=3)
    assert got.tolist() == [[2, 3, 4], [1, 2, 3]]
    got = model.retrieve(_seqs([1, 2, 3, 4]), k=2)
    assert got.tolist() == [[-1, -1]]

  def test_retrieve_without_exclusion(self):
    model = baselines.ItemKNN(5).fit(self.TRAIN)
    # [1, 3]: 2 -> 1.22, 1 -> S13, 3 -> S13 (self excluded), 4 -> S34.
    got = model.retrieve(_seqs([1, 3]), k=4, exclude_history=False)
    assert got.tolist() == [[2, 4, 1, 3]]

  def test_neighbourhood_keeps_top_neighbours_per_candidate(self):
    model = baselines.ItemKNN(5, neighbourhood=1).fit(self.TRAIN)
    want = np.zeros((5, 5))
    # Column j keeps its best h: 1 <- 2, 2 <- 1, 3 <- 4, 4 <- 3.
    want[2, 1] = want[1, 2] = S12
    want[4, 3] = want[3, 4] = S34
    np.testing.assert_allclose(model.similarity_, want, rtol=1e-6)
    # [2, 4]: 1 -> S12 beats 3 -> S34 (S23 was pruned); unpruned it is 3, 1.
    assert model.retrieve(_seqs([2, 4]), k=2).tolist() == [[1, 3]]

  @pytest.mark.parametrize("method", ["dense", "pairs"])
  @pytest.mark.parametrize("chunk", [500, 1 << 24])
  def test_cooccurrence_methods_match_dense_product(self, method, chunk,
                                                    monkeypatch):
    monkeypatch.setattr(baselines, "_CHUNK_ELEMENTS", chunk)
    rng = np.random.default_rng(3)
    train = [rng.integers(0, 40, size=rng.integers(0, 60)) for _ in range(80)]
    binary = np.zeros((len(train), 40))
    for u, seq in enumerate(train):
      binary[u, seq[seq > 0]] = 1.0
    model = baselines.ItemKNN(40)
    got = model._cooccurrence(train, method=method)  # pylint: disable=protected-access
    np.testing.assert_array_equal(got, binary.T @ binary)

  def test_similarity_matches_dense_formula_on_random_data(self):
    rng = np.random.default_rng(3)
    train = [rng.integers(0, 40, size=rng.integers(0, 60)) for _ in range(80)]
    binary = np.zeros((len(train), 40))
    for u, seq in enumerate(train):
      binary[u, seq[seq > 0]] = 1.0
    counts = binary.T @ binary
    norms = np.sqrt(np.diag(counts))
    denominator = np.outer(norms, norms) + 0.5
    want = counts / denominator
    np.fill_diagonal(want, 0.0)
    want[0] = want[:, 0] = 0.0
    got = baselines.ItemKNN(40, shrink=0.5).fit(train).similarity_
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)

  def test_errors(self):
    with pytest.raises(ValueError, match="limit of 20000 items.*scipy"):
      baselines.ItemKNN(baselines.DENSE_ITEM_LIMIT + 1)
    with pytest.raises(ValueError, match="not fitted"):
      baselines.ItemKNN(5).retrieve(_seqs([1]), 1)
    with pytest.raises(ValueError, match="neighbourhood"):
      baselines.ItemKNN(5, neighbourhood=0)
    with pytest.raises(ValueError, match="shrink"):
      baselines.ItemKNN(5, shrink=-1.0)
    with pytest.raises(ValueError, match="outside"):
      baselines.ItemKNN(5).fit(_seqs([5]))
    with pytest.raises(ValueError, match="exceeds"):
      baselines.ItemKNN(5).fit(self.TRAIN).retrieve(_seqs([1]), 5)


def test_chunked_retrieval_matches_single_chunk(monkeypatch):
  rng = np.random.default_rng(5)
  train = [rng.integers(0, 30, size=rng.integers(1, 20)) for _ in range(40)]
  histories = [rng.integers(0, 30, size=rng.integers(0, 10))
               for _ in range(25)]
  models = [baselines.MostPopular(30), baselines.ItemKNN(30, neighbourhood=5)]
  whole = [m.fit(train).retrieve(histories, 10) for m in models]
  monkeypatch.setattr(baselines, "_CHUNK_ELEMENTS", 70)
  for model, want in zip(models, whole):
    np.testing.assert_array_equal(model.fit(train).retrieve(histories, 10),
                                  want)
