"""Paper section 2.3, one small function per step, and the way back to the case grid.

    case (canonical orientation, HU)
      -> crop box: bounding box of the reference (or a robot's jittered box) + margin x image extent
      -> Gaussian smoothing (sigma in voxels of the case grid), computed on the box plus the filter radius,
         which gives exactly the values of smoothing the whole image
      -> intensity: [lo, hi] -> [-1, 1], clipped; lo/hi from the HU window (CT), percentiles or z-score
      -> trilinear resampling of the box to the model grid; the label by linear-then-threshold or nearest
    -> Volume

`to_case_grid(volume, mask)` undoes the crop and resampling for any mask on the model grid.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, field_validator
from scipy import ndimage as ndi

from iunet_bench.core.rng import derive_rng
from iunet_bench.core.schema import Float, Int, Schema
from iunet_bench.data.case import Case, Geometry, Volume, parse_orientation
from simulators.box import bounding_box, jittered_box  # one box implementation, shared with the box robot

INTENSITY_MODES = ("window", "percentile", "zscore")
LABEL_INTERPOLATIONS = ("linear", "nearest")
Box = tuple[int, int, int, int, int, int]


class PreprocessConfig(Schema):
    """Paper section 2.3, one key per step (`data.preprocess.*`); the paper's values are the defaults, but
    for the grid (the paper: [24, 64, 64], set by `experiment=paper`)."""

    orientation: str | None = Field(
        "LPS",
        description="every image and label is first turned to this orientation (three letters, one of R/L, "
        "A/P, I/S; null keeps each file's)",
    )
    intensity: Literal["window", "percentile", "zscore", "auto"] = Field(
        "window",
        description="window: HU window to [-1, 1], clipped (CT); percentile: the image's percentiles to "
        "[-1, 1]; zscore: mean -/+ `zscore_clip` sd to [-1, 1] (MR or other modalities); auto: window if "
        "every case is CT, else zscore (the modality from dataset.json (msd) or each series' Modality tag "
        "(dicom); phantoms are CT; folder refuses auto: NIfTI/MHA/NRRD files do not record it)",
    )
    window: tuple[Float, Float] = Field(
        (-160.0, 240.0), description="HU mapped to -1 and 1 (intensity=window)"
    )
    percentiles: tuple[Float, Float] = Field(
        (0.5, 99.5), description="percentiles mapped to -1 and 1 (intensity=percentile)"
    )
    zscore_clip: Float = Field(
        3.0, ge=0.1, le=100, description="standard deviations mapped to -1 and 1 (intensity=zscore)"
    )
    sigma: Float = Field(
        0.75,
        ge=0,
        le=10,
        description="Gaussian smoothing before resampling, voxels of the case grid (0 = off)",
    )
    margin: Float = Field(
        0.05,
        ge=0,
        le=0.5,
        description="crop margin on each side, as a fraction of the image's extent along that axis",
    )
    grid: tuple[Int, Int, Int] = Field(
        (16, 48, 48),
        description="model grid z-y-x, trilinear resampling of the crop (the paper: [24, 64, 64])",
    )
    label_interpolation: Literal["linear", "nearest"] = Field(
        "linear",
        description="how labels and predictions are resampled (to the model grid and back): linear then "
        ">= 0.5, or nearest",
    )

    @field_validator("orientation")
    @classmethod
    def _orientation(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parse_orientation(value)
        return value.upper()

    @field_validator("window", "percentiles")
    @classmethod
    def _ordered(cls, pair: tuple[float, float], info) -> tuple[float, float]:
        if not pair[0] < pair[1]:
            raise ValueError("must be [lo, hi] with lo below hi")
        if info.field_name == "percentiles" and (pair[0] < 0 or pair[1] > 100):
            raise ValueError("must lie in [0, 100]")
        return pair

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(grid) < 2:
            raise ValueError("must be three integers >= 2 (z, y, x), e.g. [24, 64, 64]")
        return grid


def window_to_unit(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map [lo, hi] linearly to [-1, 1] and clip."""
    out = (image.astype(np.float32) - lo) * (2.0 / (hi - lo)) - 1.0
    return np.clip(out, -1.0, 1.0, out=out)


