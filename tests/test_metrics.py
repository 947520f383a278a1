"""Tests for mic_tf.metrics: hand-computed cases and a loop reference."""

import math

import numpy as np
import pytest

from mic_tf import metrics

L3 = 1.0 / math.log2(3)  # disc(1)
L5 = 1.0 / math.log2(5)  # disc(3)


def _one(retrieved, targets, cutoffs, **kwargs):
  """Per-user metrics of a single user, as plain floats."""
  out = metrics.per_user_metrics(
      np.array([retrieved]), [np.array(targets)], cutoffs, **kwargs)
  return {k: float(v[0]) for k, v in out.items()}


class TestHandComputed:

  def test_basic_case_all_metrics(self):
    # Hits: item 3 at retrieved rank 1 (gt position 1), item 9 at retrieved
    # rank 3 (gt position 2). Item 4 (gt position 0) is never retrieved.
    got = _one([5, 3, 7, 9], [4, 3, 9], (2, 4))
    assert got["recall@2"] == pytest.approx(1 / 3)
    assert got["hr@2"] == 1.0
    assert got["ndcg@2"] == pytest.approx(L3 / 1.0)
    assert got["ndcg_gt@2"] == pytest.approx(L3 / 1.0)
    assert got["recall@4"] == pytest.approx(2 / 3)
    assert got["hr@4"] == 1.0
    assert got["ndcg@4"] == pytest.approx((L3 + L5) / (1 + L3))
    assert got["ndcg_gt@4"] == pytest.approx((L3 + 0.5) / (1 + L3))

  def test_ideal_idcg_uses_min_of_targets_and_cutoff(self):
    got = _one([5, 3, 7, 9], [4, 3, 9], (2, 4), idcg="ideal")
    # Z(min(3, 2)) = 1 + 1/log2(3); Z(min(3, 4)) = 1 + 1/log2(3) + 1/2.
    assert got["ndcg@2"] == pytest.approx(L3 / (1 + L3))
    assert got["ndcg@4"] == pytest.approx((L3 + L5) / (1 + L3 + 0.5))
    # The other metrics do not depend on the IDCG choice.
    assert got["recall@4"] == pytest.approx(2 / 3)
    assert got["ndcg_gt@4"] == pytest.approx((L3 + 0.5) / (1 + L3))

  def test_perfect_ranking(self):
    got = _one([8, 2, 6], [2, 8], (3,), idcg="ideal")
    # DCG = 1 + 1/log2(3) = IDCG; ndcg_gt: both gt positions hit.
    assert got["ndcg@3"] == pytest.approx(1.0)
    assert got["ndcg_gt@3"] == pytest.approx(1.0)
    assert got["recall@3"] == 1.0

  def test_no_hit_gives_zero(self):
    got = _one([5, 6], [1, 2], (2,))
    assert got == {"recall@2": 0.0, "hr@2": 0.0, "ndcg@2": 0.0,
                   "ndcg_gt@2": 0.0}

  def test_hit_only_at_first_rank_is_one(self):
    got = _one([7, 1, 2], [9, 7], (3,))
    assert got["ndcg@3"] == pytest.approx(1.0)  # 1 / Z(1)
    assert got["ndcg_gt@3"] == pytest.approx(L3)  # gt position 1, H = 1
    assert got["recall@3"] == pytest.approx(0.5)

  def test_duplicate_targets_per_mode(self):
    # Item 1 was clicked twice (gt positions 1 and 2), item 6 never retrieved.
    retrieved, targets = [2, 1, 0, -1], [6, 1, 1]
    as_list = _one(retrieved, targets, (2,), target_mode="list")
    assert as_list["recall@2"] == pytest.approx(2 / 3)
    assert as_list["ndcg_gt@2"] == pytest.approx((L3 + 0.5) / (1 + L3))
    as_set = _one(retrieved, targets, (2,), target_mode="set")  # T = [6, 1]
    assert as_set["recall@2"] == pytest.approx(1 / 2)
    assert as_set["ndcg_gt@2"] == pytest.approx(L3 / 1.0)
    master = _one(retrieved, targets, (2,), target_mode="comirec_master")
    assert master["recall@2"] == pytest.approx(1 / 3)
    assert master["ndcg_gt@2"] == pytest.approx((L3 + 0.5) / (1 + L3))
    for got in (as_list, as_set, master):
      assert got["hr@2"] == 1.0
      assert got["ndcg@2"] == pytest.approx(L3)

  def test_duplicates_in_set_mode_use_first_occurrence_position(self):
    # T = [3, 5, 3] -> set mode keeps [3, 5]; item 5 is at gt position 1.
    got = _one([5], [3, 5, 3], (1,), target_mode="set")
    assert got["ndcg_gt@1"] == pytest.approx(L3)
    assert got["recall@1"] == pytest.approx(1 / 2)

  def test_cutoff_larger_than_width_and_padding(self):
    # K = 4 < N = 10; padding (0, -1) never hits.
    got = _one([2, 1, 0, -1], [6, 1, 1], (10,), idcg="ideal",
               target_mode="set")
    assert got["recall@10"] == pytest.approx(1 / 2)
    # IDCG = Z(min(|{6, 1}|, 10)) = 1 + 1/log2(3).
    assert got["ndcg@10"] == pytest.approx(L3 / (1 + L3))

  def test_cutoff_larger_than_width_equals_width(self):
    retrieved = np.array([[4, 1, 3], [2, 9, 8]])
    targets = [np.array([3, 4]), np.array([8])]
    wide = metrics.per_user_metrics(retrieved, targets, (50,))
    exact = metrics.per_user_metrics(retrieved, targets, (3,))
    for name in metrics.METRIC_NAMES:
      np.testing.assert_allclose(wide[f"{name}@50"], exact[f"{name}@3"])

  def test_aggregate_is_percent_mean(self):
    retrieved = np.array([[5, 3, 7, 9], [5, 6, 0, 0]])
    targets = [np.array([4, 3, 9]), np.array([1, 2])]
    got = metrics.retrieval_metrics(retrieved, targets, (2, 4))
    assert list(got) == ["recall@2", "hr@2", "ndcg@2", "ndcg_gt@2",
                         "recall@4", "hr@4", "ndcg@4", "ndcg_gt@4"]
    assert got["recall@4"] == pytest.approx(100 * (2 / 3 + 0) / 2)
    assert got["hr@2"] == pytest.approx(50.0)
    assert got["ndcg@2"] == pytest.approx(100 * L3 / 2)
    assert got["ndcg_gt@4"] == pytest.approx(100 * (L3 + 0.5) / (1 + L3) / 2)
    assert all(isinstance(v, float) for v in got.values())


