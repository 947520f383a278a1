"""Tests for mic_tf.evaluation against plain numpy references."""

import mic_tf  # noqa: F401  (sets the Keras-2 environment first)

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from mic_tf import evaluation
from mic_tf import metrics


def _masked_scores(queries, items, exclude, valid):
  """Numpy scores ``(U, [K,] num_items)`` with forbidden items at -inf."""
  scores = queries @ items.T
  forbidden = np.zeros((queries.shape[0], items.shape[0]), bool)
  forbidden[:, 0] = True
  if valid is not None:
    forbidden[:, ~valid] = True
  if exclude is not None:
    for u, ids in enumerate(exclude):
      forbidden[u, ids] = True
  if scores.ndim == 3:
    forbidden = forbidden[:, None, :]
  return np.where(forbidden, -np.inf, scores)


def _reference_top_k(queries, items, k, exclude=None, valid=None):
  scores = _masked_scores(queries, items, exclude, valid)
  ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return ids, np.take_along_axis(scores, ids, axis=1)


def _reference_multi_interest(queries, items, k, exclude=None):
  """ComiRec's merge, literally: per-interest top-k, sort, dedupe, cut."""
  scores = _masked_scores(queries, items, exclude, None)
  out_ids, out_scores = [], []
  for user_scores in scores:
    candidates = []
    for interest in user_scores:
      top = np.argsort(-interest, kind="stable")[:k]
      candidates.extend(zip(top, interest[top]))
    candidates.sort(key=lambda c: c[1], reverse=True)
    seen, ids, best = set(), [], []
    for item, score in candidates:
      if item not in seen and item != 0 and score > -np.inf:
        seen.add(item)
        ids.append(item)
        best.append(score)
    ids, best = ids[:k], best[:k]
    out_ids.append(ids + [-1] * (k - len(ids)))
    out_scores.append(best + [-np.inf] * (k - len(best)))
  return np.array(out_ids), np.array(out_scores)


def _random_problem(seed, num_users=23, num_items=40, dim=8, interests=None):
  rng = np.random.default_rng(seed)
  shape = (num_users, dim) if interests is None else (num_users, interests,
                                                       dim)
  queries = rng.normal(size=shape).astype(np.float32)
  items = rng.normal(size=(num_items, dim)).astype(np.float32)
  exclude = [rng.choice(num_items, size=rng.integers(0, 6), replace=False)
             for _ in range(num_users)]
  return queries, items, exclude


class ExactTopKTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      ("plain", False, 1024), ("excluded", True, 1024),
      ("small_batches", True, 5))
  def test_single_interest_matches_numpy(self, use_exclude, batch_size):
    queries, items, exclude = _random_problem(0)
    exclude = exclude if use_exclude else None
    ids, scores = evaluation.exact_top_k(queries, items, 10, exclude=exclude,
                                         batch_size=batch_size)
    want_ids, want_scores = _reference_top_k(queries, items, 10, exclude)
    self.assertEqual(ids.dtype, np.int64)
    self.assertEqual(scores.dtype, np.float32)
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, rtol=1e-5)
    if use_exclude:
      for row, excluded in zip(ids, exclude):
        self.assertEmpty(set(row) & set(excluded))

  def test_padding_never_returned_even_if_best(self):
    queries, items, _ = _random_problem(1)
    items[0] = 100.0 * queries.mean(axis=0)  # Row 0 would win every query.
    ids, _ = evaluation.exact_top_k(queries, items, items.shape[0] - 1)
    self.assertNotIn(0, ids)
    # k = all real items: every row is a permutation of 1 .. num_items - 1.
    self.assertAllEqual(np.sort(ids, axis=1),
                        np.tile(np.arange(1, items.shape[0]), (len(ids), 1)))

  def test_valid_item_mask(self):
    queries, items, exclude = _random_problem(2)
    valid = np.ones(items.shape[0], bool)
    valid[[3, 7, 11]] = False
    ids, _ = evaluation.exact_top_k(queries, items, 12, exclude=exclude,
                                    batch_size=6, valid_item_mask=valid)
    want_ids, _ = _reference_top_k(queries, items, 12, exclude, valid)
    self.assertAllEqual(ids, want_ids)

  def test_exclusion_leaving_too_few_items_pads(self):
    items = np.eye(4, dtype=np.float32)
    queries = np.array([[0.0, 3.0, 2.0, 1.0], [0.0, 1.0, 2.0, 3.0]],
                       np.float32)
    ids, scores = evaluation.exact_top_k(
        queries, items, 3, exclude=[np.array([1, 2]), np.array([], int)])
    self.assertAllEqual(ids, [[3, -1, -1], [3, 2, 1]])
    self.assertAllEqual(scores[0, 1:], [-np.inf, -np.inf])
    self.assertAllClose(scores[0, 0], 1.0)
    self.assertAllClose(scores[1], [3.0, 2.0, 1.0])

  @parameterized.named_parameters(("plain", False), ("excluded", True))
  def test_multi_interest_matches_comirec_merge(self, use_exclude):
    queries, items, exclude = _random_problem(3, interests=4)
    exclude = exclude if use_exclude else None
    ids, scores = evaluation.exact_top_k(queries, items, 9, exclude=exclude,
                                         batch_size=4)
    want_ids, want_scores = _reference_multi_interest(queries, items, 9,
                                                      exclude)
    self.assertAllEqual(ids, want_ids)
    self.assertAllClose(scores, want_scores, rtol=1e-5)
    for row in ids:  # Deduplicated.
      self.assertLen(set(row), len(row))

  def test_multi_interest_overlap_dedup(self):
    # Both interests point at item 1; it must appear once with its best score.
    items = np.array([[0, 0], [1, 0], [0, 1], [0.5, 0.5]], np.float32)
    queries = np.array([[[2.0, 0.0], [1.0, 0.2]]], np.float32)
    ids, scores = evaluation.exact_top_k(queries, items, 3)
    self.assertAllEqual(ids, [[1, 3, 2]])
    self.assertAllClose(scores, [[2.0, 1.0, 0.2]])

  def test_k_larger_than_available_raises(self):
    queries, items, _ = _random_problem(4, num_items=6)
    with self.assertRaisesRegex(ValueError, "exceeds the 5 retrievable"):
      evaluation.exact_top_k(queries, items, 6)
    valid = np.ones(6, bool)
    valid[2] = False
    with self.assertRaisesRegex(ValueError, "exceeds the 4 retrievable"):
      evaluation.exact_top_k(queries, items, 5, valid_item_mask=valid)

  def test_bad_inputs_raise(self):
    queries, items, exclude = _random_problem(5)
    with self.assertRaisesRegex(ValueError, "dimension"):
      evaluation.exact_top_k(queries[:, :3], items, 2)
    with self.assertRaisesRegex(ValueError, "one .* id array per user"):
      evaluation.exact_top_k(queries, items, 2, exclude=exclude[:-1])
    with self.assertRaisesRegex(ValueError, "outside"):
      evaluation.exact_top_k(queries[:1], items, 2,
                             exclude=[np.array([items.shape[0]])])
    with self.assertRaisesRegex(ValueError, "k must be"):
      evaluation.exact_top_k(queries, items, 0)


