"""The click robot: one point (painted as a small disk on its axial slice) per click, three rules.

`ClickRobot.annotate(...)`, step by step:

1. error analysis (`errors.py`); only components of `policy.min_region_voxels` or more count (under
   `cvpr25`, components of the one error mask, see below); none -> an empty `Interaction` (stop);
2. up to `clicks.per_round` clicks, each placed by the rule:
   - `ritm` (RITM's clicker, in 3D with mm distances): the depth of every voxel of an error component
     is its distance to the nearest voxel outside that component (a correct voxel, an error voxel of
     the other polarity, or beyond the volume's in-plane edge: beyond its first and last slice the
     component continues, since a crop or a thin volume ends there, not the organ); this is RITM's
     distance to the nearest voxel
     outside the false-negative (or false-positive) mask, since the nearest outside voxel touches the
     component and so is never in another component of its polarity. Click the deepest voxel, "add"
     if the deepest false negative is strictly deeper than the deepest false positive, else "remove"
     (RITM's rule); among equally deep voxels of that polarity, the first in raster order (z, then y,
     then x). Before the next click of the same round, the open ball of that depth around the click is
     taken out of its component (it is what the click explains);
   - `center`: the components of both polarities, largest first; click each at the voxel nearest its
     centroid among its voxels at least half as deep as its deepest one (so the click is well inside,
     even for a curved component whose centroid lies outside it);
   - `cvpr25` (the CVPR 2025 "Foundation models for interactive 3D biomedical image segmentation"
     challenge, `CVPR25_iter_eval.py`): one error mask, prediction != reference, so missed and false
     voxels that touch form one component; its 26-connected components of `policy.min_region_voxels` or
     more (the challenge has no minimum: 1), largest first (ties: the first in raster order of its first
     voxel); click each at the maximum of its Euclidean distance transform in voxels (spacing ignored, as
     the challenge's `distance_transform_edt` gets none), every voxel outside the component counting as
     outside, the volume's border included (the challenge zero-pads the component's box, in z too);
     among equally deep voxels, the challenge's choice: in raster order (z, then y, then x), the one at
     index `RandomState(42).choice(count)` (it reseeds 42 before each choice, so the pick depends only on
     the number of ties, and draws nothing from `rng`); the label is the reference's at that voxel ("add"
     where it is organ, else "remove"). The challenge clicks once per step: with `per_round` above 1
     the next largest components get one click each, as under `center`;
3. noise: the click moves by a rounded Gaussian offset in its slice (`noise.jitter_voxels`), and gets
   the other label at `noise.wrong_label_rate`;
4. the click is painted as a disk of `clicks.radius_voxels` on its axial slice, kept inside the error
   piece it landed in (a jittered click that landed outside the error is painted in full, and recorded
   as an overshoot); effort and seconds as for strokes (`effort.py`).

The `Interaction` carries the clicks twice: painted into `add`/`remove` (what scribble refiners read) and
in native form in `clicks` (each a `Click`: the voxel after jitter, the label the user said), for models
that take clicks as points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi

from iunet_bench.core.schema import Int, Schema
from simulators.effort import ClickTime, build_interaction
from simulators.errors import STRUCT_2D, ErrorAnalysis, analyse_errors, to_volume
from simulators.interaction import ADD, POLARITIES, REMOVE, Click, Interaction, Stroke
from simulators.noise import ClickNoise, jitter_point
from simulators.policy import ClickPolicy
from simulators.strokes import paint, path_mask

CLICK_RULES = ("ritm", "center", "cvpr25")


class ClickStyle(Schema):
    rule: Literal["ritm", "center", "cvpr25"] = Field(
        "ritm",
        description="ritm: deepest error voxel of either polarity (RITM clicker, 3D); center: centre of the "
        "largest components; cvpr25: the CVPR 2025 challenge's clicker (distance-transform maximum, in "
        "voxels, of the largest 26-connected component of prediction != reference, labelled by the reference "
        "there)",
    )
    per_round: Int = Field(1, ge=1, description="clicks per round")
    radius_voxels: Int = Field(1, ge=0, description="a click paints a disk of this radius on its axial slice")


def _open_z(box: tuple[slice, ...], depth: int) -> tuple[bool, bool]:
    """Whether the box reaches the volume's first and last slice: there the field of view ends, not the
    organ, so beyond it does not count as outside (see `_depth_mm`)."""
    return box[0].start == 0, box[0].stop == depth


def _depth_mm(mask: np.ndarray, spacing, open_z: tuple[bool, bool] = (False, False)) -> np.ndarray:
    """Distance (mm) of each voxel of a component's `mask` (its bounding box) to the nearest voxel outside
    the component. The box is padded by one voxel that counts as outside, as RITM's clicker pads the image
    (so in-plane the image's edge is outside), except beyond a first or last slice of the volume the
    component reaches (`open_z`): a CT crop or a thin volume ends there, not the organ, and counting that
    face as outside capped every depth at one slice spacing on one-slice or thin volumes, sending the click
    to the first error voxel in raster order. The nearest outside voxel touches the component, so it is
    correct or of the other polarity, never in another component of the same polarity: this equals the
    distance to the nearest voxel outside that polarity's error mask, as in RITM's clicker."""
    padded = np.pad(mask, 1)
    if open_z[0]:
        padded[0] = padded[1]  # the component continues beyond the first slice (no zero there)
    if open_z[1]:
        padded[-1] = padded[-2]
    return ndi.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1, 1:-1]


def _depth_bound(box: tuple[slice, ...], spacing, open_z: tuple[bool, bool] = (False, False)) -> float:
    """An upper bound of any depth in a box: no voxel is farther from the outside than half the box (along
    z, the whole box when one face is open, no bound when both are)."""
    bounds = [(b.stop - b.start + 1) / 2.0 * s for b, s in zip(box, spacing)]
    if all(open_z):
        bounds[0] = np.inf
    elif any(open_z):
        bounds[0] *= 2
    return min(bounds)


def ritm_clicks(analysis: ErrorAnalysis, n: int) -> list[tuple[str, np.ndarray, int]]:
    """(polarity, z-y-x voxel, component voxels) of up to `n` clicks by the RITM rule (step 2 of the module docstring).

    Depths are computed per component, and only for components whose box could reach the best depth so
    far; fewer than `n` clicks only when the balls of earlier clicks have taken out every eligible voxel."""
    shape, spacing = analysis.add.shape, analysis.spacing
    parts = [[r.polarity, r.box, r.mask.copy(), r.voxels] for p in POLARITIES for r in analysis.regions[p]]
    opens = {id(part): _open_z(part[1], shape[0]) for part in parts}
    parts.sort(key=lambda part: -_depth_bound(part[1], spacing, opens[id(part)]))
    opens = [opens[id(part)] for part in parts]
    depths: list[np.ndarray | None] = [None] * len(parts)
    out: list[tuple[str, np.ndarray, int]] = []
    for _ in range(n):
        # polarity -> (depth, raster index of the voxel, part, voxel in the part's box)
        best = {p: (0.0, 0, -1, None) for p in POLARITIES}
        for i, (polarity, box, mask, _) in enumerate(parts):
            if _depth_bound(box, spacing, opens[i]) < max(b[0] for b in best.values()):
                break  # parts are sorted by this bound: no later one reaches the best depth either
            if depths[i] is None:
                depths[i] = _depth_mm(mask, spacing, opens[i])
            local = np.unravel_index(int(np.argmax(depths[i])), mask.shape)
            d = float(depths[i][local])
            key = int(np.ravel_multi_index(tuple(int(v) + s.start for v, s in zip(local, box)), shape))
            top, top_key = best[polarity][:2]
            if d > top or (d == top and d > 0 and key < top_key):
                best[polarity] = (d, key, i, local)
        if best[ADD][2] < 0 and best[REMOVE][2] < 0:
            break
        polarity = ADD if best[ADD][0] > best[REMOVE][0] else REMOVE
        radius, _, i, local = best[polarity]
        _, box, mask, size = parts[i]
        local = np.array(local)
        out.append((polarity, local + np.array([s.start for s in box]), size))
        grid = np.indices(mask.shape, sparse=True)
        mask &= sum(((g - v) * s) ** 2 for g, v, s in zip(grid, local, spacing)) >= radius**2
        depths[i] = None  # recomputed if a later click of this round needs it
    return out


def center_clicks(analysis: ErrorAnalysis, n: int) -> list[tuple[str, np.ndarray, int]]:
    """(polarity, voxel, component voxels) of up to `n` clicks by the centre rule (step 2 of the module docstring)."""
    regions = sorted((r for p in POLARITIES for r in analysis.regions[p]), key=lambda r: -r.voxels)
    out = []
    for r in regions[:n]:
        d = _depth_mm(r.mask, r.spacing, _open_z(r.box, analysis.add.shape[0]))
        cand = np.argwhere(d >= 0.5 * d.max())
        centroid = np.argwhere(r.mask).mean(0)
        dist = (((cand - centroid) * np.asarray(r.spacing)) ** 2).sum(1)
        local = cand[int(np.argmin(dist))]
        out.append((r.polarity, local + np.array([s.start for s in r.box]), r.voxels))
    return out


CVPR25_TIE_SEED = 42  # CVPR25_iter_eval.py's sample_coord: np.random.seed(42) before every choice


def cvpr25_tie(count: int) -> int:
    """Index, in raster order, of the voxel the CVPR 2025 challenge picks among `count` equally deep ones.

    The challenge reseeds NumPy's legacy generator with 42 and draws `choice(count)` each time; the legacy
    `RandomState` stream is frozen by NumPy's compatibility policy, so a private one gives the same index
    without touching the global generator or the robot's `rng`."""
    return int(np.random.RandomState(CVPR25_TIE_SEED).choice(count))


def cvpr25_clicks(analysis: ErrorAnalysis, n: int, min_voxels: int = 1) -> list[tuple[str, np.ndarray, int]]:
    """(polarity, voxel, component voxels) of up to `n` clicks by the CVPR 2025 challenge's rule (step 2 of
    the module docstring).

    The components are those of the one error mask (missed | false voxels), by `analyse_errors` itself
    (26-connected, largest first, ties in raster order, under `min_voxels` dropped) run on that mask
    against an empty prediction; depths by `_depth_mm` with unit spacing and no open face, which is the
    challenge's voxel EDT of the zero-padded component (a voxel's nearest outside voxel is never beyond a
    one-voxel ring around the component's box, so the challenge's wider padding changes nothing)."""
    error = analysis.add | analysis.remove
    regions = analyse_errors(error, np.zeros_like(error), analysis.spacing, min_voxels).regions[ADD]
    out = []
    for r in regions[:n]:
        d = _depth_mm(r.mask, (1.0, 1.0, 1.0))
        ties = np.argwhere(d == d.max())  # raster order
        voxel = ties[cvpr25_tie(len(ties))] + np.array([s.start for s in r.box])
        # an error voxel is organ exactly where it is missed: the reference's label there
        out.append((ADD if analysis.add[tuple(voxel)] else REMOVE, voxel, r.voxels))
    return out


@dataclass(frozen=True)
class ClickRobot:
    """Click robot (see the module docstring). Defaults: the ideal RITM clicker."""

    clicks: ClickStyle = field(default_factory=ClickStyle)
    policy: ClickPolicy = field(default_factory=ClickPolicy)
    noise: ClickNoise = field(default_factory=ClickNoise)
    time: ClickTime = field(default_factory=ClickTime)

    def annotate(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        prediction: np.ndarray,
        rng: np.random.Generator,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> Interaction:
        min_voxels = self.policy.min_region_voxels
        analysis = analyse_errors(reference, prediction, spacing, min_voxels)
        n = self.clicks.per_round
        if self.clicks.rule == "cvpr25":
            clicks = cvpr25_clicks(analysis, n, min_voxels)
        else:
            clicks = (ritm_clicks if self.clicks.rule == "ritm" else center_clicks)(analysis, n)
        placed = [self.place(p, v, size, analysis, rng) for p, v, size in clicks]
        strokes = [stroke for stroke, _ in placed]
        return build_interaction(analysis.add.shape, strokes, self.time, clicks=[c for _, c in placed])

    def place(
        self, polarity: str, voxel: np.ndarray, size: int, analysis: ErrorAnalysis, rng
    ) -> tuple[Stroke, Click]:
        """Steps 3-4 of the module docstring for one click at `voxel` meant as `polarity`: the gesture as
        painted (its `path`: the voxel aimed at), and the click as given (the voxel after jitter, the label
        the user said)."""
        z = int(voxel[0])
        error = analysis.error(polarity)[z]
        point = jitter_point(voxel[1:], rng, self.noise.jitter_voxels, error.shape)
        label = polarity
        if self.noise.wrong_label_rate > 0 and rng.random() < self.noise.wrong_label_rate:
            label = REMOVE if polarity == ADD else ADD
        dot = path_mask(point[None], error.shape)
        if error[tuple(point)]:
            labels, _ = ndi.label(error, structure=STRUCT_2D)
            painted = paint(
                dot, np.zeros_like(dot), labels == labels[tuple(point)], self.clicks.radius_voxels
            )
        else:
            painted = paint(np.zeros_like(dot), dot, error, self.clicks.radius_voxels)
        stroke = Stroke(
            label=label,
            target=polarity,
            plane=0,
            index=z,
            path=voxel[None].astype(np.int64),
            voxels=to_volume(np.argwhere(painted), 0, z),
            length_mm=0.0,
            shape="click",
            overshoot=bool((painted & ~error).any()),
            region_voxels=size,
        )
        return stroke, Click((z, int(point[0]), int(point[1])), label)
