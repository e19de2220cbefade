"""The voxel weight map of paper section 2.6 (numpy/scikit-image only).

w = `scribble` (3) on scribbled voxels, `uncertain` (0) where the normalised geodesic distance to the
scribbles is below `threshold` (0.2) outside the scribbles, and 1 elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.graph import MCP_Geometric


@dataclass(frozen=True)
class WeightConfig:
    scribble: float = 3.0
    uncertain: float = 0.0
    threshold: float = 0.2  # on the geodesic distance normalised to [0, 1] by its maximum
    intensity_weight: float = 10.0  # cost per mm = 1 + intensity_weight * |grad I| (I in [-1, 1] per mm)

    def __post_init__(self):
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"interact.geodesic.threshold: {self.threshold} is outside [0, 1]")
        if self.intensity_weight < 0:
            raise ValueError(f"interact.geodesic.intensity_weight: {self.intensity_weight} must be >= 0")


def geodesic_distance(image: np.ndarray, seeds: np.ndarray, spacing, intensity_weight: float) -> np.ndarray:
    """Geodesic distance (mm-weighted) from the seed voxels over a cost that grows with the image gradient.

    The local cost of crossing a voxel is 1 + intensity_weight * |grad I| (gradient per mm), so the
    distance combines Euclidean length (intensity_weight = 0) and intensity change. Minimum-cost paths
    over the 26-neighbourhood (scikit-image MCP_Geometric, step lengths scaled by the voxel spacing).
    """
    spacing = tuple(float(s) for s in spacing)
    image = image.astype(np.float32)
    magnitude = np.zeros(image.shape, np.float32)
    for axis, step in enumerate(spacing):
        if image.shape[axis] > 1:  # a single slice has no gradient across it
            magnitude += np.gradient(image, step, axis=axis) ** 2
    magnitude = np.sqrt(magnitude)
    cost = 1.0 + intensity_weight * magnitude
    mcp = MCP_Geometric(cost, fully_connected=True, sampling=spacing)
    starts = np.argwhere(seeds)
    distance, _ = mcp.find_costs(starts)
    return distance


def uncertain_band(image: np.ndarray, scribbles: np.ndarray, spacing, cfg: WeightConfig) -> np.ndarray:
    """Voxels outside the scribbles whose geodesic distance to them, normalised by its maximum over the
    volume, is below `cfg.threshold`: the region of segmentation uncertainty around the user's strokes."""
    band = np.zeros(image.shape, bool)
    if cfg.threshold <= 0 or not scribbles.any():
        return band
    d = geodesic_distance(image, scribbles, spacing, cfg.intensity_weight)
    top = float(d.max())
    if top > 0:
        band = (d / top < cfg.threshold) & ~scribbles
    return band


def weight_map(image: np.ndarray, scribbles: np.ndarray, spacing, cfg: WeightConfig) -> np.ndarray:
    """The float32 weight map for one round's (accumulated) scribbles: `cfg.scribble` on them,
    `cfg.uncertain` in their `uncertain_band`, 1 elsewhere."""
    w = np.ones(image.shape, np.float32)
    w[uncertain_band(image, scribbles, spacing, cfg)] = cfg.uncertain
    w[scribbles] = cfg.scribble
    return w