def _reference(retrieved, targets, n, target_mode, idcg):
  """Literal per-user loops in the style of ComiRec's evaluation code."""
  out = {name: [] for name in metrics.METRIC_NAMES}
  for row, target in zip(retrieved, targets):
    target = list(target)
    if target_mode == "set":
      target = list(dict.fromkeys(target))
    top = [int(i) for i in row[:n] if i > 0]
    top_set, target_set = set(top), set(target)
    hits, dcg = 0, 0.0
    for rank, item in enumerate(row[:n]):
      if item > 0 and item in target_set:
        hits += 1
        dcg += 1.0 / math.log(rank + 2, 2)
    ideal_len = hits if idcg == "hits" else min(len(target_set), n)
    ideal = sum(1.0 / math.log(i + 2, 2) for i in range(ideal_len))
    hits_gt, dcg_gt = 0, 0.0
    for pos, item in enumerate(target):
      if item in top_set:
        hits_gt += 1
        dcg_gt += 1.0 / math.log(pos + 2, 2)
    ideal_gt = sum(1.0 / math.log(i + 2, 2) for i in range(hits_gt))
    recall_hits = hits if target_mode == "comirec_master" else hits_gt
    out["recall"].append(recall_hits / len(target))
    out["hr"].append(float(hits > 0))
    out["ndcg"].append(dcg / ideal if hits else 0.0)
    out["ndcg_gt"].append(dcg_gt / ideal_gt if hits_gt else 0.0)
  return out


@pytest.mark.parametrize("target_mode", metrics.TARGET_MODES)
@pytest.mark.parametrize("idcg", metrics.IDCG_MODES)
def test_matches_loop_reference_on_random_data(target_mode, idcg):
  rng = np.random.default_rng(7)
  num_users, width, num_items = 60, 12, 30
  retrieved = np.stack([rng.permutation(np.arange(1, num_items))[:width]
                        for _ in range(num_users)])
  retrieved[rng.random(retrieved.shape) < 0.1] = -1  # Scattered padding.
  targets = [rng.integers(1, num_items, size=rng.integers(1, 9))
             for _ in range(num_users)]
  got = metrics.per_user_metrics(retrieved, targets, (1, 5, 12, 20),
                                 target_mode=target_mode, idcg=idcg)
  for n in (1, 5, 12, 20):
    want = _reference(retrieved, targets, n, target_mode, idcg)
    for name in metrics.METRIC_NAMES:
      np.testing.assert_allclose(got[f"{name}@{n}"], want[name], atol=1e-12,
                                 err_msg=f"{name}@{n}")


class TestErrors:

  def test_empty_targets(self):
    with pytest.raises(ValueError, match="no targets"):
      metrics.retrieval_metrics(np.array([[1, 2], [3, 4]]),
                                [np.array([1]), np.array([], np.int64)])

  def test_repeated_retrieved_id(self):
    with pytest.raises(ValueError, match="row 1 repeats"):
      metrics.retrieval_metrics(np.array([[1, 2], [3, 3]]),
                                [np.array([1]), np.array([3])])

  def test_repeated_padding_is_fine(self):
    got = metrics.retrieval_metrics(np.array([[3, 0, 0, -1, -1]]),
                                    [np.array([3])], (5,))
    assert got["recall@5"] == 100.0

  def test_padding_in_targets(self):
    with pytest.raises(ValueError, match="padding"):
      metrics.retrieval_metrics(np.array([[1, 2]]), [np.array([0, 2])])

  def test_row_count_mismatch(self):
    with pytest.raises(ValueError, match="one target array per"):
      metrics.retrieval_metrics(np.array([[1, 2]]),
                                [np.array([1]), np.array([2])])

  def test_bad_shapes_and_options(self):
    with pytest.raises(ValueError, match="2-D"):
      metrics.retrieval_metrics(np.array([1, 2]), [np.array([1])])
    with pytest.raises(ValueError, match="integer"):
      metrics.retrieval_metrics(np.array([[1.0, 2.0]]), [np.array([1])])
    with pytest.raises(ValueError, match="cutoffs"):
      metrics.retrieval_metrics(np.array([[1, 2]]), [np.array([1])], (0,))
    with pytest.raises(ValueError, match="target_mode"):
      metrics.retrieval_metrics(np.array([[1, 2]]), [np.array([1])],
                                target_mode="bag")
    with pytest.raises(ValueError, match="idcg"):
      metrics.retrieval_metrics(np.array([[1, 2]]), [np.array([1])],
                                idcg="best")
