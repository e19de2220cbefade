"""The project's statistics, on plain numbers: paired Wilcoxon tests, Holm's correction, the Friedman test,
the smallest difference a paired test can detect, every pairwise test of a set of configurations, the mean
with its Student t 95% interval, and the Pareto front. The report (`analysis.report`) and the observers'
experiment (`tasks.observers`) both use these, so one convention holds everywhere:

- paired tests are two-sided Wilcoxon signed-rank tests with `zero_method="zsplit"` (a zero difference
  counts half for each side) on the pairs both sides have;
- a test that cannot be made (fewer than 2 pairs, 3 groups or 2 cases; no difference at all) gives NaN,
  never an error, and Holm leaves a NaN untouched.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


def paired(a: Mapping[str, float], b: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Values of `a` and `b` (per case) on the cases both have, in one (sorted) order."""
    cases = sorted(set(a) & set(b))
    return np.array([a[c] for c in cases]), np.array([b[c] for c in cases])


def wilcoxon_p(a, b) -> float:
    """Two-sided Wilcoxon signed-rank p of paired values (zero differences split, `zsplit`); NaN with fewer
    than 2 pairs or no difference (all pairs close)."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.allclose(a, b):
        return float("nan")
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def holm(pvalues: Mapping[K, float]) -> dict[K, float]:
    """Holm-adjusted p-values of the finite ones (statsmodels' multipletests); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    tested = {k: v for k, v in pvalues.items() if np.isfinite(v)}
    out = dict.fromkeys(pvalues, float("nan"))
    if tested:
        out.update(zip(tested, multipletests(list(tested.values()), method="holm")[1]))
    return out


def friedman_p(values) -> float:
    """p of the Friedman test that every group (a row of `values`: groups x cases, the same cases in each)
    comes from one distribution; NaN with fewer than 3 groups or 2 cases, or when every group gave the same
    values."""
    from scipy.stats import friedmanchisquare

    values = np.asarray(values, float)
    if len(values) < 3 or values.shape[1] < 2 or np.allclose(values, values[:1]):
        return float("nan")
    return float(friedmanchisquare(*values).pvalue)


def detectable_difference(differences: Iterable, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean paired difference a two-sided test at `alpha` finds with probability `power`, given
    the paired differences of some comparisons (those with at least 2 pairs count): (z_{1-alpha/2} +
    z_power) * sd / sqrt(n), sd the median over the comparisons of the differences' sd, n the fewest pairs,
    divided by sqrt(0.955) for the Wilcoxon test's efficiency relative to the t test (normal
    approximation). NaN when no comparison has 2 pairs."""
    from scipy.stats import norm

    sds, ns = [], []
    for d in differences:
        d = np.asarray(d, float)
        if len(d) >= 2:
            sds.append(np.std(d, ddof=1))
            ns.append(len(d))
    if not sds:
        return float("nan")
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return float(z * np.median(sds) / np.sqrt(min(ns)) / np.sqrt(0.955))


def pairwise_tests(values: Mapping[K, Mapping[str, float]]) -> dict[tuple[K, K], tuple[float, float, int]]:
    """{(a, b): (p, Holm-adjusted p over all pairs, n cases)} for every pair of groups in `values` (group ->
    {case: value}), in the mapping's order: `wilcoxon_p` on the cases both have."""
    raw, sizes = {}, {}
    keys = list(values)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            x, y = paired(values[a], values[b])
            raw[(a, b)], sizes[(a, b)] = wilcoxon_p(x, y), len(x)
    adjusted = holm(raw)
    return {pair: (p, adjusted[pair], sizes[pair]) for pair, p in raw.items()}


def mean_ci(values, bounds: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over the first axis of `values` (one value per case, or cases x rounds) and its 95% Student t
    confidence interval, the interval clipped to `bounds` if given (e.g. (0, 1) for DSC); for fewer than 2
    cases the mean alone, three times. Numpy scalars for 1-d values, arrays for 2-d."""
    from scipy.stats import t

    v = np.asarray(values, float)
    mean = v.mean(axis=0)
    n = len(v)
    if n < 2:
        return mean, mean, mean
    half = t.ppf(0.975, n - 1) * v.std(axis=0, ddof=1) / np.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = np.maximum(low, bounds[0]), np.minimum(high, bounds[1])
    return mean, low, high


def pareto_front(scores: Mapping[K, Iterable[float]]) -> set[K]:
    """The keys whose scores (higher is better on every objective) no other key dominates: at least as good
    on every objective and better on one. A key with a missing (non-finite) score neither is on the front
    nor dominates."""
    arrays = {k: np.asarray(list(s), float) for k, s in scores.items()}
    front = set()
    for k, s in arrays.items():
        dominated = any(
            np.all(o >= s) and np.any(o > s)
            for other, o in arrays.items()
            if other != k and np.isfinite(o).all()
        )
        if not dominated and np.isfinite(s).all():
            front.add(k)
    return front
