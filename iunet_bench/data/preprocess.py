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

import zlib
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage as ndi

from iunet_bench.data.case import Case, Geometry, Volume
from simulators.box import bounding_box, jittered_box  # one box implementation, shared with the box robot

INTENSITY_MODES = ("window", "percentile", "zscore")
CROP_MODES = ("reference", "robot_box")
LABEL_INTERPOLATIONS = ("linear", "nearest")
Box = tuple[int, int, int, int, int, int]


@dataclass(frozen=True)
class PreprocessConfig:
    sigma: float = 0.75  # Gaussian smoothing, voxels of the case grid (0 = off)
    window: tuple[float, float] = (-160.0, 240.0)  # HU mapped to [-1, 1] and clipped (intensity=window)
    margin: float = 0.05  # fraction of the image's extent added around the crop box, per axis
    grid: tuple[int, int, int] = (24, 64, 64)  # model grid, z-y-x
    orientation: str | None = "LPS"  # canonical orientation every case is turned to (None: keep the file's)
    intensity: str = "window"  # window | percentile | zscore
    percentiles: tuple[float, float] = (0.5, 99.5)  # intensity=percentile: these map to -1 and 1
    zscore_clip: float = 3.0  # intensity=zscore: mean -/+ this many standard deviations map to -1 and 1
    crop: str = "reference"  # reference | robot_box
    box_jitter: float = 0.1  # crop=robot_box: jitter fraction handed to simulators.box.jittered_box
    seed: int = 0  # crop=robot_box: seeds the per-case box generator
    label_interpolation: str = "linear"  # linear (then >= 0.5) | nearest

    def key(self) -> dict:
        """What determines the output (for cache keys): the seed and jitter only matter for robot boxes."""
        d = asdict(self)
        if self.crop != "robot_box":
            d.pop("seed")
            d.pop("box_jitter")
        return d


def case_rng(seed: int, case_id: str, purpose: str) -> np.random.Generator:
    """A generator for one case and one purpose, derived from the config seed (stable across runs)."""
    return np.random.default_rng([int(seed), zlib.crc32(case_id.encode()), zlib.crc32(purpose.encode())])


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


def robot_box(case: Case, cfg: PreprocessConfig) -> Box:
    """A user-like box around the reference from the box robot (simulators.box), grown by the margin."""

    rng = case_rng(cfg.seed, case.case_id, "robot_box")
    box = jittered_box(case.label.astype(bool), rng, cfg.box_jitter, tuple(case.spacing))
    return grow_box(tuple(int(b) for b in box), case.label.shape, cfg.margin)


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


def preprocess(case: Case, cfg: PreprocessConfig) -> Volume:
    """Paper section 2.3 on one case (already in canonical orientation)."""
    if cfg.crop == "reference":
        box = crop_box(case.label, cfg.margin)
    elif cfg.crop == "robot_box":
        box = robot_box(case, cfg)
    else:
        raise ValueError(f"crop {cfg.crop!r} is not one of {list(CROP_MODES)}")
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
            "box": cfg.crop,
            "intensity": {"mode": cfg.intensity, "lo": lo, "hi": hi},
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
