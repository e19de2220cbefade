"""Synthetic abdominal CT phantoms with a pancreas-like organ. Deterministic given the seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from iunet_bench.data.case import Case


@dataclass(frozen=True)
class PhantomConfig:
    n_cases: int = 12
    shape: tuple[int, int, int] = (32, 96, 96)  # z-y-x voxels
    spacing: tuple[float, float, float] = (2.5, 1.5, 1.5)  # z-y-x mm
    organ_hu: float = 45.0
    bowel_hu: float = 40.0
    fat_hu: float = -90.0
    fat_thickness: float = 2.0  # voxels of fat between organ and neighbours (smaller = harder)
    noise_hu: float = 20.0


def _tube(shape, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Voxels within radius(t) of a polyline (z, y, x points), as a float distance margin (>0 inside)."""
    zz, yy, xx = np.indices(shape, dtype=np.float32)
    grid = np.stack([zz, yy, xx], -1)
    best = np.full(shape, -np.inf, np.float32)
    for p, r in zip(points, radii):
        d = np.sqrt(((grid - p) ** 2 * np.array([4.0, 1.0, 1.0], np.float32)).sum(-1))
        best = np.maximum(best, r - d)
    return best


def make_phantom(case_id: str, rng: np.random.Generator, cfg: PhantomConfig) -> Case:
    nz, ny, nx = cfg.shape
    t = np.linspace(0.0, 1.0, 24)
    # head (right, low, thick) -> body -> tail (left, high, thin), with per-case bends
    bend = rng.uniform(-0.15, 0.15, size=3)
    z = nz * (0.55 - 0.15 * t + bend[0] * np.sin(np.pi * t))
    y = ny * (0.55 - 0.12 * np.sin(np.pi * t) + bend[1] * t)
    x = nx * (0.25 + 0.5 * t + bend[2] * np.sin(2 * np.pi * t) * 0.3)
    radii = nx * (0.085 - 0.04 * t) * rng.uniform(0.85, 1.15)
    points = np.stack([z, y, x], -1).astype(np.float32)
    organ_margin = _tube(cfg.shape, points, radii)
    organ = organ_margin > 0

    # a bowel-like loop of similar HU running along the head, touching it in places
    shift = np.array([0.0, ny * rng.uniform(0.12, 0.18), nx * rng.uniform(-0.05, 0.05)], np.float32)
    bowel_pts = points[:10] + shift
    bowel_margin = _tube(cfg.shape, bowel_pts, np.full(10, nx * 0.08))
    bowel = (bowel_margin > 0) & (organ_margin < -cfg.fat_thickness * rng.uniform(0.0, 1.0))

    zz, yy, xx = np.indices(cfg.shape, dtype=np.float32)
    body = ((yy - ny / 2) / (ny * 0.48)) ** 2 + ((xx - nx / 2) / (nx * 0.48)) ** 2 < 1
    image = np.full(cfg.shape, -1000.0, np.float32)
    image[body] = cfg.fat_hu
    # vessels: a bright tube behind the organ
    vessel = (
        _tube(cfg.shape, points[4:20] + np.array([0, -ny * 0.1, 0], np.float32), np.full(16, nx * 0.03)) > 0
    )
    image[vessel & body] = 160.0
    image[bowel] = cfg.bowel_hu
    image[organ] = cfg.organ_hu
    texture = ndi.gaussian_filter(rng.normal(0, 1, cfg.shape).astype(np.float32), 1.5) * 25
    image = image + np.where(body, texture, 0)
    image = ndi.gaussian_filter(image, 0.7)  # partial volume
    image = image + rng.normal(0, cfg.noise_hu, cfg.shape).astype(np.float32)
    return Case(
        case_id, image.astype(np.float32), organ.astype(np.uint8), tuple(cfg.spacing), None, "phantom"
    )


def make_phantoms(cfg: PhantomConfig, seed: int) -> list[Case]:
    children = np.random.SeedSequence(seed).spawn(cfg.n_cases)
    return [make_phantom(f"phantom_{i:03d}", np.random.default_rng(s), cfg) for i, s in enumerate(children)]
