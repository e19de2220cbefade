"""Noise models that make a robot draw like a person. All are off in the `ideal` robot.

Each acts on one stroke path (an (n, 2) row-column pixel array on one slice, see `strokes.py`) and takes
its randomness only from the passed `numpy.random.Generator`:

- `warp` (jitter): add a smooth random offset to every path point (white noise along the path, Gaussian
  smoothed over `jitter_smoothness_mm`, scaled to a standard deviation of `jitter_voxels`), re-join the
  points by digital lines, and keep the longest run that stays in the region (a shaky hand stays inside
  what it meant to mark; leaving the region is the separate overshoot model).
- `break_path` (broken stroke): cut one gap of `gap_mm` at a uniformly random place that leaves at least
  `gap_mm` of path on either side; paths shorter than twice the gap stay whole.
- `overshoot_path`: from one end of the stroke (chosen at random), carry on in a straight line to the
  nearest pixel outside the region and `overshoot_voxels` pixels beyond it, as a hand that slips over the
  boundary.
- wrong label (`wrong_label_rate`): the whole stroke gets the other label (decided in the robot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from simulators.strokes import connect, step_lengths


@dataclass(frozen=True)
class Noise:
    """Rates and sizes of the human-like errors (all rates are per stroke or per click)."""

    jitter_voxels: float = (
        0.0  # standard deviation of the smooth offset of stroke points (clicks: of the click)
    )
    jitter_smoothness_mm: float = 10.0  # length along the stroke over which the offset is smoothed
    break_rate: float = 0.0  # share of strokes with a gap
    gap_mm: float = 6.0  # length of a gap
    overshoot_rate: float = 0.0  # share of strokes that cross the region's border
    overshoot_voxels: int = 2  # how far past the border an overshooting stroke goes
    wrong_label_rate: float = 0.0  # share of strokes (or clicks) given the other label

    @property
    def is_ideal(self) -> bool:
        return (
            self.jitter_voxels == 0
            and self.break_rate == 0
            and self.overshoot_rate == 0
            and (self.wrong_label_rate == 0)
        )


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


def warp(
    path: np.ndarray,
    region: np.ndarray,
    rng: np.random.Generator,
    amplitude_voxels: float,
    smoothness_mm: float,
    spacing2: tuple[float, float],
) -> np.ndarray:
    """The jittered path (see the module docstring); the original path when every jittered point left."""
    if amplitude_voxels <= 0 or len(path) == 0:
        return path
    steps = step_lengths(path, spacing2)
    mean_step = float(steps.mean()) if len(steps) else 1.0
    sigma = max(smoothness_mm / max(mean_step, 1e-6), 1e-6)
    noise = rng.normal(size=(len(path), 2))
    offsets = ndi.gaussian_filter1d(noise, sigma, axis=0, mode="nearest") if len(path) > 1 else noise
    sd = offsets.std(axis=0)
    offsets = offsets / np.where(sd > 1e-9, sd, 1.0) * amplitude_voxels
    moved = connect(path + offsets)
    run = _longest_run(_inside(moved, region))
    return path if run is None else moved[run]


def break_path(
    path: np.ndarray, rng: np.random.Generator, gap_mm: float, spacing2: tuple[float, float]
) -> list[np.ndarray]:
    """The path cut by one gap (two pieces), or [path] when it is shorter than twice the gap."""
    arc = np.concatenate([[0.0], np.cumsum(step_lengths(path, spacing2))])
    if len(path) < 3 or arc[-1] < 2 * gap_mm:
        return [path]
    centre = rng.uniform(gap_mm, arc[-1] - gap_mm)
    before, after = arc < centre - gap_mm / 2, arc > centre + gap_mm / 2
    return [p for p in (path[before], path[after]) if len(p)]


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
