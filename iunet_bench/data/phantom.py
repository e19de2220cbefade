"""Synthetic abdominal CT phantoms around a pancreas-like organ. Deterministic given the seed.

The anatomy is laid out in millimetres in a reference box of 80 x 150 x 150 mm (z-y-x, canonical LPS:
z inferior->superior, y anterior->posterior, x patient right->left) and stretched to the phantom's field
of view (shape x spacing); at the defaults the stretch is 1, so millimetres are millimetres.

What makes it hard in the way pancreas CT is hard:
- the organ (30-60 HU) has a thick head with an uncinate process, a thinner body and tail, a curved course
  and a lobulated outline;
- bowel of similar HU (duodenal C-loop around the head, jejunal loops near body and tail, the stomach in
  front) and the splenic vein along its back lie next to it, separated by a fat layer whose thickness
  varies along the surface and is zero where they touch (`fat_thickness`, `touch_fraction`);
- vessels, kidney, spleen, liver and spine give bright and dark context;
- per-case slice spacing (`z_spacing`), partial volume (soft edges, a slice-profile blur) and
  correlated CT-like noise (`noise_hu`).

Difficulty knobs: fat_thickness (less fat = harder), bowel_fill (more bowel packed around = less fat =
harder), organ_hu - bowel_hu (contrast), noise_hu, touch_fraction, texture_hu, lobulation,
shape_variability (how different one patient's organ is from the next: the baseline's generalisation gap).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field, field_validator
from scipy import ndimage as ndi
from scipy.interpolate import CubicSpline

from iunet_bench.core.schema import Float, Int, Schema
from iunet_bench.data.case import Case, Geometry

REFERENCE_FOV = np.array([80.0, 150.0, 150.0])  # z-y-x mm in which the anatomy below is laid out
PositiveFloat = Annotated[Float, Field(gt=0)]
_MARGIN = 16.0  # mm around every structure in which its signed distance is computed


class PhantomConfig(Schema):
    """The phantom generator's settings (`data.phantom.*`)."""

    n_cases: Int = Field(16, ge=1, description="phantoms generated (deterministic from `data.seed`)")
    shape: tuple[Int, Int, Int] = Field(
        (40, 192, 192), description="z-y-x voxels at the nominal spacing (field of view = shape x spacing)"
    )
    spacing: tuple[PositiveFloat, PositiveFloat, PositiveFloat] = Field(
        (2.0, 0.78, 0.78), description="nominal z-y-x spacing, mm"
    )
    z_spacing: tuple[PositiveFloat, PositiveFloat] | None = Field(
        (1.0, 3.0), description="per-case slice spacing range, mm (null = the nominal spacing)"
    )
    organ_hu: Float = Field(45.0, description="pancreas parenchyma, HU")
    bowel_hu: Float = Field(40.0, description="bowel of similar HU (contrast = organ_hu - bowel_hu)")
    fat_hu: Float = Field(-100.0, description="fat, HU")
    vessel_hu: Float = Field(160.0, description="vessels (venous phase), HU")
    hu_jitter: Float = Field(8.0, ge=0, description="per-case standard deviation of organ and bowel HU")
    fat_thickness: Float = Field(
        1.0, ge=0, le=14, description="mm of fat between organ and neighbours (less = harder)"
    )
    touch_fraction: Float = Field(
        0.5, ge=0, le=1, description="share of the organ's neighbourhood where neighbours touch it"
    )
    noise_hu: Float = Field(20.0, ge=0, description="correlated CT noise, standard deviation in HU")
    texture_hu: Float = Field(8.0, ge=0, description="parenchymal texture, HU")
    lobulation: Float = Field(1.5, ge=0, description="irregularity of the organ outline, mm")
    bowel_loops: Int = Field(3, ge=0, description="jejunal loops near body and tail")
    bowel_fill: Float = Field(
        0.45,
        ge=0,
        le=1,
        description="share of the surrounding space packed with bowel of similar HU (less fat)",
    )
    shape_variability: Float = Field(
        1.0, ge=0, description="how much the organ's course and thickness vary between patients"
    )

    @field_validator("shape")
    @classmethod
    def _big_enough(cls, shape):
        if min(shape) < 8:
            raise ValueError("every axis needs at least 8 voxels")
        return shape

    @field_validator("z_spacing")
    @classmethod
    def _ordered(cls, pair):
        if pair is not None and not pair[0] <= pair[1]:
            raise ValueError("must be [lo, hi] with lo <= hi")
        return pair


