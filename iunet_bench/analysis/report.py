"""Compare runs read back from MLflow: one page with a table, the tests, and the paper's figures.

    python -m iunet_bench.analysis.report --sweep layers          # the latest `layers` sweep
    python -m iunet_bench.analysis.report --parent <run id>       # one sweep by its parent run
    python -m iunet_bench.analysis.report                         # every job run of the experiment
    python -m iunet_bench.analysis.report --sweep protocols --reference "iunet ..."   # test against a chosen run

Every number comes from the runs' round records (the `records/<case>.json` artifacts a job logs as each
case finishes), through the same functions the job summarises itself with (`iunet_bench.analysis.results`), so a
sweep that is still running or partly failed is reported on what it has, and the page names what is
missing. Per configuration: mean +- sd DSC at rounds 0, 1, 3, 5 and the last, NoI, NoF, AUC, NSD, effort
AUC, seconds per round, user minutes, failed cases. Tests, on the cases both runs finished: two-sided
Wilcoxon signed-rank of per-case final DSC and of per-case AUC against the reference run (`--reference`,
default the best by AUC), Holm-corrected within each metric over the comparisons; a Friedman test across
all runs on their common cases; and the smallest mean difference in final DSC these cases can detect
(alpha 0.05, power 0.8). The Pareto front: the runs no other run beats on seconds per round, user
minutes, final DSC and AUC at once.

Written under `--out` (default `runs/reports/<sweep>`): `report.md` and `index.html` (the page),
`report.csv`, `curves.png` (mean DSC per round, 95% band), `effort.png` (DSC against estimated user
minutes), `final_box.png` (final DSC per case), `pareto.png`.
"""

from __future__ import annotations

import argparse
import ast
import csv
import html
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from iunet_bench.analysis import results
from iunet_bench.core import metrics
from iunet_bench.session.config import ProtocolConfig
from iunet_bench.session.records import RoundRecord

ROUNDS_SHOWN = (0, 1, 3, 5)  # and the last round


@dataclass
class RunData:
    """One job run: its identity, and the round records of the cases it finished."""

    run_id: str
    name: str
    params: dict[str, str]
    records: list[RoundRecord]
    status: str = "FINISHED"
    failed_cases: str = "0"
    expected_cases: list[str] = field(default_factory=list)  # the held-out cases it was to run

    @cached_property
    def protocol(self) -> ProtocolConfig:
        """The run's protocol, from its params (the default protocol for runs older than the key)."""
        keys = {k.split(".", 1)[1]: v for k, v in self.params.items() if k.startswith("protocol.")}
        values = {}
        for k, v in keys.items():
            try:
                values[k] = ast.literal_eval(v)
            except (ValueError, SyntaxError):
                values[k] = v
        if "thresholds" in values:
            values["thresholds"] = tuple(float(t) for t in values["thresholds"])
        for k in ("nsd_tolerance_mm", "time_budget_s", "box_jitter"):
            if k in values:
                values[k] = float(values[k])
        try:
            return ProtocolConfig(**values)
        except ValueError:
            return ProtocolConfig()

    @cached_property
    def curves(self) -> dict[str, list[float]]:
        return results.curves_by_case(self.records)

    @cached_property
    def summary(self) -> dict[str, float]:
        return results.summarise(self.records, self.protocol) if self.records else {}

    @property
    def cases(self) -> list[str]:
        return list(self.curves)

    @property
    def missing_cases(self) -> list[str]:
        return [c for c in self.expected_cases if c not in self.curves]

    def per_case(self, what: str) -> dict[str, float]:
        """Per case: `final` DSC, `auc` of DSC per round, or `nsd` final."""
        if what == "final":
            return {c: v[-1] for c, v in self.curves.items()}
        if what == "auc":
            return {c: metrics.auc(v) for c, v in self.curves.items()}
        if what == "nsd":
            return {c: v[-1] for c, v in results.curves_by_case(self.records, "nsd").items()}
        raise ValueError(what)

    @property
    def last_round(self) -> int:
        return max(len(c) for c in self.curves.values()) - 1

    def last_hd95(self) -> tuple[float, float] | None:
        """(mean, sd) over cases of the last round's HD95 in mm."""
        values = [c[-1] for c in results.curves_by_case(self.records, "hd95").values()]
        if not values:
            return None
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0

    def at_round(self, k: int) -> tuple[float, float] | None:
        """(mean, sd) of DSC over cases at round k, None when the run has no round k."""
        values = [c[k] for c in self.curves.values() if k < len(c)]
        if not values or len(values) < len(self.curves):
            return None
        return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


