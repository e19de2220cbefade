"""The report's page: the table (one row per run), the notes under it, the pairwise table, the plots, and
the files they are written to (`report.md`, `index.html`, `report.csv`, four PNGs)."""

from __future__ import annotations

import csv
import html
from pathlib import Path

import numpy as np

from iunet_bench.analysis import results, stats
from iunet_bench.analysis.report.compare import (
    choose_reference,
    comparisons,
    detectable_difference,
    friedman,
    mean_band,
    paired,
    pairwise_tests,
    pareto_front,
)
from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.analysis.report.runs import RunData, label, pool_folds, varying_params

ROUNDS_SHOWN = (0, 1, 3, 5)  # and the last round


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
    header += ["gain over painter", "p vs painter", "rounds honoured"]
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
                _f(s.get("dsc_gain_over_painter", float("nan")), 3),
                _p(s.get("painter_p_final", float("nan"))),
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


def class_table(runs: list[RunData], labels: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """One row per class of each run with `data.classes` (`RunData.classes`): its sessions' DSC at round 0
    and last (mean ± sd), AUC, NSD, NoI, the painter's final DSC and the method's gain over it; ([], [])
    when no run has classes."""
    rows = []
    names = []
    for r in runs:
        for name, part in r.classes.items():
            s = part.summary
            names = names or [part.protocol.threshold_name(t) for t in part.protocol.thresholds]
            rows.append(
                [
                    labels[r.run_id],
                    name,
                    f"{len(part.cases)}/{len(part.expected_cases) or len(part.cases)}",
                    _mean_sd(part.at_round(0)),
                    _mean_sd(part.at_round(part.last_round)),
                    _f(s.get("dsc_auc")),
                    _f(s.get("nsd_final")),
                    *[_f(s.get(f"noi_{n}"), 1) for n in names],
                    _f(s.get("painter_dsc_final", float("nan"))),
                    _f(s.get("dsc_gain_over_painter", float("nan"))),
                ]
            )
    if not rows:
        return [], []
    header = ["run", "class", "cases", "DSC r0", "DSC last", "AUC", "NSD last", *[f"NoI@{n}" for n in names]]
    return [*header, "painter last", "gain over painter"], rows


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
                p = stats.wilcoxon_p(*paired(a, b))
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
        raise ReportError("report: no run has a finished case to compare")
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
    md = [*_md_table(header, rows), ""] + [f"- {line}" for line in text]
    class_header, class_rows = class_table(runs, labels)
    if class_rows:
        md += ["", "Per class (`data.classes`): each class's sessions, as a run of their own", ""]
        md += _md_table(class_header, class_rows)
        with (out / "report_classes.csv").open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows([class_header, *class_rows])
    pair_header, pair_rows = (
        pair_table(runs, [labels[r.run_id] for r in runs]) if 2 < len(runs) <= 8 else ([], [])
    )
    if pair_rows:
        md += ["", "Final DSC, every pair of runs: Wilcoxon p (Holm-adjusted over all pairs), n cases", ""]
        md += _md_table(pair_header, pair_rows)
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
        _html(header, rows, text, figures, (pair_header, pair_rows), (class_header, class_rows)),
        encoding="utf-8",
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


def _md_table(header, rows) -> list[str]:
    """A Markdown table's lines."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(row) + " |" for row in rows
    ]


def _table_html(header, rows) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _html(header, rows, text, figures, pairs=((), ()), classes=((), ())) -> str:
    e = html.escape
    items = "".join(f"<li>{e(t)}</li>" for t in text)
    figs = "".join(f'<h2>{e(t)}</h2><img src="{n}" alt="{e(t)}" style="max-width:100%">' for n, t in figures)
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>iunet_bench report</title><style>{style}</style>"
        f"</head><body><h1>Interactive segmentation report</h1>{_table_html(header, rows)}<ul>{items}</ul>"
        + (f"<h2>Per class (data.classes)</h2>{_table_html(*classes)}" if classes[1] else "")
        + (
            f"<h2>Final DSC, every pair of runs: Wilcoxon p (Holm over all pairs), n</h2>{_table_html(*pairs)}"
            if pairs[1]
            else ""
        )
        + f"{figs}</body></html>"
    )
