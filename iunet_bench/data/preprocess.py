"""Paper section 2.3: smooth, window, crop to the reference box plus a margin, resample to the model grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from iunet_bench.data.case import Case, Volume


@dataclass(frozen=True)
class PreprocessConfig:
    sigma: float = 0.75  # Gaussian smoothing, voxels of the case grid
    window: tuple[float, float] = (-160.0, 240.0)  # HU mapped to [-1, 1] and clipped
    margin: float = 0.05  # fraction of the image's extent added around the crop box, per axis
    grid: tuple[int, int, int] = (24, 64, 64)  # model grid, z-y-x


def window_to_unit(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly to [-1, 1] and clip."""
    out = (image.astype(np.float32) - lo) * (2.0 / (hi - lo)) - 1.0
    return np.clip(out, -1.0, 1.0, out=out)


def crop_box(label: np.ndarray, margin: float) -> tuple[int, int, int, int, int, int]:
    """Bounding box of the label, grown by `margin` times the image extent on each side, clipped to the image."""
    if not label.any():
        raise ValueError("the reference label is empty: cannot crop to its bounding box")
    idx = np.nonzero(label)
    lo, hi = [], []
    for axis, n in enumerate(label.shape):
        pad = int(round(margin * n))
        lo.append(max(0, int(idx[axis].min()) - pad))
        hi.append(min(n, int(idx[axis].max()) + 1 + pad))
    return (*lo, *hi)


def resample(array: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """Resample to `shape` so that the corners of the first and last voxels map onto each other."""
    factors = [s / a for s, a in zip(shape, array.shape)]
    return ndi.zoom(array, factors, order=order, mode="nearest", grid_mode=True)


def preprocess(case: Case, cfg: PreprocessConfig) -> Volume:
    image = ndi.gaussian_filter(case.image.astype(np.float32), cfg.sigma) if cfg.sigma > 0 else case.image
    image = window_to_unit(image, *cfg.window)
    box = crop_box(case.label, cfg.margin)
    region = tuple(slice(box[i], box[i + 3]) for i in range(3))
    image = resample(image[region], cfg.grid, order=1).astype(np.float32)
    label = resample(case.label[region].astype(np.float32), cfg.grid, order=1) >= 0.5
    extent = np.array([box[i + 3] - box[i] for i in range(3)], float)
    spacing = tuple(float(s) for s in np.asarray(case.spacing) * extent / np.asarray(cfg.grid))
    return Volume(
        case_id=case.case_id,
        image=image,
        label=label.astype(np.uint8),
        spacing=spacing,
        crop=box,
        case_shape=tuple(case.image.shape),
    )
