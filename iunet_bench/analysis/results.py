"""A job's results from its round records: pure functions (no MLflow, no files but the CSV writer).

`summarise` gives the tracking contract's summary metrics; `curve_rows` the per-round curves; `rounds_csv`
writes every round of every case; `format_table` is what the console shows.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iunet_bench.core import metrics
from iunet_bench.session.config import ProtocolConfig
from iunet_bench.session.records import RoundRecord


@dataclass
class Summary:
    run_id: str
    curve: list[float]  # mean DSC per round over the finished cases (empty: no case finished)
    metrics: dict[str, float]
    failures: list[dict] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)  # mean refine seconds per round
    curves: dict[str, list[float]] = field(default_factory=dict)  # honesty_curves, for the console table
    classes: dict[str, dict[str, float]] = field(default_factory=dict)  # per class (`analysis.classes`)


def curves_by_case(records: Sequence[RoundRecord], field: str = "dsc") -> dict[str, list[float]]:
    """A record field (default: DSC) per round of each case, in the order the cases ran."""
    out: dict[str, list[float]] = {}
    for r in sorted(records, key=lambda r: r.round):
        out.setdefault(r.case_id, []).append(getattr(r, field))
    return {cid: out[cid] for cid in dict.fromkeys(r.case_id for r in records)}


# The no-learning opponents a method is measured against, by RoundRecord field: the painter (a user who only
# paints, in a session of its own: the headline) and the in-run floor (the method's strokes pasted into its
# previous prediction: a diagnostic). Their metrics: `<name>_dsc_final`, `<name>_dsc_auc`,
# `dsc_gain_over_<name>`, `dsc_auc_over_<name>`; their curves: `dsc_<name>`, `dsc_gain_over_<name>`.
OPPONENTS = {"painter": "painter_dsc", "floor": "floor_dsc"}


def opponent_curves(records: Sequence[RoundRecord], name: str) -> dict[str, list[float]] | None:
    """An opponent's (`OPPONENTS`) DSC per round of each case, or None when the job did not run it."""
    curves = curves_by_case(records, OPPONENTS[name])
    return curves if all(np.isfinite(c).all() for c in curves.values()) else None


def against_painter(records: Sequence[RoundRecord]) -> dict[str, float]:
    """The method against the painter case by case: the share of cases it ends above the painter
    (`painter_case_wins`; a tie counts half) and the two-sided Wilcoxon signed-rank p of the paired final
    DSCs and AUCs (`painter_p_final`, `painter_p_auc`; NaN with fewer than 2 cases or no difference)."""
    from iunet_bench.analysis.stats import wilcoxon_p

    painted = opponent_curves(records, "painter")
    if painted is None:
        return {}
    curves = curves_by_case(records)
    final = np.array([curves[c][-1] for c in curves]), np.array([painted[c][-1] for c in curves])
    auc = (
        np.array([metrics.auc(curves[c]) for c in curves]),
        np.array([metrics.auc(painted[c]) for c in curves]),
    )
    return {
        "painter_case_wins": float(np.mean(np.sign(final[0] - final[1]) / 2 + 0.5)),
        "painter_p_final": wilcoxon_p(*final),
        "painter_p_auc": wilcoxon_p(*auc),
    }


HONOURED = 0.95  # a round honours the user when at least this share of its scribbled voxels keep their label


def honesty(records: Sequence[RoundRecord]) -> dict[str, float]:
    """Whether the method does what the user asked, and what it adds beyond painting: agreement with the
    scribbles (mean over active rounds, and the share of rounds that honour them), rounds whose DSC fell,
    and each opponent's (`OPPONENTS`, those the job ran) final DSC and AUC with the method's gain over
    them, and the method against the painter case by case (`against_painter`)."""
    active = [r for r in records if r.round > 0 and not r.stopped]
    previous = {(r.case_id, r.round): r.dsc for r in records}
    agreement = np.array([r.agreement for r in active], float)
    agreement = agreement[np.isfinite(agreement)]  # a round without scribbled voxels has nothing to honour
    agreement_all = np.array([r.agreement_all for r in active], float)
    agreement_all = agreement_all[np.isfinite(agreement_all)]
    out = {
        "scribble_agreement_mean": float(agreement.mean()) if agreement.size else float("nan"),
        "scribble_agreement_all_mean": float(agreement_all.mean()) if agreement_all.size else float("nan"),
        "rounds_honoured": float(np.mean(agreement >= HONOURED)) if agreement.size else float("nan"),
        "dsc_drop_rounds": float(np.mean([r.dsc < previous[(r.case_id, r.round - 1)] for r in active]))
        if active
        else float("nan"),
        "fine_tune_steps_mean": float(np.mean([len(r.losses) for r in active])) if active else float("nan"),
    }
    offered = [r.undone for r in active if r.undone is not None]  # session.undo: the user could undo
    if offered:
        out["rounds_undone"] = float(np.mean(offered))
    own_final = mean_curve(records)[-1]
    own_auc = float(np.mean([metrics.auc(c) for c in curves_by_case(records).values()]))
    for name in OPPONENTS:
        theirs = opponent_curves(records, name)
        if theirs is None:
            continue
        their_final = float(np.mean([c[-1] for c in theirs.values()]))
        their_auc = float(np.mean([metrics.auc(c) for c in theirs.values()]))
        out.update(
            {
                f"{name}_dsc_final": their_final,
                f"dsc_gain_over_{name}": float(own_final - their_final),
                f"{name}_dsc_auc": their_auc,
                f"dsc_auc_over_{name}": own_auc - their_auc,
            }
        )
    out.update(against_painter(records))
    return out


