"""Segmentation and interaction metrics: pure functions on numpy arrays."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np


def dsc(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Dice similarity coefficient of two binary masks; 1.0 when both are empty."""
    a, b = reference.astype(bool), prediction.astype(bool)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


@dataclass(frozen=True)
class SurfaceDistances:
    """Surface distances of one (reference, prediction) pair, computed once by DeepMind's `surface-distance`.

    `raw` is the package's dict (`distances_gt_to_pred`, `distances_pred_to_gt`, `surfel_areas_gt`,
    `surfel_areas_pred`), sorted by distance, in mm and mm^2; the reference plays the package's "gt".
    When exactly one mask is empty, the other mask's surfels are kept with distance inf (the package's own
    documented semantics; its code path for that case uses `np.Inf`, which NumPy 2 removed, so it is not taken).
    """

    raw: Mapping[str, np.ndarray]
    reference_empty: bool
    prediction_empty: bool

    def hd95(self) -> float:
        """See `hd95`."""
        if self.reference_empty and self.prediction_empty:
            return 0.0
        if self.reference_empty or self.prediction_empty:
            return float("inf")
        import surface_distance

        return float(surface_distance.compute_robust_hausdorff(self.raw, 95))

    def nsd(self, tolerance_mm: float) -> float:
        """See `nsd`."""
        if self.reference_empty and self.prediction_empty:
            return 1.0
        if self.reference_empty or self.prediction_empty:
            return 0.0
        import surface_distance

        return float(surface_distance.compute_surface_dice_at_tolerance(self.raw, float(tolerance_mm)))


def _package_distances(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]) -> dict:
    with warnings.catch_warnings():
        # surface-distance 0.1 calls scipy.ndimage.filters / .morphology, deprecated namespaces in SciPy 1.x
        warnings.simplefilter("ignore", DeprecationWarning)
        import surface_distance  # imported here: the engine (benchmarks/gpu.py) runs without it

        return surface_distance.compute_surface_distances(reference, prediction, spacing)


def surface_distances(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]
) -> SurfaceDistances:
    """Surfel-based surface distances between two binary masks (2D or 3D), for HD95 and NSD of one round.

    `spacing` is the voxel size in mm per array axis, in the arrays' axis order (z-y-x for z-y-x arrays),
    which is the order `surface_distance.compute_surface_distances` expects.
    """
    a, b = np.asarray(reference).astype(bool), np.asarray(prediction).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"reference {a.shape} and prediction {b.shape} differ in shape")
    spacing = tuple(float(s) for s in spacing)
    a_empty, b_empty = not a.any(), not b.any()
    if a_empty == b_empty:  # both empty (the package returns empty arrays) or both not
        raw = _package_distances(a, b, spacing)
    else:  # exactly one empty: surfel areas of the non-empty one from the package, distances inf
        own = _package_distances(b if a_empty else a, b if a_empty else a, spacing)
        key = "pred" if a_empty else "gt"
        areas = own[f"surfel_areas_{key}"]
        raw = {
            "distances_gt_to_pred": np.full(0 if a_empty else areas.size, np.inf),
            "distances_pred_to_gt": np.full(areas.size if a_empty else 0, np.inf),
            "surfel_areas_gt": np.array([]) if a_empty else areas,
            "surfel_areas_pred": areas if a_empty else np.array([]),
        }
    return SurfaceDistances(MappingProxyType(raw), a_empty, b_empty)


def hd95(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]) -> float:
    """95th percentile Hausdorff distance in mm; inf if exactly one mask is empty, 0 if both are.

    Convention (DeepMind surface-distance `compute_robust_hausdorff(d, 95)`, MONAI's default
    `directed=False` HD95, and the CVPR 2024/2025 interactive / foundation-model segmentation challenges):
    the MAXIMUM of the two directed 95th percentiles (reference -> prediction and prediction -> reference),
    each over surface elements weighted by their area. This differs from the convention used here before
    (and by medpy's `hd95`): the 95th percentile of the POOLED, unweighted voxel-surface distances of both
    directions, which is never larger and can be much smaller when one surface is far off only in part.
    """
    return surface_distances(reference, prediction, spacing).hd95()


