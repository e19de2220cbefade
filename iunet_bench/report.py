"""Compare runs read back from MLflow: a table, statistics, and overlaid DSC curves.

    python -m iunet_bench.report --sweep layers          # the latest `layers` sweep
    python -m iunet_bench.report --parent <run id>       # one sweep by its parent run
    python -m iunet_bench.report                         # every job run of the experiment

The per-case final DSC of each run is paired with the best run's (by `dsc_auc`) on the cases both ran;
with fewer than 6 cases a two-sided Wilcoxon test cannot reach p < 0.05, which the table says plainly.
The p-values are also given Benjamini-Hochberg adjusted over the comparisons; a Friedman test runs across
all runs on their common cases; and the note states the smallest mean difference in final DSC that these
cases can detect (alpha 0.05, power 0.8), so a study knows when it needs more cases.
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iunet_bench import results
from iunet_bench.plots import plot_curves

SUMMARY_KEYS = (
    "dsc_baseline",
    "dsc_final",
    "dsc_gain",
    "dsc_gain_over_paste",
    "rounds_honoured",
    "noi_85",
    "noi_90",
    "dsc_auc",
    "round_seconds",
)


@dataclass
class RunCurves:
    run_id: str
    name: str
    params: dict[str, str]
    summary: dict[str, float]
    curve: list[float]
    final_by_case: dict[str, float] = field(default_factory=dict)
    failed_cases: str = "0"


def select_runs(client, experiment: str, sweep: str | None = None, parent: str | None = None):
    """Job runs of one sweep (its latest parent run when only the sweep name is given), or of the experiment."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise SystemExit(f"report: no MLflow experiment named {experiment!r} in this store")
    ids = [exp.experiment_id]
    if sweep and not parent:
        parents = client.search_runs(
            ids,
            f"tags.kind = 'sweep' and tags.sweep = '{sweep}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not parents:
            raise SystemExit(f"report: no sweep named {sweep!r} (tag `sweep`) in experiment {experiment!r}")
        parent = parents[0].info.run_id
    query = f"tags.mlflow.parentRunId = '{parent}'" if parent else "tags.kind = 'job'"
    return client.search_runs(ids, query, order_by=["attributes.start_time ASC"])


def read_curves(client, run) -> RunCurves:
    history = client.get_metric_history(run.info.run_id, "dsc")
    curve = [m.value for m in sorted(history, key=lambda m: m.step)]
    finals = {}
    for key, value in run.data.metrics.items():
        case = results.case_of(key)
        if case is not None:
            finals[case] = value  # search_runs holds the last value = final round
    return RunCurves(
        run.info.run_id,
        run.info.run_name or run.info.run_id[:8],
        dict(run.data.params),
        {k: run.data.metrics[k] for k in SUMMARY_KEYS if k in run.data.metrics},
        curve,
        finals,
        run.data.tags.get("failed_cases", "?"),
    )


# When a preset's name differs between runs, its name says it all: its other keys are not listed.
PRESET_KEYS = {"simulator": "simulator.name", "interact": "interact.method", "data": "data.source"}


def varying_params(runs: list[RunCurves]) -> list[str]:
    """The params that differ between runs, a differing preset standing for all of its keys."""
    keys = sorted({k for r in runs for k in r.params})
    varying = [k for k in keys if len({r.params.get(k) for r in runs}) > 1]
    collapsed = {group for group, name in PRESET_KEYS.items() if name in varying}
    return [k for k in varying if k in PRESET_KEYS.values() or k.split(".")[0] not in collapsed]


def wilcoxon_vs_best(runs: list[RunCurves]) -> tuple[str, dict[str, float]]:
    """(best run id, {run id: two-sided Wilcoxon p of per-case final DSC against the best run})."""
    from scipy.stats import wilcoxon

    best = max(runs, key=lambda r: r.summary.get("dsc_auc", -1.0))
    out = {}
    for r in runs:
        if r.run_id == best.run_id:
            continue
        cases = sorted(set(r.final_by_case) & set(best.final_by_case))
        a = np.array([r.final_by_case[c] for c in cases])
        b = np.array([best.final_by_case[c] for c in cases])
        if len(cases) < 2 or np.allclose(a, b):
            out[r.run_id] = float("nan")
            continue
        out[r.run_id] = float(wilcoxon(a, b, zero_method="zsplit").pvalue)
    return best.run_id, out


def paired_finals(runs: list[RunCurves]) -> tuple[list[str], np.ndarray]:
    """(cases every run finished, final DSC array (runs x cases)) for tests across all runs."""
    cases = sorted(set.intersection(*(set(r.final_by_case) for r in runs))) if runs else []
    return cases, np.array([[r.final_by_case[c] for c in cases] for r in runs], float)


def friedman(runs: list[RunCurves]) -> tuple[float, int]:
    """(p of the Friedman test that all runs' per-case final DSC come from one distribution, cases used);
    NaN with fewer than 3 runs or 2 common cases, or when every run gave the same values."""
    from scipy.stats import friedmanchisquare

    cases, finals = paired_finals(runs)
    if len(runs) < 3 or len(cases) < 2 or np.allclose(finals, finals[:1]):
        return float("nan"), len(cases)
    return float(friedmanchisquare(*finals).pvalue), len(cases)


def detectable_difference(
    runs: list[RunCurves], best_id: str, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest mean paired difference in final DSC against the best run that a two-sided test at
    `alpha` finds with probability `power` on these cases: (z_{1-alpha/2} + z_power) * sd / sqrt(n), the
    sd of the paired differences (median over the comparisons), divided by sqrt(0.955) for the Wilcoxon
    test's efficiency relative to the t test (normal approximation)."""
    from scipy.stats import norm

    best = next(r for r in runs if r.run_id == best_id)
    sds, ns = [], []
    for r in runs:
        if r.run_id == best_id:
            continue
        cases = sorted(set(r.final_by_case) & set(best.final_by_case))
        if len(cases) >= 2:
            sds.append(np.std([r.final_by_case[c] - best.final_by_case[c] for c in cases], ddof=1))
            ns.append(len(cases))
    if not sds:
        return float("nan")
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return float(z * np.median(sds) / np.sqrt(min(ns)) / np.sqrt(0.955))


def build_report(runs: list[RunCurves], out: Path) -> str:
    """Write `report.csv` and `curves.png` under `out`; return the table as markdown, with the tests."""
    from scipy.stats import false_discovery_control

    out.mkdir(parents=True, exist_ok=True)
    varying = varying_params(runs)
    best, pvalues = wilcoxon_vs_best(runs)
    tested = {k: v for k, v in pvalues.items() if np.isfinite(v)}
    adjusted = dict(zip(tested, false_discovery_control(list(tested.values())))) if tested else {}
    header = ["run", *varying, *SUMMARY_KEYS, "failed_cases", "p_vs_best", "p_fdr"]
    rows = []
    for r in runs:
        p = "best" if r.run_id == best else f"{pvalues.get(r.run_id, float('nan')):.3g}"
        q = "best" if r.run_id == best else f"{adjusted.get(r.run_id, float('nan')):.3g}"
        rows.append(
            [
                r.name,
                *[r.params.get(k, "") for k in varying],
                *[f"{r.summary.get(k, float('nan')):.3f}" for k in SUMMARY_KEYS],
                r.failed_cases,
                p,
                q,
            ]
        )
    with (out / "report.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    plot_curves(out / "curves.png", {_label(r, varying): r.curve for r in runs})
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    n_cases = min((len(r.final_by_case) for r in runs), default=0)
    note = (
        f"\n(p_vs_best: two-sided Wilcoxon signed-rank of per-case final DSC against the best run by dsc_auc, "
        f"over {n_cases} paired cases; p_fdr: the same, Benjamini-Hochberg adjusted over the "
        f"{len(tested)} comparisons"
    )
    if n_cases < 6:
        note += "; below 6 cases no two-sided test can reach p < 0.05"
    p_all, n_common = friedman(runs)
    if np.isfinite(p_all):
        note += f". Friedman test across the {len(runs)} runs on {n_common} common cases: p = {p_all:.3g}"
    mde = detectable_difference(runs, best)
    if np.isfinite(mde):
        note += (
            f". Smallest mean difference in final DSC against the best run these cases detect (alpha 0.05, "
            f"power 0.8): {mde:.3f}"
        )
    lines.append(note + ".)")
    return "\n".join(lines)


def _label(run: RunCurves, varying: list[str]) -> str:
    return ", ".join(f"{k.split('.')[-1]}={run.params.get(k)}" for k in varying) or run.name


def report(uri: str, experiment: str, sweep: str | None, parent: str | None, out: Path) -> str:
    import mlflow

    from iunet_bench.tracking import store_uri

    client = mlflow.MlflowClient(store_uri(uri))
    runs = [read_curves(client, r) for r in select_runs(client, experiment, sweep, parent)]
    runs = [r for r in runs if r.curve]
    if not runs:
        raise SystemExit("report: no finished job runs with a `dsc` curve to compare")
    return build_report(runs, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m iunet_bench.report", description=__doc__.splitlines()[0])
    from iunet_bench.tracking import TrackingConfig

    defaults = TrackingConfig()  # the job's own defaults: the report reads where jobs write
    parser.add_argument("--uri", default=defaults.uri, help="MLflow tracking URI")
    parser.add_argument("--experiment", default=defaults.experiment)
    parser.add_argument("--sweep", help="sweep name (tag `sweep`): its latest parent run")
    parser.add_argument("--parent", help="parent run id of a sweep")
    parser.add_argument("--out", type=Path, default=None, help="folder for report.csv and curves.png")
    args = parser.parse_args(argv)
    out = args.out or Path("runs") / "reports" / (args.sweep or args.parent or "all")
    print(report(args.uri, args.experiment, args.sweep, args.parent, out))
    print(f"\nwritten: {out / 'report.csv'}, {out / 'curves.png'}")


if __name__ == "__main__":
    main()