# ---------------------------------------------------------------- signed distances on a voxel grid


class _Grid:
    """Voxel centres in reference millimetres (1D per axis), for signed distances of simple shapes."""

    def __init__(self, shape, spacing, stretch):
        self.shape = tuple(int(s) for s in shape)
        self.axes = [(np.arange(n) + 0.5) * s / f for n, s, f in zip(self.shape, spacing, stretch)]
        self.step = np.array([a[1] - a[0] if len(a) > 1 else 1.0 for a in self.axes])

    def box(self, lo, hi):
        """Index slices covering reference-mm bounds [lo, hi], or None if outside the grid."""
        sl = []
        for a, low, high in zip(self.axes, lo, hi):
            i0, i1 = np.searchsorted(a, low), np.searchsorted(a, high, side="right")
            if i1 <= i0:
                return None
            sl.append(slice(int(i0), int(i1)))
        return tuple(sl)

    def coords(self, box):
        z, y, x = (a[s] for a, s in zip(self.axes, box))
        return z[:, None, None], y[None, :, None], x[None, None, :]

    def empty(self):
        return np.full(self.shape, -_MARGIN, np.float32)


def _tube(grid: _Grid, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """Signed distance (mm, > 0 inside) to a tube of varying radius along a polyline, clamped at -_MARGIN."""
    sd = grid.empty()
    for p0, p1, r0, r1 in zip(points[:-1], points[1:], radii[:-1], radii[1:]):
        reach = max(r0, r1) + _MARGIN
        box = grid.box(np.minimum(p0, p1) - reach, np.maximum(p0, p1) + reach)
        if box is None:
            continue
        z, y, x = grid.coords(box)
        d = p1 - p0
        dd = max(float(d @ d), 1e-9)
        t = np.clip(((z - p0[0]) * d[0] + (y - p0[1]) * d[1] + (x - p0[2]) * d[2]) / dd, 0.0, 1.0)
        dist = np.sqrt(
            (z - p0[0] - t * d[0]) ** 2 + (y - p0[1] - t * d[1]) ** 2 + (x - p0[2] - t * d[2]) ** 2
        )
        np.maximum(sd[box], (r0 + t * (r1 - r0) - dist).astype(np.float32), out=sd[box])
    return sd


def _ellipsoid(grid: _Grid, centre, axes) -> np.ndarray:
    """Approximate signed distance (mm, > 0 inside) to an axis-aligned ellipsoid, clamped at -_MARGIN."""
    centre, axes = np.asarray(centre, float), np.asarray(axes, float)
    sd = grid.empty()
    box = grid.box(centre - axes - _MARGIN, centre + axes + _MARGIN)
    if box is None:
        return sd
    q = [(c - m) for c, m in zip(grid.coords(box), centre)]
    k = np.sqrt(sum((qi / a) ** 2 for qi, a in zip(q, axes)))
    grad = np.sqrt(sum((qi / a**2) ** 2 for qi, a in zip(q, axes))) / np.maximum(k, 1e-6)
    sd[box] = np.maximum((1.0 - k) / np.maximum(grad, 1e-6), -_MARGIN)
    return sd


def _smooth_field(rng: np.random.Generator, shape, step_mm, corr_mm: float) -> np.ndarray:
    """A smooth random field with unit standard deviation and correlation length about `corr_mm`,
    drawn on a coarse grid and interpolated (cheap on big volumes)."""
    coarse = [max(2, int(np.ceil(n * s / corr_mm)) + 2) for n, s in zip(shape, step_mm)]
    field = ndi.gaussian_filter(rng.standard_normal(coarse).astype(np.float32), 0.7, mode="wrap")
    out = ndi.zoom(field, [n / c for n, c in zip(shape, coarse)], order=1, mode="nearest", grid_mode=True)
    out = out[: shape[0], : shape[1], : shape[2]]
    return (out - out.mean()) / max(float(out.std()), 1e-6)


def _occupancy(sd: np.ndarray, width: float) -> np.ndarray:
    """Soft voxel occupancy from a signed distance: the partial-volume fraction of a voxel of `width` mm."""
    return np.clip(0.5 + sd / width, 0.0, 1.0)


def _curve(rng: np.random.Generator, control: np.ndarray, jitter: float, step: float = 2.0) -> np.ndarray:
    """A smooth curve (z, y, x mm) through jittered control points, sampled about every `step` mm."""
    pts = control + rng.normal(0.0, jitter, control.shape)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    n = max(int(s[-1] / step), 2)
    return CubicSpline(s, pts, axis=0)(np.linspace(0.0, s[-1], n))


# ---------------------------------------------------------------- anatomy (reference mm, z-y-x)

# pancreas centreline: uncinate tip, head, neck, body, body-tail, tail, tail tip; radii in mm
_PANCREAS = np.array(
    [[16, 86, 50], [28, 80, 45], [38, 70, 64], [42, 70, 84], [46, 78, 104], [51, 89, 122], [55, 96, 133]],
    float,
)
_PANCREAS_R = np.array([8.0, 14.0, 8.5, 9.5, 9.0, 8.0, 5.0])
# duodenal C-loop: superior part, descending (lateral to the head), horizontal (below the head)
_DUODENUM = np.array(
    [[56, 70, 44], [48, 74, 24], [30, 82, 20], [12, 88, 30], [6, 90, 52], [8, 86, 75]], float
)


def _organ_course(rng: np.random.Generator, control: np.ndarray, variability: float):
    """The organ's centreline and radii for one patient: the body and tail swing about the neck in the
    axial plane and rise or fall (horizontal, oblique, sigmoid courses), the parts vary in thickness."""
    v = float(variability)
    pts = control.copy()
    neck = pts[2].copy()
    angle = np.deg2rad(rng.uniform(-20.0, 20.0) * v)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    rise = rng.uniform(-8.0, 12.0) * v
    for i in range(3, len(pts)):
        pts[i, 1:] = neck[1:] + rot @ (pts[i, 1:] - neck[1:])
        pts[i, 0] += rise * (i - 2) / (len(pts) - 3)
    pts += rng.normal(0.0, 1.0, pts.shape) * np.array([2.0, 3.0, 3.0]) * (1.0 + v)
    centre = _curve(rng, pts, 0.0)
    r = _PANCREAS_R * rng.uniform(0.85, 1.15) * rng.uniform(1.0 - 0.2 * v, 1.0 + 0.2 * v, len(_PANCREAS_R))
    radii = np.interp(np.linspace(0, 1, len(centre)), np.linspace(0, 1, len(r)), np.maximum(r, 2.0))
    return centre, radii


def make_phantom(case_id: str, rng: np.random.Generator, cfg: PhantomConfig) -> Case:
    """One phantom case: HU image and pancreas label in canonical (LPS) orientation."""
    spacing = np.array(cfg.spacing, float)
    fov = np.array(cfg.shape) * spacing
    if cfg.z_spacing is not None:
        spacing[0] = rng.uniform(*cfg.z_spacing)
    shape = (max(8, int(round(fov[0] / spacing[0]))), int(cfg.shape[1]), int(cfg.shape[2]))
    grid = _Grid(shape, spacing, fov / REFERENCE_FOV)
    width = float(np.mean(grid.step[1:]))  # in-plane voxel size (reference mm): soft edges of that width
    shift = rng.normal(0.0, [3.0, 5.0, 5.0])  # where the whole anatomy sits in this patient

    def place(points):
        return np.asarray(points, float) + shift

    organ_hu = cfg.organ_hu + rng.normal(0.0, cfg.hu_jitter)
    bowel_hu = cfg.bowel_hu + rng.normal(0.0, cfg.hu_jitter)
    fat_hu = cfg.fat_hu + rng.normal(0.0, 8.0)

    # the organ: a curved tube with a thick head, lobulated outline
    centre, radii = _organ_course(rng, place(_PANCREAS), cfg.shape_variability)
    organ_sd = _tube(grid, centre, radii)
    organ_sd += cfg.lobulation * _smooth_field(rng, shape, grid.step, 4.0)
    label = organ_sd > 0
    outside = -organ_sd  # distance from the organ (mm), valid up to about _MARGIN

    # the fat layer between the organ and its neighbours: varies along the surface, zero where they touch
    f_gap, f_touch = _smooth_field(rng, shape, grid.step, 12.0), _smooth_field(rng, shape, grid.step, 15.0)
    touch_level = np.quantile(f_touch[np.abs(organ_sd) < 6.0], cfg.touch_fraction) if label.any() else -np.inf
    gap = cfg.fat_thickness * np.exp(0.5 * f_gap - 0.125)
    gap = np.where(f_touch < touch_level, 0.0, np.minimum(gap, _MARGIN - 2.0)).astype(np.float32)

    def carve(sd, gap_scale=1.0):
        """Keep a neighbour at least gap_scale x gap away from the organ (and never inside it)."""
        return np.minimum(sd, outside - gap_scale * gap)

    layers = []  # (signed distance, HU value or field), drawn in order over the fat

    # visceral space: fat packed with collapsed bowel and mesentery of bowel HU (more packing, less fat)
    if cfg.bowel_fill > 0:
        f_pack = _smooth_field(rng, shape, grid.step, 9.0)
        level = float(np.quantile(f_pack, 1.0 - cfg.bowel_fill)) if cfg.bowel_fill < 1 else -np.inf
        layers.append(
            (carve(np.clip((f_pack - level) * 5.0, -_MARGIN, _MARGIN).astype(np.float32)), bowel_hu)
        )

    # context: liver (right, superior), spleen (left, by the tail), left kidney, spine, aorta, IVC
    layers.append((_ellipsoid(grid, place([75, 55, -10]), [40, 60, 55]), 100.0))
    layers.append((carve(_ellipsoid(grid, place([62, 100, 160]), [35, 30, 22]), 0.5), 110.0))
    kidney = carve(_ellipsoid(grid, place([32, 122, 128]), [40, 17, 22]), 1.5)
    layers.append((kidney, 170.0))
    layers.append((np.minimum(kidney, _ellipsoid(grid, place([32, 124, 128]), [28, 9, 12])), 120.0))
    layers.append((_tube(grid, place([[-20, 142, 78], [100, 142, 78]]), np.array([20.0, 20.0])), 380.0))
    layers.append(
        (_tube(grid, place([[-20, 114, 86], [100, 112, 86]]), np.array([10.5, 10.5])), cfg.vessel_hu)
    )
    layers.append((_tube(grid, place([[-20, 108, 58], [100, 106, 56]]), np.array([10.0, 10.0])), 125.0))

    # stomach in front of body and tail: wall of bowel HU around fluid or air
    stomach_c, stomach_a = place([60, 38, 100]), np.array([26, 22, 42])
    stomach = carve(_ellipsoid(grid, stomach_c, stomach_a))
    lumen_hu = -800.0 if rng.random() < 0.3 else rng.uniform(5.0, 25.0)
    layers.append((stomach, bowel_hu))
    layers.append((carve(_ellipsoid(grid, stomach_c, stomach_a - 5.0)), lumen_hu))

    # bowel: duodenal C-loop hugging the head, jejunal loops near body and tail (similar HU, often collapsed)
    loops = [(_curve(rng, place(_DUODENUM), 3.0), rng.uniform(9.0, 12.0))]
    for _ in range(cfg.bowel_loops):
        a = place([rng.uniform(10, 30), rng.uniform(55, 75), rng.uniform(70, 130)])
        b = a + rng.normal(0.0, 1.0, 3) * [6, 15, 20]
        loops.append(
            (_curve(rng, np.stack([a, (a + b) / 2 + rng.normal(0, 6, 3), b]), 1.0), rng.uniform(7.0, 10.0))
        )
    for points, r in loops:
        wall = carve(_tube(grid, points, np.full(len(points), r)))
        layers.append((wall, bowel_hu))
        if rng.random() < 0.5:  # fluid-filled rather than collapsed
            layers.append((carve(_tube(grid, points, np.full(len(points), r - 3.0))), rng.uniform(0.0, 25.0)))

    # vessels: splenic vein along the back of body and tail (often touching), SMV behind the neck, SMA with
    # its fat collar
    body = centre[len(centre) // 3 :]
    body_r = radii[len(centre) // 3 :]
    back = np.stack([np.zeros(len(body)), body_r + 3.0, np.zeros(len(body))], 1)
    layers.append((carve(_tube(grid, body + back, np.full(len(body), 4.5)), 0.2), cfg.vessel_hu))
    neck = centre[np.argmin(np.abs(np.arange(len(centre)) - len(centre) * 0.3))]
    smv = np.stack([[-20.0, neck[1] + 10, neck[2] + 2], [neck[0], neck[1] + 11, neck[2]]])
    layers.append((carve(_tube(grid, smv, np.array([6.0, 7.0])), 0.3), cfg.vessel_hu - 10.0))
    sma = np.stack([[-20.0, neck[1] + 24, neck[2] + 10], [neck[0] + 10, neck[1] + 34, neck[2] + 14]])
    layers.append((carve(_tube(grid, sma, np.array([3.5, 4.0])), 1.0), cfg.vessel_hu + 20.0))

    # render: fat, then each layer by its partial-volume occupancy, the organ last
    image = np.full(shape, fat_hu, np.float32) + 10.0 * _smooth_field(rng, shape, grid.step, 5.0)
    texture = cfg.texture_hu * _smooth_field(rng, shape, grid.step, 2.5)
    for sd, hu in layers:
        alpha = _occupancy(sd, width)
        value = hu + texture if -200.0 < np.mean(hu) < 200.0 else hu
        image += alpha * (value - image)
    image += _occupancy(organ_sd, width) * (organ_hu + texture - image)

    # slice profile and in-plane blur (sigma in voxels), then correlated noise
    image = ndi.gaussian_filter(image, (0.45, 0.5, 0.5))
    noise = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (0.3, 0.7, 0.7))
    image += noise * (cfg.noise_hu / max(float(noise.std()), 1e-6))

    zyx = tuple(float(s) for s in spacing)
    return Case(
        case_id,
        image.astype(np.float32),
        label.astype(np.uint8),
        zyx,
        Geometry.identity(shape, zyx),
        "phantom",
    )


def phantom_case(cfg: PhantomConfig, seed: int, index: int) -> Case:
    """Case `index` of the phantom set for `seed`; independent of `n_cases` (its own spawned generator)."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))
    return make_phantom(phantom_id(index), rng, cfg)


def phantom_id(index: int) -> str:
    return f"phantom_{index:03d}"


def make_phantoms(cfg: PhantomConfig, seed: int) -> list[Case]:
    return [phantom_case(cfg, seed, i) for i in range(cfg.n_cases)]


def phantom_key(cfg: PhantomConfig, seed: int, index: int) -> dict:
    """Everything that determines phantom `index` (for cache keys and fingerprints)."""
    from iunet_bench.core.files import code_digest

    d = cfg.model_dump(exclude={"n_cases"})
    return {"phantom": d, "seed": int(seed), "index": int(index), "generator": code_digest((__name__,))}
