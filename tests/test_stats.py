"""The statistics module on hand examples, against values worked out independently (closed forms, Holm by
hand, scipy.stats called directly)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iunet_bench.analysis import stats


def test_paired_keeps_the_common_cases_in_one_order():
    a, b = stats.paired({"c": 3.0, "a": 1.0, "x": 9.0}, {"a": 10.0, "c": 30.0, "y": 0.0})
    assert list(a) == [1.0, 3.0] and list(b) == [10.0, 30.0]


def test_wilcoxon_of_six_positive_differences_is_the_exact_two_sided_p():
    # every one of 6 differences positive: the most extreme of 2^6 equally likely sign patterns, both sides
    assert stats.wilcoxon_p(np.arange(6.0) + 1, np.zeros(6)) == pytest.approx(2 / 2**6, rel=1e-12)


def test_wilcoxon_splits_zero_differences_and_is_nan_where_no_test_can_be_made():
    from scipy.stats import wilcoxon

    a = [0.8, 0.7, 0.9, 0.85, 0.6, 0.75, 0.7]
    b = [0.8, 0.6, 0.85, 0.7, 0.62, 0.7, 0.5]  # one zero difference
    expected = wilcoxon(a, b, zero_method="zsplit", alternative="two-sided").pvalue
    assert stats.wilcoxon_p(a, b) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(stats.wilcoxon_p([0.5], [0.4]))  # one pair
    assert math.isnan(stats.wilcoxon_p(a, a))  # no difference


def test_holm_on_a_known_example_leaves_nan_alone():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> made monotone: 0.06
    q = stats.holm({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": float("nan")})
    assert [q[k] for k in "abcd"] == pytest.approx([0.03, 0.06, 0.06, 0.02], rel=1e-12)
    assert math.isnan(q["e"]) and list(q) == list("abcde")
    assert stats.holm({"a": 0.6, "b": 0.9}) == pytest.approx({"a": 1.0, "b": 1.0})  # capped at 1


def test_friedman_of_a_perfectly_consistent_ranking_has_its_closed_form_p():
    # k = 3 groups ranked the same way on every one of n cases: chi2 = n (k - 1) = 2n with 2 degrees of
    # freedom, whose survival function is exp(-chi2 / 2) = exp(-n)
    n = 6
    low, mid, high = (list(np.linspace(b, b + 0.05, n)) for b in (0.6, 0.7, 0.8))
    assert stats.friedman_p([low, mid, high]) == pytest.approx(math.exp(-n), rel=1e-9)
    assert math.isnan(stats.friedman_p([low, mid]))  # needs three groups
    assert math.isnan(stats.friedman_p([low[:1], mid[:1], high[:1]]))  # and two cases
    assert math.isnan(stats.friedman_p([low, low, low]))  # and some difference


def test_the_detectable_difference_follows_the_normal_approximation():
    rng = np.random.default_rng(0)
    diff = rng.normal(0.0, 0.02, 10)
    expected = (
        (1.959963984540054 + 0.8416212335729143) * np.std(diff, ddof=1) / math.sqrt(10) / math.sqrt(0.955)
    )
    assert stats.detectable_difference([diff, [0.1]]) == pytest.approx(expected, rel=1e-9)  # [0.1]: 1 pair
    assert math.isnan(stats.detectable_difference([[0.1]]))


def test_pairwise_tests_every_pair_on_its_common_cases_with_holm_over_the_pairs():
    from scipy.stats import wilcoxon

    rng = np.random.default_rng(3)
    base = rng.uniform(0.6, 0.8, 8)
    groups = {
        name: {f"case_{j}": v for j, v in enumerate(base + shift + rng.normal(0, 0.01, 8))}
        for name, shift in (("a", 0.05), ("b", 0.0), ("c", -0.01))
    }
    del groups["c"]["case_0"]
    tests = stats.pairwise_tests(groups)
    assert list(tests) == [("a", "b"), ("a", "c"), ("b", "c")]
    for (x, y), (p, _, n) in tests.items():
        cases = sorted(set(groups[x]) & set(groups[y]))
        direct = wilcoxon([groups[x][c] for c in cases], [groups[y][c] for c in cases], zero_method="zsplit")
        assert p == pytest.approx(direct.pvalue, rel=1e-12) and n == len(cases)
    raw = sorted(p for p, _, _ in tests.values())
    assert max(q for _, q, _ in tests.values()) == pytest.approx(
        max(min(1.0, 3 * raw[0]), min(1.0, 2 * raw[1]), raw[2])
    )


def test_the_interval_is_students_t_per_column_and_clipped_to_the_bounds():
    from scipy.stats import t

    values = [0.80, 0.84, 0.86, 0.90]
    mean, lo, hi = stats.mean_ci(values)
    expected = t.interval(0.95, 3, loc=np.mean(values), scale=np.std(values, ddof=1) / 2)
    assert (lo, hi) == pytest.approx(expected) and mean == pytest.approx(0.85)
    assert stats.mean_ci([0.99, 1.0, 0.5], bounds=(0.0, 1.0))[2] == 1.0
    assert stats.mean_ci([0.7]) == (0.7, 0.7, 0.7)
    mean, lo, hi = stats.mean_ci([[0.5, 0.7], [0.5, 0.8], [0.5, 0.9]])  # cases x rounds
    half = t.ppf(0.975, 2) * np.std([0.7, 0.8, 0.9], ddof=1) / math.sqrt(3)
    assert list(mean) == pytest.approx([0.5, 0.8]) and hi[1] - mean[1] == pytest.approx(half)
    assert lo[0] == pytest.approx(0.5)


def test_only_keys_no_other_beats_on_every_objective_are_on_the_pareto_front():
    scores = {
        "fast_good": (-1.0, 0.9),
        "slow_better": (-5.0, 0.95),
        "slow_worse": (-5.0, 0.85),  # dominated by fast_good
        "unknown": (float("nan"), 1.0),  # a missing score: neither on the front nor dominating
    }
    assert stats.pareto_front(scores) == {"fast_good", "slow_better"}