def summarise(records: Sequence[RoundRecord], protocol: ProtocolConfig | None = None) -> dict[str, float]:
    """Summary metrics of the tracking contract from the round records of the finished cases, measured as
    `protocol` says (default: the `iunet` protocol's thresholds, NSD tolerance and time budget)."""
    protocol = protocol or ProtocolConfig()
    curves = curves_by_case(records)
    nsd = curves_by_case(records, "nsd")
    seconds = user_seconds(records)
    mean = np.mean(np.array(list(curves.values())), axis=0)
    active = [r.refine_seconds for r in records if r.round > 0 and not r.stopped]
    robot = [r.robot_seconds for r in records if r.round > 0 and not r.stopped]
    out = {
        "dsc_baseline": float(mean[0]),
        "dsc_final": float(mean[-1]),
        "dsc_gain": float(mean[-1] - mean[0]),
        "dsc_best": float(mean.max()),
    }
    for t in protocol.thresholds:
        name = protocol.threshold_name(t)
        out[f"noi_{name}"] = float(np.mean([metrics.noi(c, t) for c in curves.values()]))
        # a case that never reaches t counts with all the seconds it took (as NoI counts the last round)
        out[f"seconds_to_{name}"] = float(
            np.mean([min(metrics.seconds_to(curves[c], seconds[c], t), seconds[c][-1]) for c in curves])
        )
    last = protocol.thresholds[-1]
    out[f"nof_{protocol.threshold_name(last)}"] = float(sum(max(c) < last for c in curves.values()))
    out.update(
        dsc_auc=float(np.mean([metrics.auc(c) for c in curves.values()])),
        effort_auc=float(
            np.mean([metrics.effort_auc(curves[c], seconds[c], protocol.time_budget_s) for c in curves])
        ),
        user_seconds=float(np.mean([s[-1] for s in seconds.values()])),
        nsd_baseline=float(np.mean([c[0] for c in nsd.values()])),
        nsd_final=float(np.mean([c[-1] for c in nsd.values()])),
        nsd_auc=float(np.mean([metrics.auc(c) for c in nsd.values()])),
        volume_ratio_final=float(np.mean([r.volume_ratio for r in records if r.round == len(mean) - 1])),
        round_seconds=float(np.mean(active)) if active else 0.0,
        robot_seconds=float(np.mean(robot)) if robot else 0.0,
    )
    out.update(honesty(records))
    return out


def user_seconds(records: Sequence[RoundRecord]) -> dict[str, list[float]]:
    """Per case, the user's cumulative estimated seconds at the end of each round (round 0: 0 s; a round
    after the session stopped costs nothing)."""
    out: dict[str, list[float]] = {}
    for r in sorted(records, key=lambda r: r.round):
        spent = out.setdefault(r.case_id, [])
        spent.append((spent[-1] if spent else 0.0) + float(r.effort.get("seconds", 0.0)))
    return {cid: out[cid] for cid in dict.fromkeys(r.case_id for r in records)}


def mean_curve(records: Sequence[RoundRecord]) -> list[float]:
    return [float(v) for v in np.mean(np.array(list(curves_by_case(records).values())), axis=0)]


