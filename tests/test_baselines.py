"""Tests for mic_tf.baselines on tiny hand-made fixtures and numpy references."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

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
    sim = baselines.ItemKNN(5).fit(self.TRAIN).similarity_.toarray()
    want = np.zeros((5, 5))
    for (i, j), value in {(1, 2): S12, (1, 3): S13, (2, 3): S23,
                          (3, 4): S34}.items():
      want[i, j] = want[j, i] = value
    np.testing.assert_allclose(sim, want, rtol=1e-6)

  def test_shrink(self):
    sim = baselines.ItemKNN(5, shrink=1.0).fit(
        self.TRAIN).similarity_.toarray()
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
    np.testing.assert_allclose(model.similarity_.toarray(), want, rtol=1e-6)
    # [2, 4]: 1 -> S12 beats 3 -> S34 (S23 was pruned); unpruned it is 3, 1.
    assert model.retrieve(_seqs([2, 4]), k=2).tolist() == [[1, 3]]

  @pytest.mark.parametrize("chunk", [300, 1 << 24])
  @pytest.mark.parametrize("neighbourhood", [None, 3])
  def test_similarity_matches_dense_formula_on_random_data(
      self, chunk, neighbourhood, monkeypatch):
    # A small chunk builds the co-occurrence in many column blocks.
    monkeypatch.setattr(baselines, "_CHUNK_ELEMENTS", chunk)
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
    if neighbourhood:
      for j in range(40):  # column j keeps its 3 best h, ties to lower h
        order = np.argsort(-want[:, j], kind="stable")
        want[order[neighbourhood:], j] = 0.0
    model = baselines.ItemKNN(40, neighbourhood=neighbourhood, shrink=0.5)
    got = model.fit(train).similarity_.toarray()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    histories = [rng.integers(0, 40, size=rng.integers(0, 10))
                 for _ in range(9)]
    hist = np.zeros((9, 40))
    for u, seq in enumerate(histories):
      hist[u, seq[seq > 0]] = 1.0
    np.testing.assert_allclose(model.scores(histories), hist @ want,
                               rtol=1e-5, atol=1e-6)

  def test_column_blocks_cover_every_item_once(self, monkeypatch):
    monkeypatch.setattr(baselines, "_CHUNK_ELEMENTS", 10)
    model = baselines.ItemKNN(5)
    binary = baselines._binary_matrix(self.TRAIN, 5, "t")  # pylint: disable=protected-access
    blocks = model._column_blocks(binary)  # pylint: disable=protected-access
    assert blocks[0][0] == 0 and blocks[-1][1] == 5
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert len(blocks) > 1

  def test_errors(self):
    baselines.ItemKNN(314_000)  # sparse: no vocabulary limit
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


R2 = 1 / math.sqrt(2)
R3 = 1 / math.sqrt(3)
R6 = 1 / math.sqrt(6)


def _binary(seqs, num_items):
  out = np.zeros((len(seqs), num_items))
  for u, seq in enumerate(seqs):
    seq = np.asarray(seq, dtype=np.int64)
    out[u, seq[seq > 0]] = 1.0
  return out


class TestUserKNN:
  # Training users: u0 {1, 2}, u1 {1, 2, 3}, u2 {3, 4}, u3 {2}.
  TRAIN = _seqs([1, 2, 2], [1, 2, 3], [3, 4, 0], [2])

  def test_scores_by_hand(self):
    # [3]: sim u0 0, u1 1/sqrt(3), u2 1/sqrt(2), u3 0.
    # [2, 4]: u0 1/2, u1 1/sqrt(6), u2 1/2, u3 1/sqrt(2); the tie u0/u2 at
    # 1/2 goes to the lower index u0.
    one = baselines.UserKNN(5, neighbours=1).fit(self.TRAIN)
    two = baselines.UserKNN(5, neighbours=2).fit(self.TRAIN)
    np.testing.assert_allclose(
        one.scores(_seqs([3], [2, 4])),
        [[0, 0, 0, R2, R2], [0, 0, R2, 0, 0]], rtol=1e-6)
    np.testing.assert_allclose(
        two.scores(_seqs([3], [2, 4])),
        [[0, R3, R3, R3 + R2, R2], [0, .5, .5 + R2, 0, 0]], rtol=1e-6)

  def test_retrieve(self):
    one = baselines.UserKNN(5, neighbours=1).fit(self.TRAIN)
    two = baselines.UserKNN(5, neighbours=2).fit(self.TRAIN)
    # k=1: [3] -> 4, then zero scores by id.  k=2: 4 > 1 = 2 (tie, lower id).
    assert one.retrieve(_seqs([3]), k=2).tolist() == [[4, 1]]
    assert two.retrieve(_seqs([3]), k=3).tolist() == [[4, 1, 2]]
    # [2, 4] with k=2: 1 (from u0), then 3 (zero score, lowest id left).
    assert two.retrieve(_seqs([2, 4]), k=2).tolist() == [[1, 3]]
    # Empty history: every score 0, lowest ids first.
    assert two.retrieve(_seqs([]), k=2).tolist() == [[1, 2]]
    # Without exclusion 3 itself scores R3 + R2 (from u1 and u2).
    assert two.retrieve(_seqs([3]), k=2, exclude_history=False).tolist() == [
        [3, 4]]

  def test_matches_numpy_reference_on_random_data(self):
    rng = np.random.default_rng(7)
    train = [rng.integers(0, 50, size=rng.integers(1, 30)) for _ in range(60)]
    histories = [rng.integers(0, 50, size=rng.integers(1, 15))
                 for _ in range(40)]
    x, h = _binary(train, 50), _binary(histories, 50)
    sims = (h @ x.T) / np.outer(np.linalg.norm(h, axis=1),
                                np.linalg.norm(x, axis=1))
    got = baselines.UserKNN(50, neighbours=10).fit(train).scores(histories)
    checked = 0
    for u in range(40):
      order = np.argsort(-sims[u], kind="stable")
      if sims[u, order[9]] - sims[u, order[10]] < 1e-5:
        continue  # a tie at the boundary: either neighbour is right
      weights = np.zeros(60)
      weights[order[:10]] = sims[u, order[:10]]
      np.testing.assert_allclose(got[u], weights @ x, rtol=1e-5, atol=1e-6)
      checked += 1
    assert checked >= 20

  def test_errors(self):
    with pytest.raises(ValueError, match="not fitted"):
      baselines.UserKNN(5).retrieve(_seqs([1]), 1)
    with pytest.raises(ValueError, match="neighbours must be"):
      baselines.UserKNN(5, neighbours=0)
    with pytest.raises(ValueError, match="exceeds the 4 training users"):
      baselines.UserKNN(5, neighbours=5).fit(self.TRAIN)
    with pytest.raises(ValueError, match="outside"):
      baselines.UserKNN(5, neighbours=1).fit(self.TRAIN).retrieve(
          _seqs([7]), 1)


class TestEASE:

  def test_two_items_by_hand(self):
    # Items 1 and 2: c(1) = c(2) = 2, c(1, 2) = 1. With l2 = 1 the inverse
    # of [[3, 1], [1, 3]] is [[3, -1], [-1, 3]] / 8, so
    # B[1, 2] = -P[1, 2] / P[2, 2] = 1/3 = B[2, 1]; padding row/column 0.
    train = _seqs([1], [1, 2], [2, 0])
    model = baselines.EASE(3, l2=1.0).fit(train)
    np.testing.assert_allclose(
        model.weights_, [[0, 0, 0], [0, 0, 1 / 3], [0, 1 / 3, 0]], atol=1e-7)
    np.testing.assert_allclose(model.scores(_seqs([1], [1, 2])),
                               [[0, 0, 1 / 3], [0, 1 / 3, 1 / 3]], atol=1e-7)
    assert model.retrieve(_seqs([2]), k=1).tolist() == [[1]]
    assert model.retrieve(_seqs([2]), k=2, exclude_history=False).tolist() == [
        [1, 2]]

  def test_matches_per_column_ridge_regression(self):
    # EASE's closed form equals, column by column, ridge regression of item
    # j on every other item (the constraint diag(B) = 0).
    rng = np.random.default_rng(11)
    train = [rng.integers(1, 12, size=rng.integers(1, 8)) for _ in range(40)]
    x = _binary(train, 12)
    l2 = 2.5
    want = np.zeros((12, 12))
    for j in range(1, 12):
      others = [i for i in range(1, 12) if i != j]
      a = x[:, others]
      want[others, j] = np.linalg.solve(a.T @ a + l2 * np.eye(10),
                                        a.T @ x[:, j])
    got = baselines.EASE(12, l2=l2).fit(train).weights_
    np.testing.assert_allclose(got, want, atol=1e-5)

  def test_fit_grid_equals_fitting_each_value(self):
    # The grid computes X^T X once; every model is bit-identical to fit().
    rng = np.random.default_rng(5)
    train = [rng.integers(0, 12, size=rng.integers(1, 9)) for _ in range(30)]
    values = [0.5, 3.0, 40.0]
    models = list(baselines.EASE.fit_grid(12, train, l2=values))
    assert [m.l2 for m in models] == values
    for value, model in zip(values, models):
      np.testing.assert_array_equal(
          model.weights_, baselines.EASE(12, l2=value).fit(train).weights_)
    with pytest.raises(ValueError, match="l2"):
      list(baselines.EASE.fit_grid(12, train, l2=[1.0, -1.0]))

  def test_errors(self):
    with pytest.raises(ValueError, match="EASE inverts a dense.*ItemKNN or "
                       "UserKNN"):
      baselines.EASE(baselines.EASE_ITEM_LIMIT + 1)
    with pytest.raises(ValueError, match="max_items=10"):
      baselines.EASE(11, max_items=10)
    with pytest.raises(ValueError, match="l2"):
      baselines.EASE(5, l2=0.0)
    with pytest.raises(ValueError, match="not fitted"):
      baselines.EASE(5).retrieve(_seqs([1]), 1)


def test_sparse_top_k_matches_dense_top_k_rows():
  scores = np.array([[0.0, 2.0, 0.0, 2.0, 1.0, 0.0],
                     [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                     [0.0, 0.5, 0.0, 0.0, 0.0, 0.0]], np.float32)
  forbidden = sp.csr_matrix(np.array([[0, 0, 0, 1, 0, 0],
                                      [0, 1, 1, 0, 0, 0],
                                      [0, 0, 1, 1, 1, 1]]))
  ids, values = baselines._sparse_top_k(  # pylint: disable=protected-access
      sp.csr_matrix(scores), 4, forbidden=forbidden, fill_zeros=True,
      first_id=1)
  dense = scores.copy()
  dense[:, 0] = -np.inf
  dense[forbidden.toarray() > 0] = -np.inf
  np.testing.assert_array_equal(ids, baselines.top_k_rows(dense, 4))
  assert ids.tolist() == [[1, 4, 2, 5], [3, 4, 5, -1], [1, -1, -1, -1]]
  assert values[0].tolist() == [2.0, 1.0, 0.0, 0.0]
  # Without the fill, zero scores are never returned.
  ids, _ = baselines._sparse_top_k(  # pylint: disable=protected-access
      sp.csr_matrix(scores), 4, forbidden, first_id=1)
  assert ids.tolist() == [[1, 4, -1, -1], [-1] * 4, [1, -1, -1, -1]]


def test_sparse_top_k_ties_at_the_boundary_go_to_lower_ids():
  rng = np.random.default_rng(4)
  scores = rng.integers(0, 4, size=(40, 30)).astype(np.float32)
  ids, values = baselines._sparse_top_k(  # pylint: disable=protected-access
      sp.csr_matrix(scores), 7, fill_zeros=True)
  np.testing.assert_array_equal(ids, baselines.top_k_rows(scores, 7))
  np.testing.assert_array_equal(
      values, np.take_along_axis(scores, ids, axis=1))


@pytest.mark.parametrize("chunk", [40, 1 << 24])
def test_sparse_retrieval_matches_dense_top_k(chunk, monkeypatch):
  # Short sequences leave many zero scores: the zero-score fill by id, the
  # exclusion and the chunking must all match a dense top-k.
  monkeypatch.setattr(baselines, "_CHUNK_ELEMENTS", chunk)
  rng = np.random.default_rng(9)
  train = [rng.integers(0, 80, size=rng.integers(1, 6)) for _ in range(60)]
  histories = [rng.integers(0, 80, size=rng.integers(0, 8))
               for _ in range(30)]
  hist = _binary(histories, 80)
  for model in (baselines.ItemKNN(80), baselines.ItemKNN(80, neighbourhood=3),
                baselines.UserKNN(80, neighbours=4)):
    model.fit(train)
    for exclude in (True, False):
      dense = model.scores(histories)
      dense[:, 0] = -np.inf
      if exclude:
        dense[hist > 0] = -np.inf
      np.testing.assert_array_equal(
          model.retrieve(histories, 20, exclude_history=exclude),
          baselines.top_k_rows(dense, 20), err_msg=repr(model))


def test_chunked_retrieval_matches_single_chunk(monkeypatch):
  rng = np.random.default_rng(5)
  train = [rng.integers(0, 30, size=rng.integers(1, 20)) for _ in range(40)]
  histories = [rng.integers(0, 30, size=rng.integers(0, 10))
               for _ in range(25)]
  models = [baselines.MostPopular(30), baselines.ItemKNN(30, neighbourhood=5),
            baselines.UserKNN(30, neighbours=7), baselines.EASE(30, l2=3.0)]
  whole = [m.fit(train).retrieve(histories, 10) for m in models]
  monkeypatch.setattr(baselines, "_CHUNK_ELEMENTS", 70)
  for model, want in zip(models, whole):
    np.testing.assert_array_equal(model.fit(train).retrieve(histories, 10),
                                  want)


@pytest.mark.slow
def test_binary_on_a_fraction_of_the_training_users(tmp_path):
  import json
  import os
  import pathlib
  import subprocess
  import sys
  root = pathlib.Path(__file__).resolve().parents[1]
  out = tmp_path / "rows.json"
  done = subprocess.run(
      [sys.executable, str(root / "experiments" / "baselines.py"),
       "--dataset=ml-100k", "--baselines=mostpop,ease",
       "--train_user_fraction=0.5", f"--output={out}"],
      capture_output=True, text=True, timeout=600,
      env=dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="3"))
  assert done.returncode == 0, done.stderr[-2000:]
  record = json.loads(out.read_text())
  assert record["train_user_fraction"] == 0.5
  # RecBole ML-100k: 943 users, 80 % of them training users, half kept.
  assert record["num_train_users"] == round(0.5 * int(943 * 0.8))
  assert [r["name"] for r in record["rows"]][0].lower().startswith("most")
