"""Error analysis: where the prediction is wrong, as 3D connected regions a user could scribble on.

`analyse_errors(reference, prediction, spacing, min_voxels)`:

1. false negatives ("add": reference AND NOT prediction) and false positives ("remove": prediction AND
   NOT reference);
2. 3D connected components of each map with 26-connectivity (so two voxels that touch on a 2D slice,
   even diagonally, always belong to the same component);
3. per component: size in voxels and mm3, its bounding box and its mask inside that box, sorted by size
   (largest first, ties in raster order of the component's first voxel); components smaller than
   `min_voxels` are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from simulators.interaction import ADD, REMOVE

_STRUCT_3D = np.ones((3, 3, 3), bool)
STRUCT_2D = np.ones((3, 3), bool)  # 8-connectivity on a slice: the one structure every 2D step uses
STRUCT_2D.flags.writeable = False


def as_masks(reference: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as boolean 3D arrays of the same shape, or a ValueError saying what is wrong."""
    reference, prediction = np.asarray(reference), np.asarray(prediction)
    if reference.ndim != 3 or reference.shape != prediction.shape:
        raise ValueError(
            f"reference {reference.shape} and prediction {prediction.shape} must be 3D z-y-x of one shape"
        )
    return reference.astype(bool), prediction.astype(bool)


def check_spacing(spacing) -> tuple[float, float, float]:
    out = tuple(float(s) for s in spacing)
    if len(out) != 3 or not all(np.isfinite(s) and s > 0 for s in out):
        raise ValueError(f"spacing {spacing!r}: expected three positive z-y-x millimetre values")
    return out  # type: ignore[return-value]


def in_plane_spacing(spacing: tuple[float, float, float], axis: int) -> tuple[float, float]:
    """Row and column spacing (mm) of a slice normal to `axis`."""
    return tuple(s for i, s in enumerate(spacing) if i != axis)  # type: ignore[return-value]


def to_volume(points2d: np.ndarray, axis: int, index: int) -> np.ndarray:
    """(n, 2) in-plane pixels of slice `index` normal to `axis` -> (n, 3) z-y-x voxel indices."""
    return np.insert(np.asarray(points2d, np.int64).reshape(-1, 2), axis, index, axis=1)


def largest_component_2d(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a 2D mask (ties: the first in raster order), or the empty mask."""
    labels, n = ndi.label(mask, structure=STRUCT_2D)
    if n <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


@dataclass(frozen=True, eq=False)
class ErrorRegion:
    """One 3D connected error component.

    polarity: "add" (missed organ) or "remove" (false organ). box: the half-open bounding box as slices;
    mask: the component inside `box` (boolean).
    """

    polarity: str
    voxels: int
    volume_mm3: float
    box: tuple[slice, slice, slice]
    mask: np.ndarray
    spacing: tuple[float, float, float]

    def areas_mm2(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """(slice indices, cross-section areas in mm2) of the slices normal to `axis` that cut the region."""
        other = tuple(a for a in range(3) if a != axis)
        counts = self.mask.sum(axis=other)
        idx = np.flatnonzero(counts)
        ps = in_plane_spacing(self.spacing, axis)
        return idx + self.box[axis].start, counts[idx] * ps[0] * ps[1]

    def section(self, axis: int, index: int) -> tuple[np.ndarray, tuple[int, int]]:
        """The region's cross-section on slice `index` normal to `axis`: (2D mask in the box, its offset)."""
        local = index - self.box[axis].start
        sec = np.take(self.mask, local, axis=axis)
        offset = tuple(self.box[a].start for a in range(3) if a != axis)
        return sec, offset  # type: ignore[return-value]


@dataclass(frozen=True, eq=False)
class ErrorAnalysis:
    """False-negative/false-positive maps and their components (see the module docstring)."""

    add: np.ndarray
    remove: np.ndarray
    spacing: tuple[float, float, float]
    regions: dict[str, tuple[ErrorRegion, ...]]

    def error(self, polarity: str) -> np.ndarray:
        return self.add if polarity == ADD else self.remove

    def eligible_volume_mm3(self, polarity: str) -> float:
        return float(sum(r.volume_mm3 for r in self.regions[polarity]))

    @property
    def is_clean(self) -> bool:
        """No component large enough to be worth a scribble."""
        return not any(self.regions.values())


def _components(error: np.ndarray, polarity: str, spacing, min_voxels: int) -> tuple[ErrorRegion, ...]:
    labels, n = ndi.label(error, structure=_STRUCT_3D)
    if n == 0:
        return ()
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    boxes = ndi.find_objects(labels)
    voxel_mm3 = float(np.prod(spacing))
    keep = [i for i in range(1, n + 1) if sizes[i] >= min_voxels]
    keep.sort(key=lambda i: -sizes[i])  # stable: ties stay in label (raster) order
    return tuple(
        ErrorRegion(
            polarity,
            int(sizes[i]),
            float(sizes[i]) * voxel_mm3,
            boxes[i - 1],
            labels[boxes[i - 1]] == i,
            spacing,
        )
        for i in keep
    )


def analyse_errors(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing=(1.0, 1.0, 1.0),
    min_voxels: int = 1,
) -> ErrorAnalysis:
    """Error maps and components of `prediction` against `reference` (see the module docstring)."""
    reference, prediction = as_masks(reference, prediction)
    spacing = check_spacing(spacing)
    add, remove = reference & ~prediction, prediction & ~reference
    regions = {
        polarity: _components(error, polarity, spacing, max(1, int(min_voxels)))
        for polarity, error in ((ADD, add), (REMOVE, remove))
    }
    return ErrorAnalysis(add, remove, spacing, regions)
