"""The box robot: a user's bounding box around the organ, for `data.crop=robot_box`.

`jittered_box(reference, rng, jitter_fraction, spacing, margin_mm)`, step by step:

1. the reference's tight bounding box, half-open (z0, y0, x0, z1, y1, x1) in voxels;
2. grown by `margin_mm` on every side (converted to voxels per axis with `spacing`, rounded up);
3. each of the six faces moved independently by a uniform random amount in
   [-jitter_fraction, +jitter_fraction] times the tight box's extent along that axis, rounded to voxels
   (a person misjudges each edge by a share of the organ's size);
4. clipped to the volume, keeping at least one voxel along each axis.

With `jitter_fraction = 0` no random number is drawn and the result is the (grown) tight box.
"""

from __future__ import annotations

import math

import numpy as np

from simulators.errors import check_spacing

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
