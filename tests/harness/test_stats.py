"""Seed statistics: mean ± std, paired comparisons, convergence flags."""

import math

import numpy as np
import pytest

from mic_harness import stats


def test_mean_std_is_sample_std():
  assert stats.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)
  mean, sd = stats.mean_std([4.0])
  assert mean == 4.0 and math.isnan(sd)
  assert stats.format_mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00"
  with pytest.raises(ValueError, match="at least one"):
    stats.mean_std([])


def test_paired_comparison_by_hand():
  # Differences 1, 2, 3: mean 2, sd 1, t = 2 / (1 / sqrt(3)) = 3.4641 with
  # 2 degrees of freedom; two-sided p = 1 - 3.4641 / sqrt(2 + 3.4641^2)
  # = 1 - sqrt(12 / 14) = 0.07418 (closed form of Student's t with df = 2).
  base = {0: 10.0, 1: 12.0, 2: 11.0, 7: 99.0}  # seed 7 has no partner
  variant = {0: 11.0, 1: 14.0, 2: 14.0}
  c = stats.paired_comparison(variant, base)
  assert c.seeds == (0, 1, 2) and c.differences == (1.0, 2.0, 3.0)
  assert (c.mean, c.std) == (2.0, 1.0)
  assert c.p_value == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-9)
  # s_base = 1, s_variant = sd(11, 14, 14) = sqrt(3): pooled = sqrt(2).
  assert c.base_std == pytest.approx(1.0)
  assert c.variant_std == pytest.approx(math.sqrt(3))
  assert c.pooled_std == pytest.approx(math.sqrt(2))
  assert c.beyond_2_pooled_std is False  # 2 < 2 * 1.414
  assert c.p_significant is False
  assert c.verdict == "n.s."


def test_paired_comparison_criteria_are_reported_separately():
  rng = np.random.default_rng(0)
  base = dict(enumerate(20 + rng.normal(0, 0.1, 5)))
  # A constant shift of +1: both criteria hold.
  gain = stats.paired_comparison({s: v + 1 for s, v in base.items()}, base)
  assert gain.beyond_2_pooled_std and gain.p_significant
  assert gain.verdict == "gain (> 2 pooled std, p < 0.05)"
  # Paired noise much smaller than the seeds' spread: p < 0.05 only.
  wide = {s: 20 + 3 * s for s in range(5)}
  shifted = {s: v + 0.5 + 0.01 * (-1) ** s for s, v in wide.items()}
  c = stats.paired_comparison(shifted, wide)
  assert c.p_significant and not c.beyond_2_pooled_std
  assert c.verdict == "gain (p < 0.05)"
  loss = stats.paired_comparison({s: v - 1 for s, v in base.items()}, base)
  assert loss.verdict.startswith("loss (")


def test_paired_comparison_edge_cases():
  one = stats.paired_comparison({0: 2.0}, {0: 1.0})
  assert one.mean == 1.0 and math.isnan(one.p_value)
  assert one.p_significant is None and one.verdict == "n/a (1 seed)"
  same = stats.paired_comparison({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
  assert same.p_value == 1.0 and same.verdict == "n.s."
  with pytest.raises(ValueError, match="No common seed"):
    stats.paired_comparison({0: 1.0}, {1: 1.0})


def test_one_value_shows_no_spread():
  assert stats.format_mean_std([24.189]) == "24.19"
  assert stats.format_mean_std([1.0, 2.0, 3.0]) == "2.00 ± 1.00"


def test_sign_test_counts_signs_and_matches_the_binomial_by_hand():
  # 11 of 11 above zero: two-sided p = 2 * (1/2)^11.
  every = stats.sign_test([0.1] * 11)
  assert (every.higher, every.lower, every.ties) == (11, 0, 0)
  assert every.p_value == pytest.approx(2 * 0.5 ** 11)
  # 5 above, 6 below, 1 tie (dropped): p = 1 (the most likely split).
  mixed = stats.sign_test([1, 2, 3, 4, 5, -1, -2, -3, -4, -5, -6, 0])
  assert (mixed.higher, mixed.lower, mixed.ties) == (5, 6, 1)
  assert mixed.p_value == pytest.approx(1.0)
  # 8 of 10: p = 2 * sum_{k>=8} C(10, k) / 2^10 = 2 * 56 / 1024.
  assert stats.sign_test([1] * 8 + [-1] * 2).p_value == pytest.approx(
      2 * 56 / 1024)
  assert math.isnan(stats.sign_test([0.0, 0.0]).p_value)
  with pytest.raises(ValueError, match="at least one difference"):
    stats.sign_test([])
