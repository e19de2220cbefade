"""The scribble robot: "add" strokes in missed organ, "remove" strokes in false organ.

`ScribbleRobot.annotate(image, reference, prediction, rng, spacing)`, step by step:

1. error analysis (`errors.py`): false-negative and false-positive 3D components, sizes in voxels/mm3;
2. the policy (`policy.py`) plans the round: which components, how many strokes, on which slices of
   which planes; no component of `policy.min_region_voxels` or more -> an empty `Interaction` (stop);
3. for each planned stroke, on its slice:
   a. the region is the largest 8-connected piece of the component's cross-section;
   b. a path of the chosen shape is drawn in the region's core, away from its border (`strokes.py`),
      its central `strokes.max_length_mm` kept; while it is shorter than `strokes.min_length_mm` the
      margin shrinks (down to 0), and a region too small for that length still gets its longest path
      (a short stroke): a region worth a stroke (`policy.min_region_voxels`) always gets one;
   c. the noise models (`noise.py`), each only when its rate or size is above zero, in this order:
      jitter, a gap (`noise.break_rate`), an overshoot over the border (`noise.overshoot_rate`), the
      other label (`noise.wrong_label_rate`);
   d. the path is painted with a brush `strokes.thickness` voxels wide, kept inside the region except
      for the overshoot;
4. strokes are painted in order into the add/remove masks (a later one paints over an earlier one), and
   the round's effort and estimated seconds are accounted (`effort.py`).

Randomness comes only from `rng`; the ideal robot (no noise, `largest`/`worst` policies, one shape)
draws none at all, so its scribbles depend on the masks alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from simulators.effort import TimeModel, build_interaction
from simulators.errors import (
    STRUCT_2D,
    ErrorAnalysis,
    analyse_errors,
    in_plane_spacing,
    largest_component_2d,
    to_volume,
)
from simulators.interaction import ADD, PLANES, REMOVE, Interaction, Stroke
from simulators.noise import Noise, gap_centre, gap_mask, overshoot_path, warp
from simulators.policy import Policy, Target, plan_round
from simulators.strokes import (
    StrokeStyle,
    paint,
    path_length_mm,
    path_mask,
    shape_path,
    step_lengths,
    truncate,
)


def slice_crop(blob: np.ndarray, offset: tuple[int, int], slice_shape: tuple[int, int], pad: int):
    """The blob placed in a crop of its slice: (region crop, crop origin), the crop being the blob's
    bounding box grown by `pad` pixels and clipped to the slice."""
    rows, cols = np.nonzero(blob)
    lo = [max(0, offset[0] + rows.min() - pad), max(0, offset[1] + cols.min() - pad)]
    hi = [
        min(slice_shape[0], offset[0] + rows.max() + 1 + pad),
        min(slice_shape[1], offset[1] + cols.max() + 1 + pad),
    ]
    region = np.zeros((hi[0] - lo[0], hi[1] - lo[1]), bool)
    region[rows + offset[0] - lo[0], cols + offset[1] - lo[1]] = True
    return region, np.array(lo)


@dataclass(frozen=True)
class ScribbleRobot:
    """Scribble robot (see the module docstring). Defaults: the ideal robot."""

    policy: Policy = field(default_factory=Policy)
    strokes: StrokeStyle = field(default_factory=StrokeStyle)
    noise: Noise = field(default_factory=Noise)
    time: TimeModel = field(default_factory=TimeModel)

    def annotate(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        prediction: np.ndarray,
        rng: np.random.Generator,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> Interaction:
        analysis = analyse_errors(reference, prediction, spacing, self.policy.min_region_voxels)
        axes = tuple(PLANES[p] for p in self.strokes.planes)
        records = []
        for target in plan_round(analysis, self.policy, axes, rng):
            stroke = self.draw(target, analysis, rng)
            if stroke is not None:
                records.append(stroke)
        return build_interaction(analysis.add.shape, records, self.time)

    def draw(self, target: Target, analysis: ErrorAnalysis, rng: np.random.Generator) -> Stroke | None:
        """Step 3 of the module docstring for one planned stroke; None only when the region has no path."""
        style, noise, axis = self.strokes, self.noise, target.plane
        section, offset = target.region.section(axis, target.index)
        slice_shape = tuple(n for a, n in enumerate(analysis.add.shape) if a != axis)
        pad = 2 + int(np.ceil(style.radius)) + (noise.overshoot_voxels if noise.overshoot_rate > 0 else 0)
        region, origin = slice_crop(largest_component_2d(section), offset, slice_shape, pad)
        spacing2 = in_plane_spacing(analysis.spacing, axis)

        shape = style.shape[0] if len(style.shape) == 1 else style.shape[int(rng.integers(len(style.shape)))]
        path = None  # the margin shrinks, down to 0, until the path is long enough; else the longest found
        for margin in range(style.margin_voxels, -1, -1):
            found = truncate(shape_path(region, shape, margin, spacing2), style.max_length_mm, spacing2)
            if path is None or path_length_mm(found, spacing2) > path_length_mm(path, spacing2):
                path = found
            if path_length_mm(path, spacing2) >= style.min_length_mm:
                break
        if not len(path):
            return None

        drawn = path
        if noise.jitter_voxels > 0:
            drawn = warp(path, region, rng, noise.jitter_voxels, noise.jitter_smoothness_mm, spacing2)
        gap_at = None
        if noise.break_rate > 0 and rng.random() < noise.break_rate:
            gap_at = gap_centre(drawn, rng, noise.gap_mm, spacing2)
        over = np.zeros((0, 2), int)
        if noise.overshoot_rate > 0 and rng.random() < noise.overshoot_rate:
            end = drawn[0] if rng.integers(2) == 0 else drawn[-1]
            over = overshoot_path(end, region, noise.overshoot_voxels)
        label = target.region.polarity
        if noise.wrong_label_rate > 0 and rng.random() < noise.wrong_label_rate:
            label = REMOVE if label == ADD else ADD

        painted = paint(path_mask(drawn, region.shape), path_mask(over, region.shape), region, style.radius)
        ink = np.ones(len(drawn), bool)
        if gap_at is not None:
            erased = gap_mask(region.shape, gap_at, noise.gap_mm, style.radius, spacing2)
            if (painted & ~erased).any():  # a curled stroke inside its own gap stays whole
                painted &= ~erased
                ink = ~erased[drawn[:, 0], drawn[:, 1]]
        steps = step_lengths(drawn, spacing2)
        length = float(steps[ink[1:] & ink[:-1]].sum()) + path_length_mm(over, spacing2)
        return Stroke(
            label=label,
            target=target.region.polarity,
            plane=axis,
            index=target.index,
            path=to_volume(path + origin, axis, target.index),
            voxels=to_volume(np.argwhere(painted) + origin, axis, target.index),
            length_mm=length,
            shape=shape,
            pieces=int(ndi.label(painted, structure=STRUCT_2D)[1]),
            overshoot=bool((painted & ~region).any()),
            region_voxels=target.region.voxels,
        )
