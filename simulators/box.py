"""The box robot: a user's bounding box around the organ, for `data.crop=robot_box`, and the CVPR 2025
challenge's box prompt as an `Interaction` (`BoxRobot`, `box_interaction`).

`jittered_box(reference, rng, jitter_fraction, spacing, margin_mm)`, step by step:

1. the reference's tight bounding box, half-open (z0, y0, x0, z1, y1, x1) in voxels;
2. grown by `margin_mm` on every side (converted to voxels per axis with `spacing`, rounded up);
3. each of the six faces moved independently by a uniform random amount in
   [-jitter_fraction, +jitter_fraction] times the tight box's extent along that axis, rounded to voxels
   (a person misjudges each edge by a share of the organ's size);
4. clipped to the volume, keeping at least one voxel along each axis.

With `jitter_fraction = 0` no random number is drawn and the result is the (grown) tight box.

`challenge_box(reference, rng, jitter_fraction, spacing, shift_max)`, the box prompt of the CVPR 2025
"Foundation models for interactive 3D biomedical image segmentation" challenge (its `get_boxes.py`):

1. the z range: the reference's first and last slice, exact (the challenge never perturbs it);
2. the middle slice `z_mid`: the slice of the reference's median voxel in raster order (the challenge's
   `z_indices[len(z_indices) // 2]`; not the middle of the z range, which can miss a curved organ);
3. the 2D box: the tight box of the reference on `z_mid`, its four edges jittered by `jittered_box` (on
   that one slice) when `jitter_fraction > 0`;
4. the challenge's own perturbation when `shift_max > 0` (it uses 5): s drawn uniformly from
   {0, ..., shift_max}, every edge moved outwards by int(s * H / 256) rows or int(s * W / 256) columns
   (H, W: the slice's size), clipped to the slice.

`box_interaction(reference, rng, spacing, ...)` (what `BoxRobot.annotate` returns) translates that box
for refiners that take add/remove scribbles only: `add` is empty; `remove` is every voxel the box says is
not organ, whatever the prediction says there: every voxel of the slices outside the z range, and the
voxels of `z_mid` outside the 2D box. Why every voxel and not only the predicted foreground there: the box
is a statement about all of them (a refiner that takes scribbles as hard seeds, such as the random walker,
learns from it that nothing out there may become organ), pasting it gives the same result either way, and
a prediction already inside the box would otherwise make an empty round, which stops the session. Why not
the 2D box extruded over the whole z range: the challenge draws the 2D box around the organ's section on
`z_mid` only, and on other slices the organ can reach beyond it, so an extruded box would mark organ as
background (with no jitter this robot never does). Effort: the rectangle is two clicks (its corners) on
`z_mid`, and the user looks at the first, middle and last slice (`slices`, usually 3); seconds from the
click time model (`effort.ClickTime`); `voxels` counts the remove mask, as for any interaction. A box
that leaves the whole volume open says nothing: an empty interaction. The box itself (a `SliceBox`, the
challenge's shape) rides along in `Interaction.box`, for models that take a box as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from simulators.effort import ClickTime
from simulators.errors import as_masks, check_spacing
from simulators.interaction import REMOVE, Effort, Interaction, SliceBox, Stroke

Box = tuple[int, int, int, int, int, int]


def bounding_box(mask: np.ndarray) -> Box:
    """Half-open tight bounding box (z0, y0, x0, z1, y1, x1) of a non-empty 3D mask."""
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 3 or not mask.any():
        raise ValueError(
            f"bounding_box: expected a non-empty 3D mask, got shape {mask.shape} with no voxel set"
        )
    lo, hi = [], []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        lo.append(int(idx[0]))
        hi.append(int(idx[-1]) + 1)
    return (*lo, *hi)  # type: ignore[return-value]


def jittered_box(
    reference: np.ndarray,
    rng: np.random.Generator,
    jitter_fraction: float = 0.1,
    spacing=(1.0, 1.0, 1.0),
    margin_mm: float = 0.0,
) -> Box:
    """A user's box around `reference` (see the module docstring)."""
    if not (0.0 <= jitter_fraction <= 1.0):
        raise ValueError(f"jitter_fraction: {jitter_fraction!r} must be in [0, 1]")
    if margin_mm < 0:
        raise ValueError(f"margin_mm: {margin_mm!r} must be >= 0")
    spacing = check_spacing(spacing)
    tight = bounding_box(reference)
    shape = np.asarray(reference).shape
    extent = [tight[a + 3] - tight[a] for a in range(3)]
    grow = [math.ceil(margin_mm / spacing[a] - 1e-9) for a in range(3)]
    shift = rng.uniform(-jitter_fraction, jitter_fraction, size=6) if jitter_fraction > 0 else np.zeros(6)
    lo = [tight[a] - grow[a] + int(round(float(shift[a]) * extent[a])) for a in range(3)]
    hi = [tight[a + 3] + grow[a] + int(round(float(shift[a + 3]) * extent[a])) for a in range(3)]
    for a in range(3):
        lo[a] = min(max(0, lo[a]), shape[a] - 1)
        hi[a] = max(min(shape[a], hi[a]), lo[a] + 1)
    return (*lo, *hi)  # type: ignore[return-value]


