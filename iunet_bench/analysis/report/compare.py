"""The report's comparisons of runs: the statistics of `analysis.stats` applied to `RunData` (per-case
final DSC or AUC on the cases both runs finished), and the reference run the others are tested against."""

from __future__ import annotations

import numpy as np

from iunet_bench.analysis import stats
from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.analysis.report.runs import RunData, label, varying_params

PARETO = (("round_seconds", -1), ("user_seconds", -1), ("dsc_final", 1), ("dsc_auc", 1))  # (key, better)


def paired(a: RunData, b: RunData, what: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """Per-case values (`RunData.per_case(what)`) of two runs on the cases both finished, in one order."""
    return stats.paired(a.per_case(what), b.per_case(what))


def choose_reference(runs: list[RunData], reference: str | None) -> RunData:
    """The run named (run id, its prefix, or its label) by `reference`, else the best by AUC."""
    if reference:
        for r in runs:
            if reference in (r.run_id, r.name, label(r, varying_params(runs))) or r.run_id.startswith(
                reference
            ):
                return r
        raise ReportError(
            f"report: --reference {reference!r} names no run of this report: {[r.name for r in runs]}"
        )
    return max(runs, key=lambda r: r.summary.get("dsc_auc", -1.0))


def comparisons(runs: list[RunData], ref: RunData) -> dict[str, dict[str, float]]:
    """{run id: {p_final, p_final_holm, p_auc, p_auc_holm, n}} against the reference run: `stats.wilcoxon_p`,
    Holm-adjusted within each metric over the comparisons."""
    out: dict[str, dict[str, float]] = {r.run_id: {} for r in runs if r.run_id != ref.run_id}
    for what in ("final", "auc"):
        raw = {}
        for r in runs:
            if r.run_id == ref.run_id:
                continue
            a, b = paired(r, ref, what)
            raw[r.run_id] = stats.wilcoxon_p(a, b)
            out[r.run_id]["n"] = len(a)
        for run_id, q in stats.holm(raw).items():
            out[run_id][f"p_{what}"] = raw[run_id]
            out[run_id][f"p_{what}_holm"] = q
    return out


def common_finals(runs: list[RunData]) -> tuple[list[str], np.ndarray]:
    """(cases every run finished, final DSC array (runs x cases))."""
    finals = [r.per_case("final") for r in runs]
    cases = sorted(set.intersection(*(set(f) for f in finals))) if runs else []
    return cases, np.array([[f[c] for c in cases] for f in finals], float)


def friedman(runs: list[RunData]) -> tuple[float, int]:
    """(`stats.friedman_p` of all runs' per-case final DSC on their common cases, cases used)."""
    cases, finals = common_finals(runs)
    return stats.friedman_p(finals), len(cases)


def detectable_difference(
    runs: list[RunData], ref: RunData, alpha: float = 0.05, power: float = 0.8
) -> float:
    """`stats.detectable_difference` of the paired differences in final DSC of every run against the
    reference: the smallest mean difference these cases detect."""
    differences = []
    for r in runs:
        if r.run_id != ref.run_id:
            a, b = paired(r, ref)
            differences.append(a - b)
    return stats.detectable_difference(differences, alpha, power)


def pairwise_tests(
    runs: list[RunData], what: str = "final"
) -> dict[tuple[str, str], tuple[float, float, int]]:
    """{(run a, run b): (p, Holm-adjusted p over all pairs, n cases)}: `stats.pairwise_tests` of per-case
    values, for every pair of runs (the paper's test between models)."""
    return stats.pairwise_tests({r.run_id: r.per_case(what) for r in runs})


def pareto_front(runs: list[RunData]) -> set[str]:
    """Run ids no other run dominates: at least as good on every objective of `PARETO`, better on one."""
    return stats.pareto_front(
        {r.run_id: [sign * r.summary.get(k, np.nan) for k, sign in PARETO] for r in runs}
    )


def mean_band(curves: dict[str, list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Mean per round over cases and its 95% confidence interval (Student t; the mean alone for one case)."""
    return tuple(list(x) for x in stats.mean_ci(list(curves.values())))
