"""The paper's second experiment, simulated (`task=observers`, `experiment=observers`).

Observers (as many as `observers.manual` names) segment every held-out case twice:

1. manually: `simulators.manual.contour_case` with the observer's contouring style, every axial slice of the
   organ, and its time model (seconds per slice, per contour, per cm drawn);
2. interactively: from the job's baseline, `session.rounds` rounds of the job's refiner with the observer's
   scribble robot (`observers.interactive`, a `conf/simulator/` preset) and the observer's own seed; time
   = the robot's estimated seconds over the rounds (strokes, slices, waiting for the network).

The paper's readers each did half of the cases in each mode (against the learning effect); a robot does not
learn, so every observer does every case both ways, and every comparison is paired. Reported as the paper's
table 1 and figures 5-7: the observers' pairwise DSC of the manual masks (mean with a 95% t interval over
cases; the same for the interactive masks), manual against interactive DSC to the reference, manual against
interactive minutes, automatic (round 0) against interactive DSC, each with a two-sided Wilcoxon
signed-rank test over (case, observer) pairs. All times come from time models whose constants are
assumptions: the output says so.
"""

from __future__ import annotations

import csv
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iunet_bench.analysis import stats
from iunet_bench.core import metrics
from iunet_bench.core.rng import derive_rng
from iunet_bench.core.runtime import output_dir
from iunet_bench.session.loop import run_session
from iunet_bench.session.records import measure
from iunet_bench.tasks.config import CONF_DIR, JobConfig
from iunet_bench.tasks.prepare import prepare, show_progress
from iunet_bench.tracking import tracker as tracking

PAPER = {  # the paper's numbers (section 3, table 1), for orderings, not for absolute values
    "observer_dsc_manual": 0.86,
    "dsc_manual": 0.875,
    "dsc_interactive": 0.860,
    "time_reduction_median": 0.484,
}


@dataclass(frozen=True)
class Segmentation:
    case_id: str
    observer: int
    mode: str  # manual | interactive | automatic
    dsc: float
    nsd: float
    seconds: float
    mask: np.ndarray


def observer_robot(name: str):
    import yaml

    from simulators.config import make_annotator

    path = CONF_DIR / "simulator" / f"{name}.yaml"
    return make_annotator(yaml.safe_load(path.read_text(encoding="utf-8")))


def segment_case(setup, volume, initial: np.ndarray) -> list[Segmentation]:
    """Every observer's manual and interactive segmentation of one case, and the automatic one."""
    from simulators.manual import OBSERVERS, contour_case

    config: JobConfig = setup.config
    tol = config.protocol.nsd_tolerance_mm
    auto = measure(volume, initial, tol)
    out = [Segmentation(volume.case_id, -1, "automatic", auto["dsc"], auto["nsd"], 0.0, initial)]
    for i, (style, robot_name) in enumerate(zip(config.observers.manual, config.observers.interactive)):
        manual = contour_case(
            volume.label,
            volume.spacing,
            derive_rng(config.seed, volume.case_id, "manual", i),
            OBSERVERS[style],
        )
        m = measure(volume, manual.mask, tol)
        out.append(Segmentation(volume.case_id, i, "manual", m["dsc"], m["nsd"], manual.seconds, manual.mask))
        last: dict = {}
        seed = int(derive_rng(config.seed, "observer", i).integers(2**31))
        records = run_session(
            volume,
            initial,
            observer_robot(robot_name),
            setup.refiner(),
            config.session.rounds,
            seed,
            config.session.target_dsc,
            on_round=lambda rec, pred, _, last=last: last.update(mask=pred),
            nsd_tolerance_mm=tol,
            undo=config.session.undo,
        )
        seconds = float(sum(r.effort.get("seconds", 0.0) for r in records))
        end = records[-1]
        out.append(Segmentation(volume.case_id, i, "interactive", end.dsc, end.nsd, seconds, last["mask"]))
    return out


