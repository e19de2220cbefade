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
    grads = np.gradient(image.astype(np.float32), *spacing)
    magnitude = np.sqrt(sum(g * g for g in grads))
    cost = 1.0 + intensity_weight * magnitude
    mcp = MCP_Geometric(cost, fully_connected=True, sampling=spacing)
    starts = np.argwhere(seeds)
    distance, _ = mcp.find_costs(starts)
    return distance


def weight_map(image: np.ndarray, scribbles: np.ndarray, spacing, cfg: WeightConfig) -> np.ndarray:
    """The float32 weight map for one round's (accumulated) scribbles."""
    w = np.ones(image.shape, np.float32)
    if not scribbles.any():
        return w
    if cfg.threshold > 0:
        d = geodesic_distance(image, scribbles, spacing, cfg.intensity_weight)
        top = float(d.max())
        if top > 0:
            w[(d / top < cfg.threshold) & ~scribbles] = cfg.uncertain
    w[scribbles] = cfg.scribble
    return w
