"""Noise models that make a robot draw like a person. All are off in the `ideal` robot.

Each acts on one stroke path (an (n, 2) row-column pixel array on one slice, see `strokes.py`) and takes
its randomness only from the passed `numpy.random.Generator`:

- `warp` (jitter): add a smooth random offset to every path point (white noise along the path, Gaussian
  smoothed with a standard deviation of `jitter_smoothness_mm` of path, scaled so each coordinate's
  offset has a standard deviation of `jitter_voxels`), shortened where needed to at most the point's
  depth minus one pixel (a shaky hand wobbles within the room it has: leaving the region is the separate
  overshoot model); re-join the points by digital lines and keep the longest run inside the region.
- `gap_centre` and `gap_mask` (broken stroke): `gap_centre` picks where the pen lifts, a point chosen
  uniformly along the path's length, at least `gap_mm` from either end (paths shorter than twice the gap
  stay whole); `gap_mask` is what the robot then erases from the painted stroke: every pixel within
  `gap_mm / 2` of that point, and at least the brush radius plus one pixel, so the gap always cuts the
  brush (an open stroke falls into two pieces, a closed contour opens; a stroke curled up inside its
  own gap, which would vanish, stays whole).
- `overshoot_path`: from one end of the stroke (chosen at random), carry on in a straight line to the
  nearest pixel outside the region and `overshoot_voxels` pixels beyond it, as a hand that slips over the
  boundary.
- wrong label (`wrong_label_rate`): the whole stroke gets the other label (decided in the robot).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi

from iunet_bench.core.schema import Float, Int, Schema
from simulators.strokes import connect, depth, step_lengths


class ClickNoise(Schema):
    """Rates and sizes of the human-like errors of a click (per click)."""

    jitter_voxels: Float = Field(
        0.0,
        ge=0,
        description="standard deviation (voxels) of the smooth random offset of stroke points (never more than "
        "the room inside the region), or of a click",
    )
    wrong_label_rate: Float = Field(
        0.0, ge=0, le=1, description="share of strokes or clicks given the other label"
    )

    @property
    def is_ideal(self) -> bool:
        return self.jitter_voxels == 0 and self.wrong_label_rate == 0


class Noise(ClickNoise):
    """Rates and sizes of the human-like errors of a stroke (all rates are per stroke)."""

    jitter_smoothness_mm: Float = Field(
        10.0, ge=0.1, description="length along a stroke over which jitter is smoothed"
    )
    break_rate: Float = Field(0.0, ge=0, le=1, description="share of strokes broken by a gap")
    gap_mm: Float = Field(
        6.0,
        ge=0,
        description="length of the gap in a broken stroke (at least the brush width); strokes under two gaps stay whole",
    )
    overshoot_rate: Float = Field(
        0.0, ge=0, le=1, description="share of strokes that run over the region's border"
    )
    overshoot_voxels: Int = Field(2, ge=1, description="how far past the border an overshooting stroke runs")

    @property
    def is_ideal(self) -> bool:
        return super().is_ideal and self.break_rate == 0 and self.overshoot_rate == 0


def _inside(points: np.ndarray, region: np.ndarray) -> np.ndarray:
    ok = _inside_bounds(points, region.shape)
    out = np.zeros(len(points), bool)
    out[ok] = region[points[ok, 0], points[ok, 1]]
    return out


def _longest_run(flags: np.ndarray) -> slice | None:
    best, start, best_len = None, None, 0
    for i, f in enumerate(np.append(flags, False)):
        if f and start is None:
            start = i
        elif not f and start is not None:
            if i - start > best_len:
                best, best_len = slice(start, i), i - start
            start = None
    return best


def smooth_noise(n: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """(n, 2) Gaussian-smoothed white noise (sigma in samples) with unit standard deviation per coordinate
    (scaled by the filter's gain, not by the sample: a short path gets a near-constant offset, not a
    blown-up one)."""
    noise = rng.normal(size=(n, 2))
    if n < 2:
        return noise
    half = int(4 * sigma) + 1
    impulse = np.zeros(2 * half + 1)
    impulse[half] = 1.0
    gain = float(np.sqrt((ndi.gaussian_filter1d(impulse, sigma, mode="constant") ** 2).sum()))
    return ndi.gaussian_filter1d(noise, sigma, axis=0, mode="nearest") / gain


def warp(
    path: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    amplitude_voxels: float,
    smoothness_mm: float,
    spacing2: tuple[float, float],
) -> np.ndarray:
    """The jittered path (see the module docstring); the original path when no jittered point is inside."""
    if amplitude_voxels <= 0 or len(path) == 0:
        return path
    steps = step_lengths(path, spacing2)
    mean_step = float(steps.mean()) if len(steps) else 1.0
    offsets = smooth_noise(len(path), rng, max(smoothness_mm / max(mean_step, 1e-6), 1e-3)) * amplitude_voxels
    room = np.maximum(depth(region)[path[:, 0], path[:, 1]] - 1.0, 0.0)
    norm = np.sqrt((offsets**2).sum(1))
    offsets *= np.minimum(1.0, room / np.maximum(norm, 1e-9))[:, None]
    moved = connect(path + offsets)
    run = _longest_run(_inside(moved, region))
    return path if run is None else moved[run]


def gap_centre(
    path: np.ndarray, rng: np.random.Generator, gap_mm: float, spacing2: tuple[float, float]
) -> np.ndarray | None:
    """Where the pen lifts (a float row-column point on the path), or None for a path shorter than 2 gaps."""
    arc = np.concatenate([[0.0], np.cumsum(step_lengths(path, spacing2))])
    if len(path) < 3 or arc[-1] < 2 * gap_mm:
        return None
    at = rng.uniform(gap_mm, arc[-1] - gap_mm)
    i = int(np.clip(np.searchsorted(arc, at) - 1, 0, len(path) - 2))
    t = (at - arc[i]) / max(arc[i + 1] - arc[i], 1e-9)
    return path[i] + t * (path[i + 1] - path[i])


def gap_mask(
    shape: tuple[int, int],
    centre: np.ndarray,
    gap_mm: float,
    brush_radius: float,
    spacing2: tuple[float, float],
) -> np.ndarray:
    """Pixels erased by a gap at `centre`: within gap_mm / 2 (mm), and within the brush radius + 1 pixel."""
    r, c = np.indices(shape, sparse=True)
    dr, dc = (r - centre[0]), (c - centre[1])
    in_mm = (dr * spacing2[0]) ** 2 + (dc * spacing2[1]) ** 2 <= (gap_mm / 2.0) ** 2
    in_pixels = dr**2 + dc**2 <= (brush_radius + 1.0) ** 2
    return in_mm | in_pixels


def overshoot_path(end: np.ndarray, region: np.ndarray, voxels: int) -> np.ndarray:
    """Pixels from `end` (inside `region`) straight to the nearest pixel outside it and `voxels` beyond,
    clipped to the array; empty when the region fills the whole array."""
    if region.all():
        return np.zeros((0, 2), int)
    _, (ri, ci) = ndi.distance_transform_edt(region, return_indices=True)
    target = np.array([ri[tuple(end)], ci[tuple(end)]], float)
    d = target - end
    dist = float(np.hypot(*d))
    far = end + d * (dist + voxels) / dist
    line = connect(np.stack([end, target, far]))  # through the nearest outside pixel itself
    return line[_inside_bounds(line, region.shape)]


def _inside_bounds(points: np.ndarray, shape) -> np.ndarray:
    return (points >= 0).all(1) & (points[:, 0] < shape[0]) & (points[:, 1] < shape[1])


def jitter_point(point: np.ndarray, rng: np.random.Generator, amplitude_voxels: float, shape) -> np.ndarray:
    """A click position moved by a rounded Gaussian offset (standard deviation `amplitude_voxels`),
    clipped to the slice."""
    if amplitude_voxels <= 0:
        return point
    moved = np.rint(point + rng.normal(0.0, amplitude_voxels, size=2)).astype(int)
    return np.clip(moved, 0, np.asarray(shape) - 1)
