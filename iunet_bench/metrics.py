"""Segmentation and interaction metrics: pure functions on numpy arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi


def dsc(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Dice similarity coefficient of two binary masks; 1.0 when both are empty."""
    a, b = reference.astype(bool), prediction.astype(bool)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask, structure=ndi.generate_binary_structure(mask.ndim, 1))


def hd95(reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]) -> float:
    """95th percentile symmetric surface distance in mm; inf if exactly one mask is empty, 0 if both are."""
    a, b = reference.astype(bool), prediction.astype(bool)
    if not a.any() and not b.any():
        return 0.0
    if not a.any() or not b.any():
        return float("inf")
    sa, sb = _surface(a), _surface(b)
    da = ndi.distance_transform_edt(~sa, sampling=spacing)
    db = ndi.distance_transform_edt(~sb, sampling=spacing)
    return float(np.percentile(np.concatenate([db[sa], da[sb]]), 95))


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