def mean_loss_curve(records: Sequence[RoundRecord]) -> list[float]:
    """Mean fine-tuning loss per step over cases; a case that stopped early counts only while it ran."""
    case_ids = list(curves_by_case(records))
    per_case = [[v for r in records if r.case_id == cid for v in r.losses] for cid in case_ids]
    n = max((len(x) for x in per_case), default=0)
    if n == 0:
        return []
    padded = np.full((len(per_case), n), np.nan)
    for i, x in enumerate(per_case):
        padded[i, : len(x)] = x
    return [float(v) for v in np.nanmean(padded, axis=0)]


def cumulative_effort(records: Sequence[RoundRecord], rounds: int) -> dict[str, list[float]]:
    """Mean over cases of the effort spent up to and including each round (round 0 = none)."""
    case_ids = list(curves_by_case(records))
    names = sorted({k for r in records for k in r.effort})
    out = {}
    for name in names:
        per_case = []
        for cid in case_ids:
            series = np.zeros(rounds + 1)
            for r in records:
                if r.case_id == cid and r.round > 0:
                    series[r.round] = r.effort.get(name, 0.0)
            per_case.append(np.cumsum(series))
        out[name] = [float(v) for v in np.mean(per_case, axis=0)]
    return out


def seconds_per_round(records: Sequence[RoundRecord], rounds: int) -> list[float]:
    """Mean refine seconds of each round over the cases that were still active in it."""
    return [
        float(np.mean([r.refine_seconds for r in records if r.round == k and not r.stopped] or [0.0]))
        for k in range(rounds + 1)
    ]


def curve_rows(
    records: Sequence[RoundRecord], rounds: int, summary: dict[str, float] | None = None
) -> list[tuple[str, float, int]]:
    """(metric, value, step) rows of the job's curves and `summary` (default: `summarise(records)`)."""
    rows = [("dsc", v, r) for r, v in enumerate(mean_curve(records))]
    for name in ("hd95", "nsd", "volume_ratio"):  # means over every case (a stopped case's carried on)
        per_round = [[getattr(r, name) for r in records if r.round == k] for k in range(rounds + 1)]
        rows += [(name, float(np.mean(v)), k) for k, v in enumerate(per_round)]
    effort = cumulative_effort(records, rounds)
    rows += [(f"effort_{name}", v, k) for name, series in effort.items() for k, v in enumerate(series)]
    rows += [("loss", v, i) for i, v in enumerate(mean_loss_curve(records))]
    curves = honesty_curves(records, rounds)
    rows += [(name, v, k) for name, series in curves.items() for k, v in enumerate(series)]
    # a summary that is also a curve (dsc_gain_over_paste) is that curve's last value: logged once
    summary = summarise(records) if summary is None else summary
    rows += [(k, v, 0) for k, v in summary.items() if k not in curves]
    return [(k, v, s) for k, v, s in rows if np.isfinite(v)]


def honesty_curves(records: Sequence[RoundRecord], rounds: int) -> dict[str, list[float]]:
    """Per round, over the cases active in it: scribble agreement (this round's, all so far), voxels
    changed; over every case: each opponent's (`OPPONENTS`) mean DSC and the method's mean gain over it
    (NaN where a value does not exist: round 0 has no scribbles; absent: an opponent the job did not run)."""

    def active_mean(value, k):
        xs = [value(r) for r in records if r.round == k and not r.stopped and r.round > 0]
        xs = [x for x in xs if np.isfinite(x)]
        return float(np.mean(xs)) if xs else float("nan")

    out = {
        "scribble_agreement": [active_mean(lambda r: r.agreement, k) for k in range(rounds + 1)],
        "scribble_agreement_all": [active_mean(lambda r: r.agreement_all, k) for k in range(rounds + 1)],
        "changed_voxels": [active_mean(lambda r: r.changed_voxels, k) for k in range(rounds + 1)],
        "fine_tune_steps": [active_mean(lambda r: len(r.losses), k) for k in range(rounds + 1)],
    }
    own = mean_curve(records)
    for name in OPPONENTS:
        theirs = opponent_curves(records, name)
        if theirs is not None:
            their_mean = np.mean(np.array(list(theirs.values())), axis=0)
            out[f"dsc_{name}"] = [float(v) for v in their_mean]
            out[f"dsc_gain_over_{name}"] = [float(a - b) for a, b in zip(own, their_mean)]
    return out


# the per-case curves, one section each in the MLflow UI (the painter's where the job ran it)
CASE_CURVES = ("dsc", "hd95", "nsd", "painter_dsc")


def case_metric(name: str, case_key: str) -> str:
    """A per-case curve's MLflow key, `<metric>/<case>`: the UI groups keys by the part before the first
    `/`, so each metric's per-case charts form one section (and `dsc` itself stays on top)."""
    return f"{name}/{case_key}"