def median_slice(mask: np.ndarray) -> int:
    """The slice of a non-empty mask's median voxel in raster order (the challenge's `z_mid`)."""
    counts = np.cumsum(np.asarray(mask).astype(bool).sum(axis=(1, 2)))
    return int(np.searchsorted(counts, counts[-1] // 2, side="right"))


def challenge_box(
    reference: np.ndarray,
    rng: np.random.Generator,
    jitter_fraction: float = 0.0,
    spacing=(1.0, 1.0, 1.0),
    shift_max: int = 0,
) -> SliceBox:
    """The CVPR 2025 challenge's box around `reference` (see the module docstring)."""
    if shift_max < 0:
        raise ValueError(f"shift_max: {shift_max!r} must be >= 0")
    reference = np.asarray(reference).astype(bool)
    z0, _, _, z1, _, _ = bounding_box(reference)
    z_mid = median_slice(reference)
    _, y0, x0, _, y1, x1 = jittered_box(reference[z_mid : z_mid + 1], rng, jitter_fraction, spacing)
    if shift_max > 0:
        h, w = reference.shape[1:]
        s = int(rng.integers(0, shift_max + 1))
        dy, dx = int(s * h / 256), int(s * w / 256)
        y0, x0, y1, x1 = max(0, y0 - dy), max(0, x0 - dx), min(h, y1 + dy), min(w, x1 + dx)
    return SliceBox(z0, z1, z_mid, y0, x0, y1, x1)


def box_interaction(
    reference: np.ndarray,
    rng: np.random.Generator,
    spacing=(1.0, 1.0, 1.0),
    jitter_fraction: float = 0.0,
    time: ClickTime | None = None,
    shift_max: int = 0,
) -> Interaction:
    """The challenge's box prompt as an `Interaction` (see the module docstring)."""
    reference = np.asarray(reference)
    box = challenge_box(reference, rng, jitter_fraction, spacing, shift_max)
    shape = reference.shape
    remove = ~box.inside(shape)
    if not remove.any():
        return Interaction.empty(shape)  # a box as large as the volume says nothing
    corners = [(box.y0, box.x0), (box.y1 - 1, box.x1 - 1)]
    strokes = tuple(
        Stroke(
            label=REMOVE,
            target=REMOVE,
            plane=0,
            index=box.z_mid,
            path=np.array([[box.z_mid, y, x]], np.int64),
            voxels=np.zeros((0, 3), np.int64),
            length_mm=0.0,
            shape="click",
        )
        for y, x in corners
    )
    slices = len({box.z0, box.z_mid, box.z1 - 1})
    n = int(remove.sum())
    time = time or ClickTime()
    effort = Effort(
        voxels=n,
        slices=slices,
        clicks=len(strokes),
        seconds=time.seconds(0, 0.0, slices, len(strokes)),
        remove_voxels=n,
    )
    return Interaction(np.zeros(shape, bool), remove, effort, strokes, box=box)


@dataclass(frozen=True)
class BoxRobot:
    """The challenge's optional first prompt, as an annotator (`simulators.Annotator`): `box_interaction`
    of the reference; the prediction plays no part."""

    jitter_fraction: float = 0.0
    shift_max: int = 0
    time: ClickTime = field(default_factory=ClickTime)

    def annotate(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        prediction: np.ndarray,
        rng: np.random.Generator,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> Interaction:
        reference, _ = as_masks(reference, prediction)
        return box_interaction(reference, rng, spacing, self.jitter_fraction, self.time, self.shift_max)
