"""The voxel weight map of paper section 2.6 (numpy/scikit-image only).

w = `scribble` (3) on scribbled voxels, `uncertain` (0) where the normalised geodesic distance to the
scribbles is below `threshold` (0.2) outside the scribbles, and 1 elsewhere.
"""

from __future__ import annotations

import numpy as np
from skimage.graph import MCP_Geometric

from iunet_bench.interactive.config import GeodesicConfig, WeightsConfig


def geodesic_cost(image: np.ndarray, spacing, intensity_weight: float) -> np.ndarray:
    """The local cost of crossing each voxel: 1 + intensity_weight * |grad I| (gradient per mm)."""
    spacing = tuple(float(s) for s in spacing)
    image = image.astype(np.float32)
    magnitude = np.zeros(image.shape, np.float32)
    for axis, step in enumerate(spacing):
        if image.shape[axis] > 1:  # a single slice has no gradient across it
            magnitude += np.gradient(image, step, axis=axis) ** 2
    return 1.0 + intensity_weight * np.sqrt(magnitude)


class Geodesic:
    """Geodesic distances (mm-weighted) over one image, for any seeds: the cost map and the minimum-cost-path
    graph are built once (per case: the image never changes within a session), `distance(seeds)` per round.

    The cost combines Euclidean length (intensity_weight = 0) and intensity change (`geodesic_cost`);
    minimum-cost paths over the 26-neighbourhood (scikit-image MCP_Geometric, step lengths scaled by the
    voxel spacing). Reusing the MCP object gives bit-identical distances to a fresh one (tested).
    """

    def __init__(self, image: np.ndarray, spacing, intensity_weight: float):
        self.shape = tuple(image.shape)
        self.spacing = tuple(float(s) for s in spacing)
        self.intensity_weight = float(intensity_weight)
        cost = geodesic_cost(image, self.spacing, self.intensity_weight)
        self._mcp = MCP_Geometric(cost, fully_connected=True, sampling=self.spacing)

    def distance(self, seeds: np.ndarray) -> np.ndarray:
        distance, _ = self._mcp.find_costs(np.argwhere(seeds))
        return distance.copy()  # scikit-image returns its own buffer, overwritten by the next call

    def matches(self, image: np.ndarray, spacing, cfg: GeodesicConfig) -> bool:
        return (
            self.shape == tuple(image.shape)
            and self.spacing == tuple(float(s) for s in spacing)
            and self.intensity_weight == float(cfg.intensity_weight)
        )


def geodesic_distance(image: np.ndarray, seeds: np.ndarray, spacing, intensity_weight: float) -> np.ndarray:
    """Geodesic distance from the seed voxels (see `Geodesic`), building the graph for this call only."""
    return Geodesic(image, spacing, intensity_weight).distance(seeds)


def uncertain_band(
    image: np.ndarray, scribbles: np.ndarray, spacing, cfg: GeodesicConfig, geodesic: Geodesic | None = None
) -> np.ndarray:
    """Voxels outside the scribbles whose geodesic distance to them, normalised by its maximum over the
    volume, is below `cfg.threshold`: the region of segmentation uncertainty around the user's strokes.

    geodesic: the image's `Geodesic`, built once per case (None: built for this call)."""
    band = np.zeros(image.shape, bool)
    if cfg.threshold <= 0 or not scribbles.any():
        return band
    if geodesic is None:
        geodesic = Geodesic(image, spacing, cfg.intensity_weight)
    elif not geodesic.matches(image, spacing, cfg):
        raise ValueError("uncertain_band: the cached Geodesic was built for another image, spacing or weight")
    d = geodesic.distance(scribbles)
    top = float(d.max())
    if top > 0:
        band = (d / top < cfg.threshold) & ~scribbles
    return band


def weight_map(
    image: np.ndarray,
    scribbles: np.ndarray,
    spacing,
    weights: WeightsConfig,
    band: GeodesicConfig,
    geodesic: Geodesic | None = None,
) -> np.ndarray:
    """The float32 weight map for one round's (accumulated) scribbles: `weights.scribble` on them,
    `weights.uncertain` in their `uncertain_band` (of `band`), 1 elsewhere."""
    w = np.ones(image.shape, np.float32)
    w[uncertain_band(image, scribbles, spacing, band, geodesic)] = weights.uncertain
    w[scribbles] = weights.scribble
    return w


def confidence_weight_map(
    probability: np.ndarray, scribbles: np.ndarray, scribble_weight: float, confident: float
) -> np.ndarray:
    """BIFSeg's weight map: `scribble_weight` on scribbled voxels, 0 where the network is unsure of its own
    previous prediction (the larger class probability max(p, 1 - p) below `confident`), 1 elsewhere."""
    p = np.asarray(probability, np.float32)
    w = np.ones(p.shape, np.float32)
    w[np.maximum(p, 1.0 - p) < confident] = 0.0
    w[scribbles] = scribble_weight
    return w
