"""Policies: which error regions get scribbles this round, how many, and on which slices.

`plan_round(analysis, policy, axes, rng)` returns the round's targets, (region, plane, slice) triples:

1. eligible regions: the error components of at least `min_region_voxels` voxels (`errors.py`); when
   there are none, the plan is empty and the robot returns an empty interaction (the user stops);
2. polarities: `both` scribbles add and remove regions every round; `larger` only the polarity with the
   larger eligible error volume (add on a tie);
3. region order within a polarity: `largest` by volume; `worst_slice` by the largest single cross-section
   (what a user scrolling through the slices sees first); `random` a random order, weighted by volume;
4. scribbles per polarity: a region takes at most one stroke per slice that cuts it (its *room*: the
   slices of every allowed plane that cut it). `fixed` deals k = min(`scribbles`, `max_scribbles`)
   strokes one at a time over the regions in that order, cycling again while strokes are left and
   skipping a region once its room is used up, so a region's shortfall passes to the next regions:
   a polarity gets exactly min(k, total room) strokes. `per_size` gives each region, in that order,
   min(ceil(N / voxels_per_scribble), its room) strokes (N its voxels; DeepIGeoS's rule with 100), until
   `max_scribbles` strokes are planned for the polarity;
5. slices of a region: the candidates are the slices of every allowed plane that cut it, ranked by
   cross-section area in mm2 (`worst`) or in a random order weighted by area (`random`); they are taken in
   that order, first skipping slices nearer than `min_slice_gap` to one already chosen in the same plane
   (a person spreads strokes out), then, if more are needed, any left.

So under `fixed`, adding error components that touch no existing one of the same polarity never lowers
the number of planned strokes (the total room only grows); merging components can: two regions on one
slice take two strokes, one region bridging them has room for one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from iunet_bench.core.schema import Int, Schema
from simulators.errors import ErrorAnalysis, ErrorRegion
from simulators.interaction import ADD, POLARITIES, REMOVE


class ClickPolicy(Schema):
    min_region_voxels: Int = Field(
        10,
        ge=1,
        description="error components smaller than this are not worth an interaction; none left = the user stops",
    )


class Policy(ClickPolicy):
    """What the scribble robot draws each round (the click robot uses `min_region_voxels` only)."""

    region: Literal["largest", "worst_slice", "random"] = Field(
        "largest",
        description="which error component is scribbled first: largest volume, largest single cross-section, "
        "or random weighted by volume",
    )
    polarity: Literal["both", "larger"] = Field(
        "both", description="scribble add and remove errors every round, or only the polarity with more error"
    )
    count: Literal["fixed", "per_size"] = Field(
        "fixed",
        description="strokes per polarity: a fixed number, or ceil(N / voxels_per_scribble) per component of N voxels",
    )
    scribbles: Int = Field(
        1,
        ge=1,
        description="strokes per polarity per round when count = fixed (a component takes at most one per slice "
        "cutting it; what one cannot take goes to the others)",
    )
    voxels_per_scribble: Int = Field(
        100,
        ge=1,
        description="count = per_size: one stroke per this many voxels of a component (DeepIGeoS: 100)",
    )
    max_scribbles: Int = Field(10, ge=1, description="cap on strokes per polarity per round")
    slice: Literal["worst", "random"] = Field(
        "worst",
        description="slice of a component: largest cross-section first, or random weighted by cross-section area",
    )
    min_slice_gap: Int = Field(
        2,
        ge=1,
        description="preferred minimum distance (slices) between two strokes on one component in one plane",
    )

    @model_validator(mode="after")
    def _cap(self) -> Policy:
        if self.scribbles > self.max_scribbles:
            raise ValueError(
                f"simulator.policy.scribbles: {self.scribbles} is more than simulator.policy.max_scribbles "
                f"({self.max_scribbles})"
            )
        return self


REGION_ORDERS = ("largest", "worst_slice", "random")
POLARITY_RULES = ("both", "larger")
COUNT_RULES = ("fixed", "per_size")
SLICE_RULES = ("worst", "random")


@dataclass(frozen=True, eq=False)
class Target:
    """One planned stroke: draw on slice `index` normal to axis `plane`, inside `region`."""

    region: ErrorRegion
    plane: int
    index: int


def choose_polarities(analysis: ErrorAnalysis, policy: Policy) -> list[str]:
    present = [p for p in POLARITIES if analysis.regions[p]]
    if policy.polarity == "both" or len(present) < 2:
        return present
    return [ADD if analysis.eligible_volume_mm3(ADD) >= analysis.eligible_volume_mm3(REMOVE) else REMOVE]


def _weighted_order(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(weights) < 2:
        return np.arange(len(weights))
    return rng.choice(len(weights), size=len(weights), replace=False, p=weights / weights.sum())


def order_regions(
    regions: tuple[ErrorRegion, ...], policy: Policy, axes: tuple[int, ...], rng: np.random.Generator
) -> list[ErrorRegion]:
    if policy.region == "largest":
        return list(regions)  # already sorted by size
    if policy.region == "worst_slice":
        worst = [max(float(r.areas_mm2(a)[1].max()) for a in axes) for r in regions]
        return [regions[i] for i in sorted(range(len(regions)), key=lambda i: -worst[i])]
    weights = np.array([r.volume_mm3 for r in regions], float)
    return [regions[i] for i in _weighted_order(weights, rng)]


def room(region: ErrorRegion, axes: tuple[int, ...]) -> int:
    """The most strokes `region` can take: the number of slices of the planes `axes` that cut it."""
    return sum(len(region.areas_mm2(a)[0]) for a in axes)


def scribble_counts(sizes: list[int], rooms: list[int], policy: Policy) -> list[int]:
    """Strokes per region, regions in plan order (step 4 of the module docstring); `sizes` in voxels,
    `rooms` the slices that cut each region."""
    counts = [0] * len(sizes)
    if policy.count == "fixed":
        left = min(policy.scribbles, policy.max_scribbles)
        while left > 0 and any(c < r for c, r in zip(counts, rooms)):
            for i, r in enumerate(rooms):
                if left > 0 and counts[i] < r:
                    counts[i] += 1
                    left -= 1
        return counts
    left = policy.max_scribbles
    for i, (n, r) in enumerate(zip(sizes, rooms)):
        counts[i] = min(math.ceil(n / policy.voxels_per_scribble), r, left)
        left -= counts[i]
    return counts


def choose_slices(
    region: ErrorRegion, n: int, axes: tuple[int, ...], policy: Policy, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """`n` distinct (plane, slice) pairs for strokes on `region` (step 5 of the module docstring); fewer only
    when `n` exceeds the region's `room`."""
    if n <= 0:
        return []
    cands = [(float(area), a, int(i)) for a in axes for i, area in zip(*region.areas_mm2(a))]
    if policy.slice == "worst":
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    else:
        order = _weighted_order(np.array([c[0] for c in cands]), rng)
        cands = [cands[i] for i in order]
    chosen: list[tuple[int, int]] = []
    for respect_gap in (True, False):
        for _, a, i in cands:
            if len(chosen) == n:
                return chosen
            if (a, i) in chosen:
                continue
            if respect_gap and any(b == a and abs(j - i) < policy.min_slice_gap for b, j in chosen):
                continue
            chosen.append((a, i))
    return chosen


def plan_round(
    analysis: ErrorAnalysis, policy: Policy, axes: tuple[int, ...], rng: np.random.Generator
) -> list[Target]:
    """The round's strokes (see the module docstring); empty when no error is worth a stroke."""
    targets: list[Target] = []
    for polarity in choose_polarities(analysis, policy):
        regions = order_regions(analysis.regions[polarity], policy, axes, rng)
        counts = scribble_counts([r.voxels for r in regions], [room(r, axes) for r in regions], policy)
        for region, c in zip(regions, counts):
            for plane, index in choose_slices(region, c, axes, policy, rng):
                targets.append(Target(region, plane, index))
    return targets
