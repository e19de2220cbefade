"""The manual observer robot: a person who contours the organ slice by slice, for the paper's second
experiment (three readers segment manually in ITK-SNAP; their pairwise agreement is table 1, their
DSC against the consensus and their minutes are figures 5 and 6).

`contour_case(reference, spacing, rng, style)`, step by step:

1. the organ's drawable cross-sections: per axial slice, the 8-connected 2D components of the
   reference of at least `min_area_mm2` (area = pixels x row spacing x column spacing); smaller ones are
   not drawn (a person overlooks a speck). No drawable component anywhere -> an empty mask and 0 s;
2. z-extent disagreement (where the organ starts and ends, a large source of inter-observer variance for
   the pancreas; the paper names missing landmarks and the partial-volume rim, step 3c): at each end of
   the drawable slice range (bottom, then top), the observer is off by k slices, k geometric with
   P(k >= n) = `z_end_rate` ** n (k = 0 with no draw when the rate is 0); the k end slices are then
   missed (with chance `z_miss_share`) or k slices beyond the end added. An added slice gets the
   cross-section of the end slice itself (the observer carries the last contour on into the partial
   volume beyond it), clipped to the volume; misses at both ends together leave at least one slice;
3. per slice to draw (in z order) and per component (in label order), the contour a person draws,
   as a smooth signed-distance perturbation (a level set of the boundary moved in the plane):
   a. `phi`, the signed distance in mm to the component's boundary (negative inside, anisotropic in-plane
      spacing respected): the Euclidean distance to the nearest pixel centre on the other side, less
      the distance from that centre to its pixel's edge along the same direction, so the boundary
      sits on the pixel edges (a 2 mm bias grows a 0.5 x 2 mm pixel grid by 4 rows and 1 column);
   b. `field`, a smooth random field on the slice: white Gaussian noise smoothed by an isotropic
      Gaussian of standard deviation `smoothness_mm` (in mm, so the pixel sigma follows the spacing),
      scaled by the filter's gain to a unit standard deviation, times `noise_mm`; boundary points d mm
      apart move with correlation exp(-d^2 / (4 smoothness_mm^2)). Drawn only when `noise_mm` > 0;
   c. the drawn region: phi < `bias_mm` + field, i.e. the boundary moved outwards by the bias (positive:
      the observer includes the partial-volume rim, negative: stays inside it) plus a smooth wobble of
      standard deviation `noise_mm`. Its 8-connected pieces of at least `min_area_mm2` are kept (the
      largest always); each kept piece is one contour drawn. A hole of the reference (a ring-shaped
      cross-section) is an inner contour, moved by the same rule; a component shrunk away by a negative
      bias is not drawn;
   d. the contour's length in mm: marching squares (`skimage.measure.find_contours` at 0.5) on each
      piece lightly smoothed (a Gaussian of 0.7 pixel: a hand draws a smooth curve, not the staircase of
      pixel edges), coordinates scaled by the in-plane spacing, inner contours included;
4. the observer's mask is the union of the drawn regions; the time model:

       seconds = seconds_per_slice     * slices    (slices with a contour: scroll to and inspect)
               + seconds_per_component * contours  (place a new contour)
               + seconds_per_cm        * contour_mm / 10

Randomness comes only from `rng` (numpy Generator), in the order: bottom end, top end, then per slice
and component its field. With `noise_mm = 0`, `bias_mm = 0` and `z_end_rate = 0` nothing is drawn from
`rng` and the mask equals the reference's drawable components exactly (all of the reference when
`min_area_mm2` is 0 or below its smallest cross-section).

The displacement of different slices is independent (each slice is contoured on its own); an observer's
systematic habit is the bias. The time constants and the three presets in `OBSERVERS` are assumptions,
not measurements: the paper's only figures are its readers' median 15 minutes per manual pancreas and
their pairwise DSC of 0.85-0.87 (table 1). The defaults (the `average` reader) give about 14 minutes for
a pancreas of some 30 axial slices of 2.5 mm, each with one to three cross-sections and 10-15 cm of
contour in all (30 x 8 s + 45 x 5 s + 360 cm x 1 s).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from pydantic import Field
from scipy import ndimage as ndi
from skimage.measure import find_contours

from iunet_bench.core.schema import Float, Schema
from simulators.errors import STRUCT_2D, check_spacing


class ManualStyle(Schema):
    """How one observer contours an organ slice by slice by hand, and how long it takes."""

    noise_mm: Float = Field(
        1.0,
        ge=0,
        le=20,
        description="standard deviation (mm) of the smooth random in-plane displacement of a drawn contour",
    )
    smoothness_mm: Float = Field(
        8.0,
        gt=0,
        le=200,
        description="length (mm, the smoothing Gaussian's standard deviation) over which the displacement "
        "along a contour is correlated",
    )
    bias_mm: Float = Field(
        0.0,
        ge=-20,
        le=20,
        description="systematic displacement of every contour (mm): positive draws outside the boundary "
        "(includes the partial-volume rim), negative inside it",
    )
    z_end_rate: Float = Field(
        0.3,
        ge=0,
        le=0.9,
        description="chance that an end (top or bottom) of the organ is off by a slice, and again by a "
        "further slice, and so on (slices missed or added at each end: geometric)",
    )
    z_miss_share: Float = Field(
        0.5, ge=0, le=1, description="share of the off ends whose slices are missed (the others are added)"
    )
    min_area_mm2: Float = Field(
        10.0, ge=0, description="a cross-section (2D component) smaller than this (mm2) is not drawn"
    )
    seconds_per_slice: Float = Field(
        8.0, ge=0, description="estimated seconds to scroll to, inspect and finish one slice with a contour"
    )
    seconds_per_component: Float = Field(
        5.0, ge=0, description="estimated seconds to start one new contour (a cross-section)"
    )
    seconds_per_cm: Float = Field(1.0, ge=0, description="estimated seconds per centimetre of contour drawn")

    def seconds(self, slices: int, contours: int, contour_mm: float) -> float:
        return float(
            self.seconds_per_slice * slices
            + self.seconds_per_component * contours
            + self.seconds_per_cm * contour_mm / 10.0
        )


# Three readers, as in the paper's second experiment (assumptions, not measurements): a careful one who
# includes the partial-volume rim and draws slowly; the average one (the defaults); a hurried one who
# stays inside the boundary, wobbles more, misses end slices and small cross-sections, draws fast.
OBSERVERS: Mapping[str, ManualStyle] = MappingProxyType(
    {
        "careful": ManualStyle(
            noise_mm=0.7,
            smoothness_mm=6.0,
            bias_mm=0.5,
            z_end_rate=0.2,
            z_miss_share=0.3,
            min_area_mm2=5.0,
            seconds_per_slice=10.0,
            seconds_per_component=6.0,
            seconds_per_cm=1.3,
        ),
        "average": ManualStyle(),
        "hurried": ManualStyle(
            noise_mm=1.3,
            smoothness_mm=12.0,
            bias_mm=-0.5,
            z_end_rate=0.35,
            z_miss_share=0.7,
            min_area_mm2=20.0,
            seconds_per_slice=6.0,
            seconds_per_component=4.0,
            seconds_per_cm=0.7,
        ),
    }
)


@dataclass(frozen=True, eq=False)
class ManualResult:
    """One observer's manual segmentation of a case and what it cost.

    mask: uint8 z-y-x, 1 = organ; seconds: estimated time; slices: axial slices with a contour;
    contours: contours drawn (kept pieces); contour_mm: their total length."""

    mask: np.ndarray
    seconds: float
    slices: int
    contours: int
    contour_mm: float


# ------------------------------------------------------------------------------------------ geometry


def _components(plane: np.ndarray, min_pixels: float) -> list[np.ndarray]:
    """The 8-connected components of a 2D mask with at least `min_pixels` pixels, in label order."""
    labels, n = ndi.label(plane, structure=STRUCT_2D)
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    return [labels == i for i in range(1, n + 1) if sizes[i] >= min_pixels]


def _edge_offset(vectors_mm: np.ndarray, spacing2: np.ndarray) -> np.ndarray:
    """Distance (mm) from a pixel centre to its pixel's edge along each direction (vectors in mm, last
    axis row-column): min over axes of half the spacing / |direction component|."""
    norm = np.sqrt((vectors_mm**2).sum(-1, keepdims=True))
    unit = np.abs(vectors_mm) / np.maximum(norm, 1e-12)
    with np.errstate(divide="ignore"):
        per_axis = np.where(unit > 1e-12, (spacing2 / 2.0) / unit, np.inf)
    return per_axis.min(-1)


def signed_distance(region: np.ndarray, spacing2: tuple[float, float]) -> np.ndarray:
    """Signed distance (mm) of every pixel centre to the boundary of a 2D `region` (negative inside, the
    boundary on the pixel edges; see the module docstring, step 3a). `region` must not fill the array."""
    sp = np.asarray(spacing2, float)
    out = np.zeros(region.shape)
    rows, cols = np.indices(region.shape)
    here = np.stack([rows, cols], -1)
    for inside, sign in ((False, 1.0), (True, -1.0)):
        # pixels on this side: distance to the nearest pixel centre on the other side
        side = region == inside
        dist, idx = ndi.distance_transform_edt(side, sampling=sp, return_indices=True)
        nearest = np.moveaxis(idx, 0, -1)
        vec = (here - nearest) * sp
        out[side] = sign * (dist[side] - _edge_offset(vec[side], sp))
    return out


def _unit_field(shape: tuple[int, int], sigma_px: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise with unit standard deviation (scaled by the filter's gain), exact up to
    the array's edges (the noise is drawn on a margin of 4 sigma + 1 that is cut off)."""
    margin = (4 * sigma_px).astype(int) + 1
    big = tuple(int(s + 2 * m) for s, m in zip(shape, margin))
    noise = ndi.gaussian_filter(rng.normal(size=big), sigma_px, mode="constant")
    impulse = np.zeros(tuple(int(2 * m + 1) for m in margin))
    impulse[tuple(margin)] = 1.0
    gain = float(np.sqrt((ndi.gaussian_filter(impulse, sigma_px, mode="constant") ** 2).sum()))
    return noise[margin[0] : margin[0] + shape[0], margin[1] : margin[1] + shape[1]] / gain