class MergeInterestCandidatesTest(tf.test.TestCase):

  def test_matches_literal_merge(self):
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 12, size=(10, 3, 5))  # Many repeats, some padding.
    scores = rng.normal(size=ids.shape).astype(np.float32)
    got_ids, got_scores = evaluation.merge_interest_candidates(ids, scores, 6)
    for u in range(ids.shape[0]):
      order = np.argsort(-scores[u].reshape(-1), kind="stable")
      best = {}
      for item, score in zip(ids[u].reshape(-1)[order],
                             scores[u].reshape(-1)[order]):
        if item > 0 and item not in best:
          best[item] = score
      want = list(best.items())[:6]
      want += [(-1, -np.inf)] * (6 - len(want))
      self.assertAllEqual(got_ids[u], [i for i, _ in want])
      self.assertAllClose(got_scores[u], [s for _, s in want])

  def test_k_larger_than_candidates_raises(self):
    with self.assertRaisesRegex(ValueError, "candidates"):
      evaluation.merge_interest_candidates(np.ones((2, 2, 2), int),
                                           np.ones((2, 2, 2)), 5)


class EvaluateTest(tf.test.TestCase):

  def test_evaluate_embeddings_equals_top_k_then_metrics(self):
    queries, items, histories = _random_problem(7, num_items=80)
    rng = np.random.default_rng(8)
    targets = [rng.integers(1, 80, size=rng.integers(1, 6))
               for _ in range(len(queries))]
    got = evaluation.evaluate_embeddings(queries, items, histories, targets,
                                         cutoffs=(5, 20), batch_size=8)
    ids, _ = _reference_top_k(queries, items, 20, histories)
    self.assertEqual(got, metrics.retrieval_metrics(ids, targets, (5, 20)))
    self.assertEqual(got, evaluation.evaluate_retrieval(ids, targets, (5, 20)))
    no_exclusion = evaluation.evaluate_embeddings(
        queries, items, histories, targets, cutoffs=(5, 20),
        exclude_history=False, idcg="ideal")
    ids, _ = _reference_top_k(queries, items, 20)
    self.assertEqual(
        no_exclusion,
        metrics.retrieval_metrics(ids, targets, (5, 20), idcg="ideal"))

  def test_retrieving_the_targets_scores_perfectly(self):
    items = np.eye(6, dtype=np.float32)
    queries = np.array([[0, 0, 0, 1, 0.5, 0]], np.float32)
    got = evaluation.evaluate_embeddings(
        queries, items, [np.array([5])], [np.array([3, 4])], cutoffs=(2,))
    self.assertEqual(got, {"recall@2": 100.0, "hr@2": 100.0,
                           "ndcg@2": 100.0, "ndcg_gt@2": 100.0})


if __name__ == "__main__":
  tf.test.main()