def pairwise(segs: list[Segmentation], mode: str) -> dict[tuple[int, int], list[float]]:
    """Per pair of observers, the DSC between their masks of each case."""
    by_case: dict[str, dict[int, np.ndarray]] = {}
    for s in segs:
        if s.mode == mode:
            by_case.setdefault(s.case_id, {})[s.observer] = s.mask
    out: dict[tuple[int, int], list[float]] = {}
    for masks in by_case.values():
        for a, b in itertools.combinations(sorted(masks), 2):
            out.setdefault((a, b), []).append(metrics.dsc(masks[a], masks[b]))
    return out


def summarise(segs: list[Segmentation]) -> dict[str, float]:
    """The experiment's numbers (see the module docstring)."""
    key = {(s.case_id, s.observer, s.mode): s for s in segs}
    pairs = sorted({(s.case_id, s.observer) for s in segs if s.mode == "manual"})
    manual = [key[(c, o, "manual")] for c, o in pairs]
    inter = [key[(c, o, "interactive")] for c, o in pairs]
    auto = [key[(c, -1, "automatic")] for c, _ in pairs]
    out = {}
    for mode in ("manual", "interactive"):
        per_case = np.mean(list(pairwise(segs, mode).values()), axis=0)  # mean over pairs, per case
        mean, lo, hi = (float(x) for x in stats.mean_ci(per_case, bounds=(0.0, 1.0)))  # DSC range
        out.update(
            {f"observer_dsc_{mode}": mean, f"observer_dsc_{mode}_lo": lo, f"observer_dsc_{mode}_hi": hi}
        )
    reduction = [1.0 - i.seconds / m.seconds for m, i in zip(manual, inter) if m.seconds > 0]
    out.update(
        dsc_manual=float(np.mean([s.dsc for s in manual])),
        dsc_interactive=float(np.mean([s.dsc for s in inter])),
        dsc_automatic=float(np.mean([s.dsc for s in auto])),
        nsd_manual=float(np.mean([s.nsd for s in manual])),
        nsd_interactive=float(np.mean([s.nsd for s in inter])),
        minutes_manual_median=float(np.median([s.seconds for s in manual]) / 60),
        minutes_interactive_median=float(np.median([s.seconds for s in inter]) / 60),
        time_reduction_median=float(np.median(reduction)) if reduction else float("nan"),
        p_dsc_manual_vs_interactive=stats.wilcoxon_p([s.dsc for s in manual], [s.dsc for s in inter]),
        p_time_manual_vs_interactive=stats.wilcoxon_p(
            [s.seconds for s in manual], [s.seconds for s in inter]
        ),
        p_dsc_automatic_vs_interactive=stats.wilcoxon_p([s.dsc for s in auto], [s.dsc for s in inter]),
        pairs=float(len(pairs)),
    )
    return out


def format_table(segs: list[Segmentation], m: dict[str, float], names: list[str]) -> str:
    """Table 1 (pairwise manual DSC) and the comparisons, next to the paper's numbers."""
    n = len(names)
    manual = pairwise(segs, "manual")
    lines = ["Table 1, simulated: pairwise DSC of the observers' manual masks (mean over cases)", ""]
    lines.append("| observer | " + " | ".join(names) + " |")
    lines.append("|---" * (n + 1) + "|")
    for a in range(n):
        cells = ["" if b < a else "1" if b == a else f"{np.mean(manual[(a, b)]):.3f}" for b in range(n)]
        lines.append(f"| {names[a]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Average inter-observer DSC, manual: {m['observer_dsc_manual']:.3f} (95% CI {m['observer_dsc_manual_lo']:.3f}-"
        f"{m['observer_dsc_manual_hi']:.3f}); paper: 0.86 (0.85-0.87). Interactive: {m['observer_dsc_interactive']:.3f} "
        f"({m['observer_dsc_interactive_lo']:.3f}-{m['observer_dsc_interactive_hi']:.3f}).",
        "",
        "| against the reference | simulated | paper |",
        "|---|---|---|",
        f"| DSC manual | {m['dsc_manual']:.3f} | 0.875 |",
        f"| DSC interactive | {m['dsc_interactive']:.3f} | 0.860 |",
        f"| DSC automatic (round 0) | {m['dsc_automatic']:.3f} | (figure 7) |",
        f"| p manual vs interactive DSC (Wilcoxon) | {m['p_dsc_manual_vs_interactive']:.3g} | 0.017 |",
        f"| median minutes manual / interactive | {m['minutes_manual_median']:.1f} / {m['minutes_interactive_median']:.1f} | about 15 / 8 |",
        f"| median time reduction | {m['time_reduction_median']:.1%} | 48.4% |",
        f"| p manual vs interactive time | {m['p_time_manual_vs_interactive']:.3g} | < 0.001 |",
        f"| p automatic vs interactive DSC | {m['p_dsc_automatic_vs_interactive']:.3g} | < 0.001 |",
        "",
        f"{int(m['pairs'])} (case, observer) pairs. Times come from the robots' time models, whose constants are "
        "assumptions (simulators/manual.py, simulators/effort.py), not measurements: compare orderings with the "
        "paper, not absolute values.",
    ]
    return "\n".join(lines)


