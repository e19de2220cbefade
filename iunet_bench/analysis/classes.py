"""Several structures per case (`data.classes`): a class session's case id is `<class>/<case>`, so a job's
round records group by class. Pure functions, like `results`: each class summarised as a job of its own
sessions would be, its MLflow rows, and the console table with one row per class and their mean.

    summaries = class_summaries(records, protocol)     # {class: {"dsc_final": ..., "dsc_auc": ..., ...}}
    rows = class_rows(records, summaries)               # dsc/<class> per round, dsc_final/<class>, ...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from iunet_bench.analysis.results import mean_curve, summarise
from iunet_bench.session.config import ProtocolConfig
from iunet_bench.session.records import RoundRecord

# each class's summary metrics logged (as `<metric>/<class>`); `noi_<threshold>` too
CLASS_METRICS = (
    "dsc_baseline",
    "dsc_final",
    "dsc_gain",
    "dsc_auc",
    "nsd_final",
    "effort_auc",
    "user_seconds",
    "painter_dsc_final",
    "dsc_gain_over_painter",
)


def class_of(case_id: str) -> str:
    """The class of a class session's case id `<class>/<case>`."""
    return case_id.split("/", 1)[0]


def by_class(records: Sequence[RoundRecord]) -> dict[str, list[RoundRecord]]:
    """The records of each class, classes in the order their sessions ran."""
    out: dict[str, list[RoundRecord]] = {}
    for r in records:
        out.setdefault(class_of(r.case_id), []).append(r)
    return out


def class_summaries(
    records: Sequence[RoundRecord], protocol: ProtocolConfig | None = None
) -> dict[str, dict[str, float]]:
    """Per class, `CLASS_METRICS` and NoI of `results.summarise` over that class's sessions, and `cases`."""
    out = {}
    for name, rs in by_class(records).items():
        s = summarise(rs, protocol)
        kept = {k: v for k, v in s.items() if k in CLASS_METRICS or k.startswith("noi_")}
        out[name] = {"cases": float(len({r.case_id for r in rs})), **kept}
    return out


def class_rows(
    records: Sequence[RoundRecord], summaries: dict[str, dict[str, float]]
) -> list[tuple[str, float, int]]:
    """(metric, value, step) rows: each class's mean DSC per round (`dsc/<class>`, step = round) and its
    summary (`dsc_final/<class>`, ... at step 0)."""
    rows = []
    for name, rs in by_class(records).items():
        rows += [(f"dsc/{name}", v, k) for k, v in enumerate(mean_curve(rs))]
        rows += [(f"{k}/{name}", v, 0) for k, v in summaries.get(name, {}).items()]
    return [row for row in rows if np.isfinite(row[1])]


def format_classes(summaries: dict[str, dict[str, float]]) -> str:
    """The console's per-class table: cases, DSC at round 0 and last, gain, AUC, NSD last, NoI and the
    painter's final DSC per class, then the mean over the classes (each class weighing the same; cases:
    their sum)."""
    if not summaries:
        return ""
    first = next(iter(summaries.values()))
    noi = [k for k in first if k.startswith("noi_")]
    cols = [
        ("cases", "cases", 0),
        ("dsc_baseline", "DSC r0", 3),
        ("dsc_final", "DSC last", 3),
        ("dsc_gain", "gain", 3),
        ("dsc_auc", "AUC", 3),
        ("nsd_final", "NSD last", 3),
        *[(k, f"NoI@{k[4:]}", 1) for k in noi],
        ("painter_dsc_final", "painter", 3),
    ]
    width = max(5, *(len(n) for n in summaries))
    lines = [f"{'class':<{width}}  " + "  ".join(f"{h:>8}" for _, h, _ in cols)]

    def line(name: str, values: dict[str, float]) -> str:
        cells = []
        for key, _, digits in cols:
            v = values.get(key, float("nan"))
            cells.append(f"{v:8.{digits}f}" if np.isfinite(v) else f"{'':>8}")
        return f"{name:<{width}}  " + "  ".join(cells)

    lines += [line(name, values) for name, values in summaries.items()]
    mean = {k: float(np.mean([s.get(k, np.nan) for s in summaries.values()])) for k, _, _ in cols}
    mean["cases"] = float(sum(s["cases"] for s in summaries.values()))
    lines.append(line("mean", mean))
    return "\n".join(lines)