def contour_length_mm(piece: np.ndarray, spacing2: tuple[float, float]) -> float:
    """Total length (mm) of the contours of a 2D mask (outer and inner): marching squares at 0.5 on the
    mask smoothed by a Gaussian of 0.7 pixel (a hand draws a smooth curve, not the pixels' staircase, which
    plain marching squares over-measures by 5-10% on a round shape); a piece too small to survive the
    smoothing is measured unsmoothed."""
    padded = np.pad(piece.astype(float), 3)
    total = 0.0
    for field in (ndi.gaussian_filter(padded, 0.7), padded):
        for c in find_contours(field, 0.5):
            d = np.diff(c, axis=0) * np.asarray(spacing2, float)
            total += float(np.sqrt((d**2).sum(1)).sum())
        if total > 0:
            break
    return total


def draw_component(
    component: np.ndarray,
    spacing2: tuple[float, float],
    rng: np.random.Generator,
    style: ManualStyle,
) -> tuple[np.ndarray, int, float]:
    """(drawn 2D mask on the slice, contours, contour mm) for one cross-section (module docstring, step 3)."""
    sp = np.asarray(spacing2, float)
    rr, cc = np.nonzero(component)
    reach = max(style.bias_mm, 0.0) + 4.0 * style.noise_mm
    pad = np.ceil(reach / sp).astype(int) + 2
    r0, c0 = max(rr.min() - pad[0], 0), max(cc.min() - pad[1], 0)
    r1 = min(rr.max() + pad[0] + 1, component.shape[0])
    c1 = min(cc.max() + pad[1] + 1, component.shape[1])
    crop = component[r0:r1, c0:c1]
    if crop.all():  # the component fills its box up to the slice's edges: pad virtually
        crop = np.pad(crop, 1, constant_values=False)
        phi = signed_distance(crop, spacing2)[1:-1, 1:-1]
        crop = crop[1:-1, 1:-1]
    else:
        phi = signed_distance(crop, spacing2)
    level = np.full(crop.shape, float(style.bias_mm))
    if style.noise_mm > 0:
        level += style.noise_mm * _unit_field(crop.shape, style.smoothness_mm / sp, rng)
    drawn = phi < level
    min_pixels = style.min_area_mm2 / float(sp.prod())
    labels, n = ndi.label(drawn, structure=STRUCT_2D)
    out = np.zeros(component.shape, bool)
    if n == 0:
        return out, 0, 0.0
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = [i for i in range(1, n + 1) if sizes[i] >= min_pixels or i == int(np.argmax(sizes))]
    length = sum(contour_length_mm(labels == i, spacing2) for i in keep)
    out[r0:r1, c0:c1] = np.isin(labels, keep)
    return out, len(keep), float(length)


