"""The runs a report compares: one job run and its round records (`RunData`), folds of one configuration
pooled into one run, and the labels that tell runs apart (the params that vary between them)."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from iunet_bench.analysis import results
from iunet_bench.core import metrics
from iunet_bench.session.config import ProtocolConfig
from iunet_bench.session.records import RoundRecord


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
    def classes(self) -> dict[str, RunData]:
        """With `data.classes`, this run restricted to each class's sessions (`<class>/<case>`), by class;
        else {}."""
        if self.params.get("data.classes", "None") in ("None", "", "null"):
            return {}
        from iunet_bench.analysis.classes import by_class, class_of

        return {
            name: RunData(
                self.run_id,
                f"{self.name} {name}",
                self.params,
                records,
                self.status,
                "",
                [c for c in self.expected_cases if class_of(c) == name],
            )
            for name, records in by_class(self.records).items()
        }

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


PRESET_KEYS = {
    "simulator": "simulator.name",
    "model": "model.name",
    "interact": "interact.method",
    "data": "data.source",
    "protocol": "protocol.name",
}


def varying_params(runs: list[RunData]) -> list[str]:
    """The params that differ between runs. A differing preset's name stands for its keys (a protocol's
    for the robot's and the session's too), except a key that differs between runs of one preset (two
    widths of one model): the name alone does not tell those apart."""
    keys = sorted({k for r in runs for k in r.params})
    varying = [k for k in keys if len({r.params.get(k) for r in runs}) > 1]
    owner = {group: name for group, name in PRESET_KEYS.items() if name in varying}
    if "protocol" in owner:  # a protocol sets the robot and the rounds: its name says it
        owner["simulator"] = owner["session"] = "protocol.name"

    def needed(key: str) -> bool:
        name = owner.get(key.split(".")[0])
        if name is None or key == name:
            return True
        values: dict = {}
        for r in runs:
            values.setdefault(r.params.get(name), set()).add(r.params.get(key))
        return any(len(v) > 1 for v in values.values())

    names = set(owner.values())
    return sorted(filter(needed, varying), key=lambda k: (k.split(".")[0], k not in names, k))  # name first


def _short(key: str) -> str:
    """`protocol.name` -> `protocol`, `interact.weights.scribble` -> `scribble`: a label's key."""
    parts = key.split(".")
    return parts[0] if parts[-1] in ("name", "method", "source") else parts[-1]


def label(run: RunData, varying: list[str]) -> str:
    """The varying params' values, less a preset's keys that this run's preset does not have."""
    shown = [
        k
        for k in varying
        if k in PRESET_KEYS.values() or k.split(".")[0] not in PRESET_KEYS or run.params.get(k) is not None
    ]
    return ", ".join(f"{_short(k)}={run.params.get(k)}" for k in shown) or run.name