FOLD = "data.split.fold"


def pool_folds(runs: list[RunData]) -> list[RunData]:
    """Runs that differ only in the held-out fold, pooled into one configuration by case (every case is
    held out by one fold), so a cross-validation is compared on all its cases; other runs as they are."""
    groups: dict[tuple, list[RunData]] = {}
    for r in runs:
        key = tuple(sorted((k, v) for k, v in r.params.items() if k != FOLD))
        groups.setdefault(key, []).append(r)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        folds = sorted(m.params.get(FOLD, "?") for m in members)
        first = members[0]
        status = next((m.status for m in members if m.status != "FINISHED"), "FINISHED")
        failed = sum(int(m.failed_cases) for m in members if m.failed_cases.isdigit())
        out.append(
            RunData(
                "+".join(m.run_id for m in members),
                f"{first.name} (folds {','.join(folds)})",
                {**first.params, FOLD: "pooled"},
                [rec for m in members for rec in m.records],
                status,
                str(failed),
                [c for m in members for c in m.expected_cases],
            )
        )
    return out


# ------------------------------------------------------------------------------------------ statistics


def paired(a: RunData, b: RunData, what: str = "final") -> tuple[np.ndarray, np.ndarray]:
    """Per-case values of two runs on the cases both finished, in one order."""
    va, vb = a.per_case(what), b.per_case(what)
    cases = sorted(set(va) & set(vb))
    return np.array([va[c] for c in cases]), np.array([vb[c] for c in cases])


def wilcoxon_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p of paired values; NaN with fewer than 2 pairs or no difference."""
    from scipy.stats import wilcoxon

    if len(a) < 2 or np.allclose(a, b):
        return float("nan")
    return float(wilcoxon(a, b, zero_method="zsplit").pvalue)


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-adjusted p-values of the finite ones (statsmodels' multipletests); NaN stays NaN."""
    from statsmodels.stats.multitest import multipletests

    tested = {k: v for k, v in pvalues.items() if np.isfinite(v)}
    out = dict.fromkeys(pvalues, float("nan"))
    if tested:
        out.update(zip(tested, multipletests(list(tested.values()), method="holm")[1]))
    return out


def choose_reference(runs: list[RunData], reference: str | None) -> RunData:
    """The run named (run id, its prefix, or its label) by `reference`, else the best by AUC."""
    if reference:
        for r in runs:
            if reference in (r.run_id, r.name, label(r, varying_params(runs))) or r.run_id.startswith(
                reference
            ):
                return r
        raise SystemExit(
            f"report: --reference {reference!r} names no run of this report: {[r.name for r in runs]}"
        )
    return max(runs, key=lambda r: r.summary.get("dsc_auc", -1.0))


def comparisons(runs: list[RunData], ref: RunData) -> dict[str, dict[str, float]]:
    """{run id: {p_final, p_final_holm, p_auc, p_auc_holm, n}} against the reference run."""
    out: dict[str, dict[str, float]] = {r.run_id: {} for r in runs if r.run_id != ref.run_id}
    for what in ("final", "auc"):
        raw = {}
        for r in runs:
            if r.run_id == ref.run_id:
                continue
            a, b = paired(r, ref, what)
            raw[r.run_id] = wilcoxon_p(a, b)
            out[r.run_id]["n"] = len(a)
        for run_id, q in holm(raw).items():
            out[run_id][f"p_{what}"] = raw[run_id]
            out[run_id][f"p_{what}_holm"] = q
    return out


def common_finals(runs: list[RunData]) -> tuple[list[str], np.ndarray]:
    """(cases every run finished, final DSC array (runs x cases))."""
    finals = [r.per_case("final") for r in runs]
    cases = sorted(set.intersection(*(set(f) for f in finals))) if runs else []
    return cases, np.array([[f[c] for c in cases] for f in finals], float)