# ------------------------------------------------------------------------------------------ z extent


def _end_error(rng: np.random.Generator, style: ManualStyle) -> int:
    """Slices an end is off by: negative = missed, positive = added, 0 = right (step 2)."""
    if style.z_end_rate <= 0:
        return 0
    k = int(rng.geometric(1.0 - style.z_end_rate)) - 1
    if k == 0:
        return 0
    return -k if rng.random() < style.z_miss_share else k


def _slice_plan(drawable: list[int], depth: int, rng, style) -> list[tuple[int, int]]:
    """(slice to draw on, reference slice whose cross-sections are drawn there), in z order."""
    lo_err, hi_err = _end_error(rng, style), _end_error(rng, style)
    misses_lo, misses_hi = max(-lo_err, 0), max(-hi_err, 0)
    spare = len(drawable) - 1  # misses leave at least one slice
    if misses_lo + misses_hi > spare:
        misses_lo = min(misses_lo, spare)
        misses_hi = spare - misses_lo
    kept = drawable[misses_lo : len(drawable) - misses_hi]
    lo, hi = kept[0], kept[-1]
    below = [(z, lo) for z in range(lo - max(lo_err, 0), lo) if z >= 0]
    above = [(z, hi) for z in range(hi + 1, hi + 1 + max(hi_err, 0)) if z < depth]
    return below + [(z, z) for z in kept] + above