def intensity_range(image: np.ndarray, cfg: PreprocessConfig) -> tuple[float, float]:
    """The (lo, hi) that map to (-1, 1): the HU window, image percentiles, or mean -/+ k standard deviations.
    Image statistics use at most about 2 million evenly strided voxels of the whole (unsmoothed) image."""
    if cfg.intensity == "window":
        return float(cfg.window[0]), float(cfg.window[1])
    sample = image.ravel()[:: max(1, image.size // 2_000_000)]
    if cfg.intensity == "percentile":
        lo, hi = np.percentile(sample, cfg.percentiles)
    elif cfg.intensity == "zscore":
        mean, std = float(sample.mean()), float(sample.std())
        lo, hi = mean - cfg.zscore_clip * std, mean + cfg.zscore_clip * std
    else:
        raise ValueError(f"intensity {cfg.intensity!r} is not one of {list(INTENSITY_MODES)}")
    if not hi > lo:  # a constant image: any window maps it to one value
        hi = lo + 1.0
    return float(lo), float(hi)


def grow_box(box: Box, shape: tuple[int, ...], margin: float) -> Box:
    """`box` grown by `margin` times the image extent on each side (the paper's 5%), clipped to the image."""
    lo, hi = [], []
    for axis, n in enumerate(shape):
        pad = int(round(margin * n))
        lo.append(max(0, int(box[axis]) - pad))
        hi.append(min(n, int(box[axis + 3]) + pad))
    if any(b <= a for a, b in zip(lo, hi)):
        raise ValueError(f"crop box {box} lies outside the image of shape {tuple(shape)}")
    return (*lo, *hi)


def crop_box(label: np.ndarray, margin: float) -> Box:
    """Bounding box of the label, grown by `margin` times the image extent on each side, clipped to the image."""
    return grow_box(bounding_box(label), label.shape, margin)


def robot_box(case: Case, jitter: float, seed: int, margin: float) -> Box:
    """A user-like box around the reference from the box robot (simulators.box), grown by the margin."""
    rng = derive_rng(seed, case.case_id, "robot_box")
    box = jittered_box(case.label.astype(bool), rng, jitter, tuple(case.spacing))
    return grow_box(tuple(int(b) for b in box), case.label.shape, margin)


def resample(array: np.ndarray, shape: tuple[int, ...], order: int) -> np.ndarray:
    """Resample to `shape` so that the corners of the first and last voxels map onto each other."""
    factors = [s / a for s, a in zip(shape, array.shape)]
    out = ndi.zoom(array, factors, order=order, mode="nearest", grid_mode=True)
    if out.shape != tuple(shape):  # zoom rounds the factors back to a shape; never expected to differ
        raise RuntimeError(f"resampling {array.shape} to {tuple(shape)} gave {out.shape}")
    return out


def resample_mask(mask: np.ndarray, shape: tuple[int, ...], interpolation: str) -> np.ndarray:
    """A 0/1 (or probability) mask resampled to `shape` as uint8 0/1: trilinear then >= 0.5, or nearest."""
    if interpolation == "linear":
        return (resample(mask.astype(np.float32), shape, order=1) >= 0.5).astype(np.uint8)
    if interpolation == "nearest":
        return resample((mask >= 0.5).astype(np.uint8), shape, order=0)
    raise ValueError(f"label interpolation {interpolation!r} is not one of {list(LABEL_INTERPOLATIONS)}")


def smooth_region(image: np.ndarray, box: Box, sigma: float) -> np.ndarray:
    """The box of `image` after Gaussian smoothing of the whole image, computed on the box plus the filter
    radius only (identical values: scipy's border handling applies at the image border either way)."""
    region = tuple(slice(box[i], box[i + 3]) for i in range(3))
    if sigma <= 0:
        return image[region].astype(np.float32)
    radius = int(4.0 * sigma + 0.5)  # scipy's kernel radius for truncate=4
    outer = tuple(slice(max(0, box[i] - radius), min(image.shape[i], box[i + 3] + radius)) for i in range(3))
    smoothed = ndi.gaussian_filter(image[outer].astype(np.float32), sigma)
    inner = tuple(slice(box[i] - outer[i].start, box[i + 3] - outer[i].start) for i in range(3))
    return smoothed[inner]


def preprocess(case: Case, cfg: PreprocessConfig, box: Box, box_kind: str = "reference") -> Volume:
    """Paper section 2.3 on one case (already in canonical orientation), cropped to `box` (half-open
    z0, y0, x0, z1, y1, x1 on the case grid: `crop_box` or `robot_box`, margin included)."""
    if cfg.intensity == "auto":
        raise ValueError("preprocess: intensity 'auto' must be resolved to a mode first (Dataset does)")
    lo, hi = intensity_range(case.image, cfg)
    image = window_to_unit(smooth_region(case.image, box, cfg.sigma), lo, hi)
    image = resample(image, cfg.grid, order=1).astype(np.float32)
    region = tuple(slice(box[i], box[i + 3]) for i in range(3))
    label = resample_mask(case.label[region], cfg.grid, cfg.label_interpolation)
    extent = np.array([box[i + 3] - box[i] for i in range(3)], float)
    spacing = tuple(float(s) for s in np.asarray(case.spacing) * extent / np.asarray(cfg.grid))
    return Volume(
        case_id=case.case_id,
        image=image,
        label=label,
        spacing=spacing,
        crop=tuple(int(b) for b in box),
        case_shape=tuple(int(s) for s in case.image.shape),
        meta={
            "source": case.source,
            # a case without a file still maps back with its own spacing (an identity grid)
            "geometry": (case.geometry or Geometry.identity(case.image.shape, case.spacing)).as_dict(),
            "label_interpolation": cfg.label_interpolation,
            "box": box_kind,
            "intensity": {"mode": cfg.intensity, "lo": lo, "hi": hi},
            "label_voxels": int(np.count_nonzero(case.label)),  # on the case grid, before any resampling
        },
    )


def to_case_grid(volume: Volume, mask: np.ndarray, interpolation: str | None = None) -> np.ndarray:
    """A mask (0/1 or probabilities) on the model grid -> uint8 0/1 on the whole case grid (canonical
    orientation); zero outside the crop box. `interpolation` defaults to the one the volume's label used."""
    mask = np.asarray(mask)
    if mask.shape != volume.image.shape:
        raise ValueError(f"mask of shape {mask.shape} is not on the model grid {volume.image.shape}")
    interpolation = interpolation or volume.meta.get("label_interpolation", "linear")
    box = volume.crop
    extent = tuple(box[i + 3] - box[i] for i in range(3))
    out = np.zeros(volume.case_shape, np.uint8)
    out[tuple(slice(box[i], box[i + 3]) for i in range(3))] = resample_mask(mask, extent, interpolation)
    return out