def friedman(runs: list[RunData]) -> tuple[float, int]:
    """(p of the Friedman test that all runs' per-case final DSC come from one distribution, cases used);
    NaN with fewer than 3 runs or 2 common cases, or when every run gave the same values."""
    from scipy.stats import friedmanchisquare

    cases, finals = common_finals(runs)
    if len(runs) < 3 or len(cases) < 2 or np.allclose(finals, finals[:1]):
        return float("nan"), len(cases)
    return float(friedmanchisquare(*finals).pvalue), len(cases)


def detectable_difference(
    runs: list[RunData], ref: RunData, alpha: float = 0.05, power: float = 0.8
) -> float:
    """The smallest mean paired difference in final DSC against the reference that a two-sided test at
    `alpha` finds with probability `power` on these cases: (z_{1-alpha/2} + z_power) * sd / sqrt(n), the
    sd of the paired differences (median over the comparisons), divided by sqrt(0.955) for the Wilcoxon
    test's efficiency relative to the t test (normal approximation)."""
    from scipy.stats import norm

    sds, ns = [], []
    for r in runs:
        if r.run_id == ref.run_id:
            continue
        a, b = paired(r, ref)
        if len(a) >= 2:
            sds.append(np.std(a - b, ddof=1))
            ns.append(len(a))
    if not sds:
        return float("nan")
    z = norm.ppf(1 - alpha / 2) + norm.ppf(power)
    return float(z * np.median(sds) / np.sqrt(min(ns)) / np.sqrt(0.955))


def pairwise_tests(
    runs: list[RunData], what: str = "final"
) -> dict[tuple[str, str], tuple[float, float, int]]:
    """{(run a, run b): (p, Holm-adjusted p over all pairs, n cases)}: two-sided Wilcoxon of per-case
    values on the cases both finished, for every pair of runs (the paper's test between models)."""
    raw, sizes = {}, {}
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            x, y = paired(a, b, what)
            raw[(a.run_id, b.run_id)], sizes[(a.run_id, b.run_id)] = wilcoxon_p(x, y), len(x)
    adjusted = holm({f"{a}|{b}": p for (a, b), p in raw.items()})
    return {(a, b): (p, adjusted[f"{a}|{b}"], sizes[(a, b)]) for (a, b), p in raw.items()}


PARETO = (("round_seconds", -1), ("user_seconds", -1), ("dsc_final", 1), ("dsc_auc", 1))  # (key, better)


def pareto_front(runs: list[RunData]) -> set[str]:
    """Run ids no other run dominates: at least as good on every objective of `PARETO`, better on one."""

    def score(r):
        return np.array([sign * r.summary.get(k, np.nan) for k, sign in PARETO])

    scores = {r.run_id: score(r) for r in runs}
    front = set()
    for r in runs:
        s = scores[r.run_id]
        dominated = any(
            np.all(o >= s) and np.any(o > s)
            for rid, o in scores.items()
            if rid != r.run_id and np.isfinite(o).all()
        )
        if not dominated and np.isfinite(s).all():
            front.add(r.run_id)
    return front