# ------------------------------------------------------------------------------------------ the robot


def contour_case(
    reference: np.ndarray,
    spacing: tuple[float, float, float],
    rng: np.random.Generator,
    style: ManualStyle | None = None,
) -> ManualResult:
    """One observer's manual segmentation of `reference` (0/1, z-y-x) with `spacing` (z-y-x mm); see the
    module docstring."""
    style = ManualStyle() if style is None else style
    reference = np.asarray(reference)
    if reference.ndim != 3:
        raise ValueError(f"reference {reference.shape} must be 3D z-y-x")
    _, sy, sx = check_spacing(spacing)
    spacing2 = (sy, sx)
    reference = reference.astype(bool)
    min_pixels = style.min_area_mm2 / (sy * sx)
    sections = {}
    for z in np.flatnonzero(reference.any(axis=(1, 2))):
        found = _components(reference[z], min_pixels)
        if found:
            sections[int(z)] = found
    mask = np.zeros(reference.shape, np.uint8)
    if not sections:
        return ManualResult(mask, 0.0, 0, 0, 0.0)
    drawable = sorted(sections)
    slices, contours, length = set(), 0, 0.0
    for z, source in _slice_plan(drawable, reference.shape[0], rng, style):
        for component in sections.get(source, ()):
            drawn, n, mm = draw_component(component, spacing2, rng, style)
            if n:
                mask[z][drawn] = 1
                slices.add(z)
                contours += n
                length += mm
    return ManualResult(
        mask, style.seconds(len(slices), contours, length), len(slices), contours, float(length)
    )


__all__ = ["OBSERVERS", "ManualResult", "ManualStyle", "contour_case"]