def case_rows(case_key: str, records: Sequence[RoundRecord]) -> list[tuple[str, float, int]]:
    """One case's curves (`dsc/<case>`, `hd95/<case>`, ...), logged as soon as the case finishes."""
    rows = [(case_metric(name, case_key), getattr(r, name), r.round) for name in CASE_CURVES for r in records]
    return [row for row in rows if np.isfinite(row[1])]


def rounds_csv(path: Path, records: Sequence[RoundRecord]) -> Path:
    """Every round of every case, one row each."""
    rows = [r.row() for r in records]
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k not in ("case_id", "round", "dsc"), k))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _p(value: float) -> str:
    return f"p {value:.2g}" if np.isfinite(value) else "no test: under 2 cases, or none differs"


def format_table(summary: Summary) -> str:
    """The console table: per round the mean DSC, its gain, the painter's and the in-run floor's mean DSC
    (when run), the share of the round's scribbled voxels the method labelled as scribbled, and seconds;
    then the summary, the method against the painter (the headline's comparison) and the honesty line."""
    if not summary.curve:
        return "no case finished: see the failures above"
    c = summary.curves
    head = ("round", "DSC", "gain", "painter", "floor", "agree", "seconds")
    lines = ["  ".join(f"{h:>{w}}" for h, w in zip(head, (5, 6, 7, 7, 6, 6, 7)))]
    base = summary.curve[0]

    def cell(name: str, r: int, width: int = 6) -> str:
        series = c.get(name, [])
        return f"{series[r]:{width}.3f}" if r < len(series) and np.isfinite(series[r]) else f"{'':>{width}}"

    for r, v in enumerate(summary.curve):
        secs = f"{summary.round_seconds[r]:7.2f}" if r and r < len(summary.round_seconds) else f"{'':>7}"
        lines.append(
            f"{r:5d}  {v:6.3f}  {v - base:+7.3f}  {cell('dsc_painter', r, 7)}  {cell('dsc_floor', r)}  "
            f"{cell('scribble_agreement', r)}  {secs}"
        )
    m = summary.metrics
    if len(summary.curve) == 1:  # no rounds (task=cv): the automatic segmentation is all there is
        lines.append(
            f"automatic segmentation (round 0, no interaction): DSC {m['dsc_baseline']:.3f}, "
            f"NSD {m['nsd_baseline']:.3f}"
        )
        return "\n".join(lines)
    noi = ", ".join(f"NoI@{k[4:]} {v:.1f}" for k, v in m.items() if k.startswith("noi_"))
    nof = next((f"NoF@{k[4:]} {v:.0f}" for k, v in m.items() if k.startswith("nof_")), "")
    lines.append(
        f"DSC {m['dsc_baseline']:.3f} -> {m['dsc_final']:.3f} (gain {m['dsc_gain']:+.3f}), "
        f"NSD {m['nsd_baseline']:.3f} -> {m['nsd_final']:.3f}, {noi}, {nof}, "
        f"{m['round_seconds']:.2f} s per round, {m['user_seconds'] / 60:.1f} user minutes (estimated)"
    )
    if "painter_dsc_final" in m:
        lines.append(
            f"against a user who only paints (same robot, own strokes pasted in, no learning): painter "
            f"{m['painter_dsc_final']:.3f}; method - painter: final {m['dsc_gain_over_painter']:+.3f} "
            f"({_p(m['painter_p_final'])}), AUC {m['dsc_auc_over_painter']:+.3f} ({_p(m['painter_p_auc'])}); "
            f"method ahead in {m['painter_case_wins']:.0%} of cases (paired Wilcoxon)"
        )
    diagnostics = []
    if "floor_dsc_final" in m:
        diagnostics.append(
            f"in-run floor (this method's strokes pasted into its previous prediction, a diagnostic) "
            f"{m['floor_dsc_final']:.3f} (method - floor {m['dsc_gain_over_floor']:+.3f})"
        )
    if "rounds_undone" in m:
        diagnostics.append(f"the user undid {m['rounds_undone']:.0%} of rounds (session.undo)")
    if np.isfinite(m.get("rounds_honoured", float("nan"))):
        diagnostics.append(
            f"scribbles honoured (>= {HONOURED:.0%} of their voxels) in {m['rounds_honoured']:.0%} of "
            f"rounds, mean agreement {m['scribble_agreement_mean']:.2f}"
        )
    if diagnostics:
        lines.append("; ".join(diagnostics))
    return "\n".join(lines)
