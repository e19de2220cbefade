"""The report's statistics on hand-made runs, against values worked out independently."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from iunet_bench.report import RunCurves, build_report, detectable_difference, friedman


def run(name: str, finals: list[float], auc: float) -> RunCurves:
    cases = {f"case_{i}": v for i, v in enumerate(finals)}
    return RunCurves(
        name,
        name,
        {"interact.lr": name},
        {"dsc_auc": auc, "dsc_final": float(np.mean(finals))},
        [0.5, float(np.mean(finals))],
        cases,
    )


def test_friedman_of_a_perfectly_consistent_ranking_has_its_closed_form_p():
    # k = 3 runs ranked the same way on every one of n cases: chi2 = n (k - 1) = 2n with 2 degrees of
    # freedom, whose survival function is exp(-chi2 / 2) = exp(-n)
    n = 6
    low, mid, high = (list(np.linspace(b, b + 0.05, n)) for b in (0.6, 0.7, 0.8))
    p, used = friedman([run("a", low, 0.1), run("b", mid, 0.2), run("c", high, 0.3)])
    assert used == n and p == pytest.approx(math.exp(-n), rel=1e-9)
    assert np.isnan(friedman([run("a", low, 0.1), run("b", mid, 0.2)])[0])  # needs three runs


def test_the_detectable_difference_follows_the_normal_approximation():
    rng = np.random.default_rng(0)
    best = rng.uniform(0.7, 0.9, 10)
    diff = rng.normal(0.0, 0.02, 10)
    runs = [run("best", list(best), 0.9), run("other", list(best - diff), 0.5)]
    expected = (
        (1.959963984540054 + 0.8416212335729143) * np.std(diff, ddof=1) / math.sqrt(10) / math.sqrt(0.955)
    )
    assert detectable_difference(runs, "best") == pytest.approx(expected, rel=1e-9)


def test_the_report_adjusts_for_several_comparisons_and_names_its_tests(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.uniform(0.7, 0.8, 8)
    runs = [run("best", list(base + 0.05), 0.9)] + [
        run(f"r{i}", list(base + rng.normal(0, 0.01, 8)), 0.5 - i / 10) for i in range(3)
    ]
    text = build_report(runs, tmp_path)
    assert "Friedman test across the 4 runs on 8 common cases" in text and "Benjamini-Hochberg" in text
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    p, q = header.index("p_vs_best"), header.index("p_fdr")
    others = [row for row in rows if row[p] != "best"]
    assert len(others) == 3 and all(float(row[q]) >= float(row[p]) for row in others)