def write_outputs(out: Path, segs: list[Segmentation], names: list[str]) -> list[Path]:
    from iunet_bench.analysis.plots import plot_box

    rows = [
        (s.case_id, names[s.observer] if s.observer >= 0 else "", s.mode, s.dsc, s.nsd, s.seconds)
        for s in segs
    ]
    path = out / "observers.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "observer", "mode", "dsc", "nsd", "seconds"])
        writer.writerows(rows)
    by = {mode: [s for s in segs if s.mode == mode] for mode in ("manual", "interactive", "automatic")}
    plot_box(
        out / "dsc_manual_vs_interactive.png",
        {m: [s.dsc for s in by[m]] for m in ("manual", "interactive")},
        "DSC to the reference (figure 5)",
    )
    plot_box(
        out / "minutes.png",
        {m: [s.seconds / 60 for s in by[m]] for m in ("manual", "interactive")},
        "estimated minutes per case (figure 6; assumptions)",
    )
    plot_box(
        out / "dsc_automatic_vs_interactive.png",
        {m: [s.dsc for s in by[m]] for m in ("automatic", "interactive")},
        "DSC to the reference (figure 7)",
    )
    return [
        path,
        out / "dsc_manual_vs_interactive.png",
        out / "minutes.png",
        out / "dsc_automatic_vs_interactive.png",
    ]


def run(config: JobConfig) -> tuple[str, dict[str, float], str]:
    """The experiment: (MLflow run id, summary metrics, the printed table). A case that fails is named and
    skipped; the others go on."""
    from iunet_bench.interactive.refiner import predict_mask

    setup = prepare(config)
    out = output_dir()
    t = config.tracking
    tracker = tracking.Tracker(
        t.uri,
        t.experiment,
        t.artifact_root,
        run_name=t.run_name or "observers " + "+".join(config.observers.interactive),
        parent_run_id=tracking.parent_run_id_for_job(),
        tags={"kind": "observers", "sweep": tracking.sweep_name(t), "git_commit": tracking.git_commit()},
        client=tracking.open_client(t.uri, t.limits(show_progress(config))),
    )
    status = "FAILED"
    try:
        tracker.log_params(tracking.params(config.params()))
        volumes = setup.volumes()
        baseline = setup.baseline()
        segs, failed = [], []
        from tqdm.auto import tqdm

        for volume in tqdm(
            volumes.test, desc="cases (every observer, both ways)", disable=not show_progress(config)
        ):
            try:
                segs += segment_case(setup, volume, predict_mask(baseline.model, volume.image))
            except Exception as exc:  # one bad case never loses the others
                failed.append(volume.case_id)
                print(f"FAILED case {volume.case_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        tracker.set_tags({"failed_cases": str(len(failed) + len(volumes.failures))})
        if not segs:
            return tracker.run_id, {}, "no case finished"
        names = list(config.observers.manual)
        m = summarise(segs)
        tracker.log_metrics((k, v, 0) for k, v in m.items() if np.isfinite(v))
        text = format_table(segs, m, names)
        (out / "observers.md").write_text(text + "\n", encoding="utf-8")
        for path in [out / "observers.md", *write_outputs(out, segs, names)]:
            tracker.log_artifact(path)
        status = "FINISHED"
        return tracker.run_id, m, text
    finally:
        tracker.end(status)