def mean_band(curves: dict[str, list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Mean per round over cases and its 95% confidence interval (Student t; the mean alone for one case)."""
    from scipy.stats import t

    values = np.array(list(curves.values()), float)
    mean = values.mean(axis=0)
    n = len(values)
    if n < 2:
        return list(mean), list(mean), list(mean)
    half = t.ppf(0.975, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    return list(mean), list(mean - half), list(mean + half)


# ------------------------------------------------------------------------------------------ the page


def varying_params(runs: list[RunData]) -> list[str]:
    """The params that differ between runs, a differing preset standing for all of its keys."""
    preset_keys = {
        "simulator": "simulator.name",
        "model": "model.name",
        "interact": "interact.method",
        "data": "data.source",
        "protocol": "protocol.name",
    }
    keys = sorted({k for r in runs for k in r.params})
    varying = [k for k in keys if len({r.params.get(k) for r in runs}) > 1]
    collapsed = {group for group, name in preset_keys.items() if name in varying}
    shown = {name for group, name in preset_keys.items() if name in varying}
    if "protocol" in collapsed:  # a protocol sets the robot and the rounds: its name says it
        collapsed |= {"simulator", "session"}
        shown.discard("simulator.name")
    return [k for k in varying if k in shown or k.split(".")[0] not in collapsed]


def _short(key: str) -> str:
    """`protocol.name` -> `protocol`, `interact.weights.scribble` -> `scribble`: a label's key."""
    parts = key.split(".")
    return parts[0] if parts[-1] in ("name", "method", "source") else parts[-1]


def label(run: RunData, varying: list[str]) -> str:
    return ", ".join(f"{_short(k)}={run.params.get(k)}" for k in varying) or run.name


def _mean_sd(values: tuple[float, float] | None) -> str:
    return "" if values is None else f"{values[0]:.3f} ± {values[1]:.3f}"


def _f(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) and np.isfinite(value) else ""


def _p(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) and np.isfinite(value) else "n/a"


def table(runs: list[RunData], ref: RunData, varying: list[str]) -> tuple[list[str], list[list[str]]]:
    """The report's header and rows (one per run)."""
    tests = comparisons(runs, ref)
    front = pareto_front(runs)
    thresholds = ref.protocol.thresholds
    names = [ref.protocol.threshold_name(t) for t in thresholds]
    longest = max(len(c) for r in runs for c in r.curves.values()) - 1
    shown = [k for k in ROUNDS_SHOWN if k < longest]  # a run without round k leaves its cell empty
    header = ["run", *varying, "status", "cases"]
    header += [f"DSC r{k}" for k in shown] + ["rounds", "DSC last"]
    header += [f"NoI@{n}" for n in names] + [f"NoF@{names[-1]}", "AUC", "NSD last", "HD95 last", "effort AUC"]
    header += ["gain over paste", "rounds honoured"]
    header += ["s/round", "user min", "failed", "p final (Holm)", "p AUC (Holm)", "n", "Pareto"]
    rows = []
    for r in runs:
        s = r.summary
        t = tests.get(r.run_id)
        ps = (
            ["reference"] * 2
            if t is None
            else [
                f"{_p(t['p_final'])} ({_p(t['p_final_holm'])})",
                f"{_p(t['p_auc'])} ({_p(t['p_auc_holm'])})",
            ]
        )
        n = str(len(r.cases)) if t is None else str(t["n"])
        rows.append(
            [
                label(r, varying),
                *[r.params.get(k, "") for k in varying],
                r.status,
                f"{len(r.cases)}/{len(r.expected_cases) or len(r.cases)}",
                *[_mean_sd(r.at_round(k)) for k in shown],
                str(r.last_round),
                _mean_sd(r.at_round(r.last_round)),
                *[_f(s.get(f"noi_{n}"), 1) for n in names],
                _f(s.get(f"nof_{names[-1]}"), 0),
                _f(s.get("dsc_auc")),
                _f(s.get("nsd_final")),
                _mean_sd(r.last_hd95()),
                _f(s.get("effort_auc")),
                _f(s.get("dsc_gain_over_paste", float("nan")), 3),
                _f(s.get("rounds_honoured", float("nan")), 2),
                _f(s.get("round_seconds"), 2),
                _f(s.get("user_seconds", float("nan")) / 60, 1),
                r.failed_cases,
                *ps,
                n,
                "yes" if r.run_id in front else "",
            ]
        )
    return header, rows


def notes(
    runs: list[RunData],
    ref: RunData,
    missing_jobs: list[str],
    chosen: bool = False,
    labels: dict | None = None,
) -> list[str]:
    """What the table's tests mean, which differences these cases can tell apart, and what is missing
    (`labels`: run id -> the name the table gives it)."""
    labels = labels or {r.run_id: r.name for r in runs}
    front = [r for r in runs if r.run_id in pareto_front(runs)]
    tests = comparisons(runs, ref)
    n = min((t["n"] for t in tests.values()), default=len(ref.cases))
    out = [
        f"Reference: {labels[ref.run_id]} ({'chosen with --reference' if chosen else 'the best by AUC'}). p: two-sided Wilcoxon signed-rank of "
        f"per-case final DSC and per-case AUC against it, on the cases both runs finished (n per row, at "
        f"least {n}); in brackets Holm-adjusted over the {len(tests)} comparisons of each metric."
    ]
    if n < 6:
        out.append(f"With {n} paired cases no two-sided Wilcoxon test can reach p < 0.05: add cases.")
    p_all, n_common = friedman(runs)
    if np.isfinite(p_all):
        out.append(
            f"Friedman test across the {len(runs)} runs on their {n_common} common cases: p = {p_all:.3g}."
        )
    mde = detectable_difference(runs, ref)
    if np.isfinite(mde):
        out.append(
            f"Smallest mean difference in final DSC against the reference these cases detect (alpha 0.05, "
            f"power 0.8): {mde:.3f}."
        )
    if front:
        pairs = []
        for i, a in enumerate(front):
            for b in front[i + 1 :]:
                p = wilcoxon_p(*paired(a, b))
                verdict = "told apart" if np.isfinite(p) and p < 0.05 else "not told apart"
                pairs.append(f"{labels[a.run_id]} vs {labels[b.run_id]}: p = {_p(p)} ({verdict})")
        out.append(
            "Pareto front (no other run is at least as fast per round, as quick for the user, and as good in "
            f"final DSC and AUC): {', '.join(labels[r.run_id] for r in front)}."
            + (f" Final DSC between them: {'; '.join(pairs)}." if pairs else "")
        )
    for r in runs:
        if r.status != "FINISHED" or r.missing_cases:
            out.append(
                f"{labels[r.run_id]}: {r.status}, missing cases: {', '.join(r.missing_cases) or 'none'}."
            )
    if missing_jobs:
        out.append(f"Jobs of the sweep with no run yet: {'; '.join(missing_jobs)}.")
    out.append("User time comes from the robots' time models (assumptions, README.md Configuration).")
    return out


def build_report(runs: list[RunData], out: Path, reference: str | None = None, missing_jobs=()) -> str:
    """Write the page, its table and plots under `out`; return the page as markdown."""
    from iunet_bench.analysis.plots import plot_band, plot_box, plot_effort, plot_pareto

    runs = pool_folds([r for r in runs if r.records])
    if not runs:
        raise SystemExit("report: no run has a finished case to compare")
    out.mkdir(parents=True, exist_ok=True)
    ref = choose_reference(runs, reference)
    varying = varying_params(runs)
    header, rows = table(runs, ref, varying)
    with (out / "report.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    labels = {r.run_id: label(r, varying) for r in runs}
    plot_band(out / "curves.png", {labels[r.run_id]: mean_band(r.curves) for r in runs})
    effort = {}
    for r in runs:
        seconds = np.array(list(results.user_seconds(r.records).values()), float)
        effort[labels[r.run_id]] = (list(seconds.mean(axis=0) / 60), mean_band(r.curves)[0])
    plot_effort(out / "effort.png", effort)
    plot_box(out / "final_box.png", {labels[r.run_id]: list(r.per_case("final").values()) for r in runs})
    front = pareto_front(runs)
    plot_pareto(
        out / "pareto.png",
        {
            labels[r.run_id]: (
                r.summary["round_seconds"],
                r.summary["user_seconds"] / 60,
                r.summary["dsc_final"],
            )
            for r in runs
        },
        {labels[rid] for rid in front},
    )
    text = notes(runs, ref, list(missing_jobs), chosen=reference is not None, labels=labels)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in rows]
    md += [""] + [f"- {line}" for line in text]
    pair_header, pair_rows = (
        pair_table(runs, [labels[r.run_id] for r in runs]) if 2 < len(runs) <= 8 else ([], [])
    )
    if pair_rows:
        md += ["", "Final DSC, every pair of runs: Wilcoxon p (Holm-adjusted over all pairs), n cases", ""]
        md += ["| " + " | ".join(pair_header) + " |", "|---" * len(pair_header) + "|"]
        md += ["| " + " | ".join(row) + " |" for row in pair_rows]
    figures = [
        ("curves.png", "Mean DSC per round with its 95% confidence band"),
        ("effort.png", "Mean DSC against the user's estimated minutes"),
        ("final_box.png", "Final DSC per case"),
        ("pareto.png", "Cost against final DSC; filled markers: the Pareto front"),
    ]
    page = ["# Interactive segmentation report", "", *md, ""]
    page += [f"## {title}\n\n![{title}]({name})\n" for name, title in figures]
    (out / "report.md").write_text("\n".join(page), encoding="utf-8")
    (out / "index.html").write_text(
        _html(header, rows, text, figures, (pair_header, pair_rows)), encoding="utf-8"
    )
    return "\n".join(md)


def pair_table(runs: list[RunData], names: list[str]) -> tuple[list[str], list[list[str]]]:
    """The upper triangle of `pairwise_tests` as a table: p (Holm), n per pair of runs."""
    tests = pairwise_tests(runs)
    rows = []
    for i, a in enumerate(runs[:-1]):
        cells = []
        for j, b in enumerate(runs[1:], start=1):
            t = tests.get((a.run_id, b.run_id))
            cells.append("" if j <= i or t is None else f"{_p(t[0])} ({_p(t[1])}), n={t[2]}")
        rows.append([names[i], *cells])
    return ["", *names[1:]], rows


def _table_html(header, rows) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(header, rows, text, figures, pairs=((), ())) -> str:
    e = html.escape
    items = "".join(f"<li>{e(t)}</li>" for t in text)
    figs = "".join(f'<h2>{e(t)}</h2><img src="{n}" alt="{e(t)}" style="max-width:100%">' for n, t in figures)
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>iunet_bench report</title><style>{style}</style>"
        f"</head><body><h1>Interactive segmentation report</h1>{_table_html(header, rows)}<ul>{items}</ul>"
        + (
            f"<h2>Final DSC, every pair of runs: Wilcoxon p (Holm over all pairs), n</h2>{_table_html(*pairs)}"
            if pairs[1]
            else ""
        )
        + f"{figs}</body></html>"
    )


# ------------------------------------------------------------------------------------------ reading MLflow


def select_runs(client, experiment: str, sweep: str | None = None, parent: str | None = None):
    """(job runs of one sweep (its latest parent run when only the sweep name is given) or of the
    experiment, the parent run or None)."""
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
    runs = client.search_runs(ids, query, order_by=["attributes.start_time ASC"])
    return runs, (client.get_run(parent) if parent else None)


def read_run(client, run) -> RunData:
    from iunet_bench.tracking.resume import load_previous

    cases = load_previous(client, run).cases
    expected = [c for c in run.data.tags.get("held_out_cases", "").split(",") if c]
    order = expected + sorted(c for c in cases if c not in expected)
    records = [rec for c in order if c in cases for rec in cases[c]]
    return RunData(
        run.info.run_id,
        run.info.run_name or run.info.run_id[:8],
        dict(run.data.params),
        records,
        run.info.status,
        run.data.tags.get("failed_cases", "?"),
        expected,
    )


def missing_jobs(client, parent) -> list[str]:
    """The sweep's planned jobs (the parent's `jobs.json` artifact) that have no run."""
    import json
    import tempfile

    if parent is None:
        return []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            planned = json.loads(
                Path(client.download_artifacts(parent.info.run_id, "jobs.json", tmp)).read_text()
            )
    except Exception:  # an older sweep without the plan: nothing to compare with
        return []
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    started = {r.data.tags.get("job_overrides") for r in children}
    return [" ".join(job) or "(no overrides)" for job in planned if " ".join(job) not in started]


def report(
    uri: str, experiment: str, sweep: str | None, parent: str | None, out: Path, reference: str | None = None
) -> str:
    import mlflow

    from iunet_bench.tracking.tracker import store_uri

    client = mlflow.MlflowClient(store_uri(uri))
    found, parent_run = select_runs(client, experiment, sweep, parent)
    runs = [read_run(client, r) for r in found]
    return build_report(runs, out, reference, missing_jobs(client, parent_run))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m iunet_bench.analysis.report", description=__doc__.splitlines()[0]
    )
    from iunet_bench.tracking.tracker import TrackingConfig

    defaults = TrackingConfig()  # the job's own defaults: the report reads where jobs write
    parser.add_argument("--uri", default=defaults.uri, help="MLflow tracking URI")
    parser.add_argument("--experiment", default=defaults.experiment)
    parser.add_argument("--sweep", help="sweep name (tag `sweep`): its latest parent run")
    parser.add_argument("--parent", help="parent run id of a sweep")
    parser.add_argument(
        "--reference", help="run id (or its prefix, or its name) the others are tested against"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the page, its table and plots")
    args = parser.parse_args(argv)
    out = args.out or Path("runs") / "reports" / (args.sweep or args.parent or "all")
    print(report(args.uri, args.experiment, args.sweep, args.parent, out, args.reference))
    print(
        f"\nwritten: {out / 'index.html'} (and report.md, report.csv, curves.png, effort.png, final_box.png, pareto.png)"
    )


if __name__ == "__main__":
    main()
