"""Synthetic wrong predictions: a model's typical mistakes made from a reference, to exercise and time the
robots without a model (the simulator tests and `benchmarks/robot_speed.py` use the same one).

`perturb(reference, erode, dilate, shift, blob_seed)`, step by step:

1. erode the reference `erode` times, then dilate it `dilate` times (3D, 6-connected steps); a count of 0
   skips that step (scipy reads `iterations=0` as "repeat until nothing changes", which would empty or
   flood the volume). Beyond the array's edge counts as foreground when eroding: an organ cut by the
   field of view is not eaten from the cut (scipy's default, background there, emptied a one-slice volume
   with `erode=1`);
2. roll it by `shift` voxels along z, y, x (wrapping around the volume's edge);
3. with a `blob_seed`: paint one false box (value 1) and then one missed box (value 0), each 2 to 5 voxels
   along each axis, at random corners drawn from `numpy.random.default_rng(blob_seed)`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def perturb(
    reference: np.ndarray,
    erode: int = 0,
    dilate: int = 0,
    shift: tuple[int, int, int] = (0, 0, 0),
    blob_seed: int | None = None,
) -> np.ndarray:
    """A wrong prediction (boolean, the reference's shape) made from `reference` (see the module docstring)."""
    if erode < 0 or dilate < 0:
        raise ValueError(f"perturb: erode {erode} and dilate {dilate} must be >= 0")
    pred = np.asarray(reference).astype(bool)
    if erode > 0:
        pred = ndi.binary_erosion(pred, iterations=erode, border_value=1)
    if dilate > 0:
        pred = ndi.binary_dilation(pred, iterations=dilate)
    pred = np.roll(pred, shift, axis=(0, 1, 2))
    if blob_seed is not None:
        rng = np.random.default_rng(blob_seed)
        for value in (True, False):
            lo = rng.integers(0, np.maximum(np.array(pred.shape) - 6, 1))
            pred[tuple(slice(a, a + s) for a, s in zip(lo, rng.integers(2, 6, size=3)))] = value
    return pred
