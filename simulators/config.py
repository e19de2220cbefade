"""The `simulator` config group: every key, its check, its meaning, and the robot it builds.

A config is a (nested) mapping such as `{"kind": "scribble", "noise": {"wrong_label_rate": 0.05}}`.
`parse` checks it against `KEYS` and fills the keys it omits with the defaults (the defaults live in
the robots' dataclasses, so there is one source for each); a key that is unknown for the chosen
`kind`, or a value out of range, raises `SimulatorConfigError` naming `simulator.<key>` and what is
allowed. `markdown_table()` renders `KEYS` for README.md (Configuration).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from simulators.click import CLICK_RULES, ClickStyle
from simulators.effort import TimeModel
from simulators.interaction import PLANES
from simulators.noise import Noise
from simulators.policy import COUNT_RULES, POLARITY_RULES, REGION_ORDERS, SLICE_RULES, Policy
from simulators.strokes import SHAPES, StrokeStyle

KINDS = ("scribble", "click")
SCRIBBLE, CLICK, BOTH = ("scribble",), ("click",), ("scribble", "click")
SECTIONS: dict[str, type] = {
    "policy": Policy,
    "strokes": StrokeStyle,
    "clicks": ClickStyle,
    "noise": Noise,
    "time": TimeModel,
}


class SimulatorConfigError(ValueError):
    """A bad `simulator` config value; the message names the key and what is allowed."""


class _Bad(Exception):
    pass


@dataclass(frozen=True)
class Check:
    expected: str  # e.g. "a number in [0, 1]"
    convert: Callable[[Any], Any]  # returns the normalised value or raises _Bad


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad
    return float(value)


def number(lo: float, hi: float | None = None) -> Check:
    def convert(v):
        x = _number(v)
        if x < lo or (hi is not None and x > hi):
            raise _Bad
        return x

    return Check(f"a number in [{lo:g}, {hi:g}]" if hi is not None else f"a number >= {lo:g}", convert)


def integer(lo: int, odd: bool = False) -> Check:
    def convert(v):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo or (odd and v % 2 == 0):
            raise _Bad
        return int(v)

    return Check(f"an {'odd ' if odd else ''}integer >= {lo}", convert)


def one_of(*values: str) -> Check:
    def convert(v):
        if v not in values:
            raise _Bad
        return v

    return Check(f"one of {list(values)}", convert)


def some_of(*values: str) -> Check:
    def convert(v):
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, (list, tuple)) or not items:
            raise _Bad
        if any(i not in values for i in items) or len(set(items)) != len(items):
            raise _Bad
        return tuple(items)

    return Check(f"one of {list(values)} or a list of distinct ones", convert)


def nullable(check: Check) -> Check:
    return Check(f"null or {check.expected}", lambda v: None if v is None else check.convert(v))


def text() -> Check:
    def convert(v):
        if v is not None and not isinstance(v, str):
            raise _Bad
        return v

    return Check("null or a string", convert)


@dataclass(frozen=True)
class Key:
    path: str  # dotted, under `simulator.`
    check: Check
    meaning: str
    kinds: tuple[str, ...]

    @property
    def default(self) -> Any:
        if self.path == "kind":
            return "scribble"
        if self.path == "name":
            return None
        section, name = self.path.split(".")
        return getattr(SECTIONS[section](), name)


KEYS: tuple[Key, ...] = (
    Key("kind", one_of(*KINDS), "robot family: scribble strokes or clicks", BOTH),
    Key("name", text(), "preset name, shown in run tables (free text)", BOTH),
    # policy
    Key(
        "policy.region",
        one_of(*REGION_ORDERS),
        "which error component is scribbled first: largest volume, largest single cross-section, "
        "or random weighted by volume",
        SCRIBBLE,
    ),
    Key(
        "policy.polarity",
        one_of(*POLARITY_RULES),
        "scribble add and remove errors every round, or only the polarity with more error",
        SCRIBBLE,
    ),
    Key(
        "policy.count",
        one_of(*COUNT_RULES),
        "strokes per polarity: a fixed number, or ceil(N / voxels_per_scribble) per component of N voxels",
        SCRIBBLE,
    ),
    Key(
        "policy.scribbles",
        integer(1),
        "strokes per polarity per round when count = fixed (a component takes at most one per slice cutting "
        "it; what one cannot take goes to the others)",
        SCRIBBLE,
    ),
    Key(
        "policy.voxels_per_scribble",
        integer(1),
        "count = per_size: one stroke per this many voxels of a component (DeepIGeoS: 100)",
        SCRIBBLE,
    ),
    Key("policy.max_scribbles", integer(1), "cap on strokes per polarity per round", SCRIBBLE),
    Key(
        "policy.min_region_voxels",
        integer(1),
        "error components smaller than this are not worth an interaction; none left = the user stops",
        BOTH,
    ),
    Key(
        "policy.slice",
        one_of(*SLICE_RULES),
        "slice of a component: largest cross-section first, or random weighted by cross-section area",
        SCRIBBLE,
    ),
    Key(
        "policy.min_slice_gap",
        integer(1),
        "preferred minimum distance (slices) between two strokes on one component in one plane",
        SCRIBBLE,
    ),
    # strokes
    Key(
        "strokes.shape",
        some_of(*SHAPES),
        "stroke shape: skeleton longest path (DAVIS), centreline, contour, straight line; "
        "a list = one chosen at random per stroke",
        SCRIBBLE,
    ),
    Key("strokes.thickness", integer(1, odd=True), "brush width in voxels", SCRIBBLE),
    Key(
        "strokes.margin_voxels",
        integer(0),
        "voxels kept between a stroke's centre line and the region's border (less in thin regions)",
        SCRIBBLE,
    ),
    Key(
        "strokes.min_length_mm",
        number(0),
        "strokes shorter than this are not drawn (a round whose strokes are all too short is empty: stop)",
        SCRIBBLE,
    ),
    Key(
        "strokes.max_length_mm",
        nullable(number(0)),
        "longer strokes keep their central part; null = no limit",
        SCRIBBLE,
    ),
    Key("strokes.planes", some_of(*PLANES), "planes the user draws on", SCRIBBLE),
    # clicks
    Key(
        "clicks.rule",
        one_of(*CLICK_RULES),
        "ritm: deepest error voxel of either polarity (RITM clicker, 3D); center: centre of the largest "
        "components",
        CLICK,
    ),
    Key("clicks.per_round", integer(1), "clicks per round", CLICK),
    Key("clicks.radius_voxels", integer(0), "a click paints a disk of this radius on its axial slice", CLICK),
    # noise
    Key(
        "noise.jitter_voxels",
        number(0),
        "standard deviation (voxels) of the smooth random offset of stroke points (never more than the room "
        "inside the region), or of a click",
        BOTH,
    ),
    Key(
        "noise.jitter_smoothness_mm",
        number(0.1),
        "length along a stroke over which jitter is smoothed",
        SCRIBBLE,
    ),
    Key("noise.break_rate", number(0, 1), "share of strokes broken by a gap", SCRIBBLE),
    Key(
        "noise.gap_mm",
        number(0),
        "length of the gap in a broken stroke (at least the brush width); strokes under two gaps stay whole",
        SCRIBBLE,
    ),
    Key("noise.overshoot_rate", number(0, 1), "share of strokes that run over the region's border", SCRIBBLE),
    Key(
        "noise.overshoot_voxels", integer(1), "how far past the border an overshooting stroke runs", SCRIBBLE
    ),
    Key("noise.wrong_label_rate", number(0, 1), "share of strokes or clicks given the other label", BOTH),
    # time
    Key("time.seconds_per_stroke", number(0), "estimated seconds to aim and start one stroke", SCRIBBLE),
    Key("time.seconds_per_cm", number(0), "estimated seconds per centimetre drawn", SCRIBBLE),
    Key("time.seconds_per_click", number(0), "estimated seconds per click", CLICK),
    Key("time.seconds_per_slice", number(0), "estimated seconds to scroll to and inspect one slice", BOTH),
    Key("time.wait_seconds", number(0), "estimated wait for the updated segmentation, per round", BOTH),
)
KEYS_BY_PATH = {k.path: k for k in KEYS}


def _flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        path = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, path + "."))
        elif path in SECTIONS:
            keys = [x.path for x in KEYS if x.path.startswith(path + ".")]
            raise SimulatorConfigError(f"simulator.{path}: expected a mapping with keys {keys}, got {v!r}")
        else:
            out[path] = v
    return out


def parse(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Check a `simulator` config; returns every key of its kind (dotted) with its normalised value."""
    if not isinstance(cfg, Mapping):
        raise SimulatorConfigError(f"simulator: expected a mapping of keys, got {type(cfg).__name__}")
    flat = _flatten(cfg)
    kind = flat.get("kind", "scribble")
    if kind not in KINDS:
        raise SimulatorConfigError(f"simulator.kind: {kind!r} is not one of {list(KINDS)}")
    allowed = [k for k in KEYS if kind in k.kinds]
    allowed_paths = {k.path for k in allowed}
    for path in flat:
        if path not in allowed_paths:
            where = "" if path not in KEYS_BY_PATH else f" for kind={kind}"
            raise SimulatorConfigError(
                f"simulator.{path}: unknown key{where}; allowed keys: {sorted(allowed_paths)}"
            )
    values = {}
    for key in allowed:
        value = flat.get(key.path, key.default)
        try:
            values[key.path] = key.check.convert(value)
        except _Bad:
            raise SimulatorConfigError(
                f"simulator.{key.path}: expected {key.check.expected}, got {value!r}"
            ) from None
    if kind == "scribble" and values["policy.scribbles"] > values["policy.max_scribbles"]:
        raise SimulatorConfigError(
            f"simulator.policy.scribbles: {values['policy.scribbles']} is more than "
            f"simulator.policy.max_scribbles ({values['policy.max_scribbles']})"
        )
    return values


def sections(values: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed values as the robots' dataclasses: {"policy": Policy(...), ...}."""
    out = {}
    for name, cls in SECTIONS.items():
        given = {p.split(".", 1)[1]: v for p, v in values.items() if p.startswith(name + ".")}
        fields = {f.name for f in dataclasses.fields(cls)}
        out[name] = cls(**{k: v for k, v in given.items() if k in fields})
    return out


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def markdown_table() -> str:
    """Key | default | meaning, one row per key (the reference in README.md (Configuration))."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for k in KEYS:
        robots = "" if k.kinds == BOTH else f"({k.kinds[0]} robot) "
        rows.append(
            f"| `simulator.{k.path}` | `{_show(k.default)}` | {robots}{k.meaning}; {k.check.expected} |"
        )
    return "\n".join(rows) + "\n"
