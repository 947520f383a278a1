"""Statistics over seeds for the result tables.

* ``mean_std``: mean and sample standard deviation (``ddof=1``).
* ``paired_comparison``: a variant against its base trained with the same
  seeds. The per-seed differences ``variant - base`` give a mean ± sample std
  and a two-sided paired t-test (``scipy.stats.ttest_rel``). Two
  significance criteria are reported side by side, never merged into one:
  the mean difference exceeds 2 pooled standard deviations, with
  ``pooled std = sqrt((s_base^2 + s_variant^2) / 2)`` (the seeds' spread of
  each model, not of the differences), and ``p < alpha``.
* ``sign_test``: over many paired differences (e.g. every seed of every
  tower), how many are above and below zero, and the two-sided binomial
  test of those signs (``scipy.stats.binomtest``, p = 1/2; ties dropped).

Pure numpy/scipy; no TensorFlow.
"""

import dataclasses
import math
from typing import Mapping, Optional, Sequence, Tuple
import warnings

import numpy as np
from scipy import stats as scipy_stats


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
  """Mean and sample standard deviation (``nan`` for fewer than 2 values)."""
  x = np.asarray(values, dtype=np.float64)
  if x.size == 0:
    raise ValueError("mean_std needs at least one value.")
  return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
  """``"mean ± std"``; a single value has no spread and prints alone."""
  mean, sd = mean_std(values)
  if len(values) == 1:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {sd:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class PairedComparison:
  """A variant against its base over the seeds both were trained with.

  Attributes:
    seeds: The paired seeds, sorted.
    differences: ``variant - base`` per seed.
    mean: Mean difference.
    std: Sample std of the differences (``nan`` for one seed).
    base_std: Sample std of the base values over the paired seeds.
    variant_std: Sample std of the variant values over the paired seeds.
    pooled_std: ``sqrt((base_std^2 + variant_std^2) / 2)``.
    p_value: Two-sided paired t-test p-value (``nan`` for one seed).
    alpha: Level of the p-value criterion.
  """
  seeds: Tuple[int, ...]
  differences: Tuple[float, ...]
  mean: float
  std: float
  base_std: float
  variant_std: float
  pooled_std: float
  p_value: float
  alpha: float = 0.05

  @property
  def n(self) -> int:
    return len(self.seeds)

  @property
  def beyond_2_pooled_std(self) -> Optional[bool]:
    """``|mean| > 2 pooled std`` (``None`` for fewer than 2 seeds)."""
    if self.n < 2:
      return None
    return abs(self.mean) > 2 * self.pooled_std

  @property
  def p_significant(self) -> Optional[bool]:
    """``p < alpha`` (``None`` for fewer than 2 seeds)."""
    if self.n < 2:
      return None
    return self.p_value < self.alpha

  @property
  def verdict(self) -> str:
    """``gain``/``loss`` with the criteria met, ``n.s.``, or ``n/a``."""
    if self.n < 2:
      return "n/a (1 seed)"
    met = [name for name, ok in (("> 2 pooled std", self.beyond_2_pooled_std),
                                 (f"p < {self.alpha:g}", self.p_significant))
           if ok]
    if not met or self.mean == 0:
      return "n.s."
    return ("gain" if self.mean > 0 else "loss") + " (" + ", ".join(met) + ")"


def paired_comparison(variant: Mapping[int, float], base: Mapping[int, float],
                      alpha: float = 0.05) -> PairedComparison:
  """Compares a variant with its base over their common seeds.

  Args:
    variant: Seed -> metric of the variant.
    base: Seed -> metric of the base.
    alpha: Level of the p-value criterion.

  Returns:
    A ``PairedComparison``.

  Raises:
    ValueError: If the two share no seed.
  """
  seeds = tuple(sorted(set(variant) & set(base)))
  if not seeds:
    raise ValueError(
        f"No common seed to pair: variant seeds {sorted(variant)}, base seeds "
        f"{sorted(base)}; train both with the same --seeds.")
  v = np.array([variant[s] for s in seeds], dtype=np.float64)
  b = np.array([base[s] for s in seeds], dtype=np.float64)
  d = v - b
  mean = float(d.mean())
  if len(seeds) < 2:
    nan = math.nan
    return PairedComparison(seeds, tuple(d.tolist()), mean, nan, nan, nan,
                            nan, nan, alpha)
  std = float(d.std(ddof=1))
  base_std, variant_std = float(b.std(ddof=1)), float(v.std(ddof=1))
  pooled = math.sqrt((base_std ** 2 + variant_std ** 2) / 2)
  if np.all(d == d[0]):  # t is +-inf (or undefined when all are 0)
    p_value = 0.0 if d[0] != 0 else 1.0
  else:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)  # near-equal values
      p_value = float(scipy_stats.ttest_rel(v, b).pvalue)
  return PairedComparison(seeds, tuple(d.tolist()), mean, std, base_std,
                          variant_std, pooled, p_value, alpha)


@dataclasses.dataclass(frozen=True)
class SignTest:
  """Signs of paired differences and their two-sided binomial test."""
  higher: int
  lower: int
  ties: int
  p_value: float  # ``nan`` when every difference is a tie


def sign_test(differences: Sequence[float]) -> SignTest:
  """Counts ``d > 0`` and ``d < 0`` and tests them against a fair coin.

  Raises:
    ValueError: On no differences.
  """
  d = np.asarray(differences, dtype=np.float64)
  if d.size == 0:
    raise ValueError("sign_test needs at least one difference.")
  higher, lower = int((d > 0).sum()), int((d < 0).sum())
  p_value = (float(scipy_stats.binomtest(higher, higher + lower).pvalue)
             if higher + lower else math.nan)
  return SignTest(higher, lower, int(d.size) - higher - lower, p_value)