def nsd(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float], tolerance_mm: float
) -> float:
    """Normalised surface Dice at `tolerance_mm` (surface-distance `compute_surface_dice_at_tolerance`):
    the share of both surfaces' area lying within the tolerance of the other surface, in [0, 1].
    1.0 when both masks are empty, 0.0 when exactly one is."""
    return surface_distances(reference, prediction, spacing).nsd(tolerance_mm)


def surface_metrics(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float], tolerance_mm: float
) -> tuple[float, float]:
    """(hd95, nsd) of one pair from a single surface-distance computation (see `hd95` and `nsd`)."""
    d = surface_distances(reference, prediction, spacing)
    return d.hd95(), d.nsd(tolerance_mm)


def volume_ratio(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Predicted voxels / reference voxels (1.0 = same volume); NaN when the reference is empty."""
    n_ref = int(np.count_nonzero(reference))
    if n_ref == 0:
        return float("nan")
    return int(np.count_nonzero(prediction)) / n_ref


def _check_effort_curve(dsc_per_round: Sequence[float], cumulative_seconds: Sequence[float]):
    c = np.asarray(dsc_per_round, float)
    t = np.asarray(cumulative_seconds, float)
    if c.ndim != 1 or t.ndim != 1 or len(c) != len(t):
        raise ValueError(f"dsc_per_round ({len(c)}) and cumulative_seconds ({len(t)}) differ in length")
    if len(c) == 0:
        raise ValueError("empty curve: round 0 (the baseline) is required")
    if t[0] < 0 or np.any(np.diff(t) < 0):
        raise ValueError("cumulative_seconds must be non-negative and non-decreasing")
    return c, t


def effort_auc(dsc_per_round: Sequence[float], cumulative_seconds: Sequence[float], budget_s: float) -> float:
    """Area under DSC against the user's cumulative estimated seconds on [0, budget_s], over budget_s.

    Step function: round k's DSC holds from cumulative_seconds[k] until the next round's time (round 0, the
    baseline, holds from 0 s); the last round's DSC holds until budget_s; time past budget_s is cut off, so
    rounds completing after the budget do not count. A constant curve gives the constant.
    """
    if not budget_s > 0:
        raise ValueError(f"budget_s must be > 0, got {budget_s}")
    c, t = _check_effort_curve(dsc_per_round, cumulative_seconds)
    start = np.clip(np.concatenate([[0.0], t[1:]]), 0.0, budget_s)
    end = np.clip(np.concatenate([t[1:], [budget_s]]), 0.0, budget_s)
    return float(np.sum(c * (end - start)) / budget_s)


def seconds_to(
    dsc_per_round: Sequence[float], cumulative_seconds: Sequence[float], threshold: float
) -> float:
    """Cumulative estimated seconds at the first round whose DSC >= threshold; 0.0 if round 0 (the baseline)
    already does, inf if no round does."""
    c, t = _check_effort_curve(dsc_per_round, cumulative_seconds)
    for k, value in enumerate(c):
        if value >= threshold:
            return 0.0 if k == 0 else float(t[k])
    return float("inf")


def scribble_agreement(prediction: np.ndarray, add: np.ndarray, remove: np.ndarray) -> float:
    """Share of scribbled voxels that `prediction` labels as the user did: foreground on "add" voxels,
    background on "remove" voxels. NaN when nothing is scribbled (nothing to agree with)."""
    pred = prediction.astype(bool)
    add, remove = add.astype(bool), remove.astype(bool)
    total = int(add.sum()) + int(remove.sum())
    if total == 0:
        return float("nan")
    return (int(np.count_nonzero(pred & add)) + int(np.count_nonzero(~pred & remove))) / total


def noi(curve: Sequence[float], threshold: float) -> int:
    """Number of interactions (rounds) until the DSC first reaches `threshold`; round 0 is the baseline.

    As in RITM's NoC, a curve that never reaches it counts as its last round (len(curve) - 1).
    """
    for r, value in enumerate(curve):
        if value >= threshold:
            return r
    return len(curve) - 1


def auc(curve: Sequence[float]) -> float:
    """Area under the DSC-per-round curve normalised to [0, 1] (trapezoid over rounds 0..R)."""
    c = np.asarray(curve, float)
    if len(c) == 1:
        return float(c[0])
    return float(np.sum((c[1:] + c[:-1]) / 2.0) / (len(c) - 1))
