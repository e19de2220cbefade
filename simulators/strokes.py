"""Stroke geometry on one 2D slice: where a person would draw inside an error region, and how it is painted.

A stroke is first a *path*: an (n, 2) integer array of row-column pixels, consecutive pixels 8-adjacent
(so the path is connected). Every shape is drawn in the region's *core*, the pixels more than
`margin_voxels` from the region's border (the margin shrinks for thin regions so a path always exists):

- `skeleton` (DAVIS-interactive style): skeletonize the core, keep its largest piece, and take a long
  geodesic path through it by the double sweep: the pixel farthest from its first pixel (raster order),
  then the pixel farthest from that one, and the shortest path between the two (Dijkstra over the 8-connected pixel graph,
  mm weights). That is the longest path when the skeleton is a tree; on a skeleton with loops it is a
  long path, not necessarily the longest.
- `centreline`: two far-apart pixels of the core, found by the same double sweep over the core's pixel
  graph (not always the farthest pair, as the core is no tree), joined by the cheapest path under a cost
  of 1/depth^2 (depth = distance to the border), so the path runs down the middle and, unlike a
  skeleton, never follows a side branch.
- `contour`: the closed loop along the inside of the core's border (marching squares on the core with
  the core 8-connected, so a core pinched at a diagonal keeps one loop; each vertex mapped to the core
  pixel beside it), as a person tracing the outline from the inside; a core without inside pixels (a
  sliver) gets the skeleton path instead of a loop that runs twice over it.
- `line`: a straight line through the deepest pixel along the core's principal axis (in mm), as long as
  it stays inside the core; the axis's sign is made canonical (first non-zero component positive), so
  the path runs the same way on every machine, and a round core (no principal axis) gets a line along
  the slice's second axis (x on an axial slice).

Then `truncate` keeps the central `max_length_mm` of the path, and `paint` turns paths into pixels of a
given thickness: thickened inside the region only (a geodesic dilation, so a thick stroke stays connected
and inside), while deliberate overshoot pixels (noise) are thickened without that limit.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BeforeValidator, Field, field_validator
from scipy import ndimage as ndi
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.graph import pixel_graph
from skimage.measure import find_contours
from skimage.morphology import skeletonize

from iunet_bench.core.schema import Float, Int, Schema
from simulators.errors import STRUCT_2D, largest_component_2d

SHAPES = ("skeleton", "centreline", "contour", "line")


Shape = Literal["skeleton", "centreline", "contour", "line"]
Plane = Literal["axial", "coronal", "sagittal"]


def _distinct(value):
    """A name or a list of distinct names, as a tuple (a repeated name is refused)."""
    items = (value,) if isinstance(value, str) else value
    if isinstance(items, (list, tuple)) and len(set(items)) != len(items):
        raise ValueError("names must be distinct")
    return tuple(items) if isinstance(items, (list, tuple)) else items


class StrokeStyle(Schema):
    """How strokes look: shape(s), brush thickness, distance from the border, length limits, planes."""

    shape: Annotated[tuple[Shape, ...], BeforeValidator(_distinct)] = Field(
        ("skeleton",),
        min_length=1,
        description="stroke shape: skeleton longest path (DAVIS), centreline, contour, straight line; a list = "
        "one chosen at random per stroke",
    )
    thickness: Int = Field(3, ge=1, description="brush width in voxels (odd: a brush has a centre voxel)")
    margin_voxels: Int = Field(
        1,
        ge=0,
        description="voxels kept between a stroke's centre line and the region's border (less in thin regions)",
    )
    min_length_mm: Float = Field(
        0.0,
        ge=0,
        description="the shortest stroke wanted: below it the margin shrinks down to 0, and a region too small "
        "still gets its longest stroke (a region worth a stroke always gets one)",
    )
    max_length_mm: Float | None = Field(
        None, ge=0, description="longer strokes keep their central part; null = no limit"
    )
    planes: Annotated[tuple[Plane, ...], BeforeValidator(_distinct)] = Field(
        ("axial",), min_length=1, description="planes the user draws on"
    )

    @field_validator("thickness")
    @classmethod
    def _odd(cls, thickness: int) -> int:
        if thickness % 2 == 0:
            raise ValueError("must be odd (a brush has a centre voxel)")
        return thickness

    @property
    def radius(self) -> float:
        return (self.thickness - 1) / 2.0


# ---------------------------------------------------------------------------------------------- paths


def step_lengths(path: np.ndarray, spacing2: tuple[float, float]) -> np.ndarray:
    """Length in mm of each step of a path (n - 1 values)."""
    if len(path) < 2:
        return np.zeros(0)
    d = np.diff(path.astype(float), axis=0) * np.asarray(spacing2, float)
    return np.sqrt((d**2).sum(1))


def path_length_mm(path: np.ndarray, spacing2: tuple[float, float]) -> float:
    return float(step_lengths(path, spacing2).sum())


def dedupe(path: np.ndarray) -> np.ndarray:
    """Drop consecutive repeats of a pixel."""
    if len(path) < 2:
        return path
    keep = np.ones(len(path), bool)
    keep[1:] = np.any(path[1:] != path[:-1], axis=1)
    return path[keep]


def connect(points: np.ndarray) -> np.ndarray:
    """An 8-connected integer path through the rounded `points`, joining consecutive ones by digital lines."""
    pts = np.rint(np.asarray(points, float)).astype(int)
    if len(pts) < 2:
        return pts
    pieces = [pts[:1]]
    for a, b in zip(pts[:-1], pts[1:]):
        n = int(np.abs(b - a).max())
        if n == 0:
            continue
        t = np.arange(1, n + 1)[:, None] / n
        pieces.append(np.rint(a + (b - a) * t).astype(int))
    return dedupe(np.concatenate(pieces))


def truncate(path: np.ndarray, max_length_mm: float | None, spacing2: tuple[float, float]) -> np.ndarray:
    """The longest run of `path` no longer than `max_length_mm`, the most central one on ties (the whole path
    when None or shorter)."""
    if max_length_mm is None or len(path) < 2:
        return path
    arc = np.concatenate([[0.0], np.cumsum(step_lengths(path, spacing2))])
    if arc[-1] <= max_length_mm:
        return path
    end = np.searchsorted(arc, arc + max_length_mm + 1e-9, side="right") - 1
    length = arc[end] - arc
    off_centre = np.abs((arc + arc[end]) / 2.0 - arc[-1] / 2.0)
    best = np.flatnonzero(length >= length.max() - 1e-9)
    start = int(best[np.argmin(off_centre[best])])
    return path[start : int(end[start]) + 1]


# ---------------------------------------------------------------------------------------------- graph


def _pixel_graph(mask: np.ndarray, spacing2) -> tuple[np.ndarray, csr_matrix]:
    """(coords (n, 2), sparse symmetric graph) of the 8-connected pixels of `mask` (node i = coords[i], in
    raster order); edge weight = step length in mm (`np.hypot` of the step's row and column mm)."""
    # skimage's own mm lengths (the square root of a sum of squares) differ from np.hypot's in the last bit
    # for some spacings, which can flip a shortest-path tie. So the graph is built with the stand-in spacing
    # (1, 2), whose exact lengths 1 (row step), 2 (column step) and sqrt(5) (diagonal) tell the steps apart,
    # and each edge gets np.hypot's length of its step.
    row_mm, col_mm, diagonal_mm = (
        np.hypot(dr * spacing2[0], dc * spacing2[1]) for dr, dc in ((1, 0), (0, 1), (1, 1))
    )

    def step_mm(_values0, _values1, stand_in: np.ndarray) -> np.ndarray:
        return np.select([stand_in == 1.0, stand_in == 2.0], [row_mm, col_mm], diagonal_mm)

    graph, nodes = pixel_graph(mask, edge_function=step_mm, connectivity=2, spacing=(1.0, 2.0))
    return np.stack(np.unravel_index(nodes, mask.shape), axis=1), graph


def _node_weighted(graph: csr_matrix, node_cost: np.ndarray) -> csr_matrix:
    """The same graph with each edge weight times the mean `node_cost` (one value per node) of its ends."""
    rows = np.repeat(np.arange(graph.shape[0]), np.diff(graph.indptr))
    out = graph.copy()
    out.data = graph.data * 0.5 * (node_cost[rows] + node_cost[graph.indices])
    return out


def _farthest(graph, start: int) -> tuple[int, np.ndarray]:
    dist, pred = dijkstra(graph, directed=False, indices=start, return_predecessors=True)
    dist = np.where(np.isfinite(dist), dist, -1.0)
    return int(np.argmax(dist)), pred


def _walk_back(pred: np.ndarray, end: int) -> list[int]:
    out = [end]
    while pred[out[-1]] >= 0:
        out.append(int(pred[out[-1]]))
    return out[::-1]


def _diameter_ends(graph) -> tuple[int, int, np.ndarray]:
    """Double sweep: the farthest node `a` from node 0, then the farthest `b` from `a` (predecessors from a)."""
    a, _ = _farthest(graph, 0)
    b, pred = _farthest(graph, a)
    return a, b, pred


# ---------------------------------------------------------------------------------------------- shapes


def depth(mask: np.ndarray) -> np.ndarray:
    """Distance in voxels from each pixel of `mask` to the nearest pixel outside it (the crop edge counts as
    outside). Border pixels have depth 1."""
    return ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


def core(blob: np.ndarray, margin_voxels: int) -> tuple[np.ndarray, np.ndarray]:
    """(core, depth): the largest piece of the pixels deeper than the margin; the margin shrinks to
    `max depth - 1` for thin regions, so the core holds at least the deepest pixel."""
    d = depth(blob)
    m = min(float(margin_voxels), float(d.max()) - 1.0)
    return largest_component_2d(d > m), d


def _skeleton_path(core_mask, d, spacing2) -> np.ndarray:
    skel = largest_component_2d(skeletonize(core_mask))
    coords, graph = _pixel_graph(skel, spacing2)
    if len(coords) == 1:
        return coords
    _, b, pred = _diameter_ends(graph)
    return coords[_walk_back(pred, b)]


def _centreline_path(core_mask, d, spacing2) -> np.ndarray:
    coords, graph = _pixel_graph(core_mask, spacing2)
    if len(coords) == 1:
        return coords
    a, b, _ = _diameter_ends(graph)
    _, pred = _farthest(_node_weighted(graph, 1.0 / np.maximum(d[core_mask], 1.0) ** 2), a)
    return coords[_walk_back(pred, b)]


def _contour_path(core_mask, d, spacing2) -> np.ndarray:
    if not ndi.binary_erosion(core_mask).any():  # a sliver has no inside: its outline is a line through it
        return _skeleton_path(core_mask, d, spacing2)
    padded = np.pad(core_mask, 1)
    loops = find_contours(padded.astype(float), 0.5, fully_connected="high")  # the core is 8-connected
    if not loops:
        return np.argwhere(core_mask)[:1]
    v = max(loops, key=len)
    lo, hi = np.floor(v).astype(int), np.ceil(v).astype(int)
    lo_inside = padded[lo[:, 0], lo[:, 1]]
    pix = np.where(lo_inside[:, None], lo, hi) - 1
    return dedupe(pix)


def principal_axis(points: np.ndarray) -> np.ndarray:
    """Unit direction of largest variance of (n, 2) points, with a canonical sign (its first non-zero
    component positive: LAPACK builds differ in the sign `eigh` returns); (0, 1) when there is no single
    such direction (equal variances and no covariance, as for a disk)."""
    vals, vecs = np.linalg.eigh(np.cov(np.asarray(points, float).T))
    if vals[1] - vals[0] <= 1e-9 * max(abs(float(vals[1])), 1e-300):
        return np.array([0.0, 1.0])
    v = vecs[:, -1]
    first = v[np.flatnonzero(np.abs(v) > 1e-12)[0]]
    return v if first > 0 else -v


def _line_path(core_mask, d, spacing2) -> np.ndarray:
    coords = np.argwhere(core_mask)
    centre = np.unravel_index(int(np.argmax(np.where(core_mask, d, -1))), core_mask.shape)
    if len(coords) < 2:
        return coords
    u = principal_axis(coords * np.asarray(spacing2, float)) / np.asarray(spacing2, float)  # in pixels
    u = u / np.abs(u).max()  # each step moves at most one pixel per axis: rounded points stay 8-adjacent

    def ray(sign: int) -> list[np.ndarray]:
        out, t = [], 1
        while True:
            p = np.rint(np.asarray(centre) + sign * t * u).astype(int)
            if (
                not (0 <= p[0] < core_mask.shape[0] and 0 <= p[1] < core_mask.shape[1])
                or not core_mask[tuple(p)]
            ):
                return out
            out.append(p)
            t += 1

    pts = ray(-1)[::-1] + [np.asarray(centre)] + ray(+1)
    return dedupe(np.array(pts, int))


_SHAPE_FUNCS = {
    "skeleton": _skeleton_path,
    "centreline": _centreline_path,
    "contour": _contour_path,
    "line": _line_path,
}


def shape_path(blob: np.ndarray, shape: str, margin_voxels: int, spacing2: tuple[float, float]) -> np.ndarray:
    """The path (n, 2) of one stroke of `shape` inside the 2D region `blob` (see the module docstring)."""
    core_mask, d = core(blob, margin_voxels)
    return _SHAPE_FUNCS[shape](core_mask, d, spacing2)


# ---------------------------------------------------------------------------------------------- paint


def _disk_around(mask: np.ndarray, radius: float) -> np.ndarray:
    if radius <= 0 or not mask.any():
        return mask
    return ndi.distance_transform_edt(~mask) <= radius


def paint(inside: np.ndarray, outside: np.ndarray, region: np.ndarray, radius: float) -> np.ndarray:
    """Pixels painted by a brush of `radius` along the `inside` pixels (kept within `region` and connected
    to them: a geodesic dilation) and along the `outside` (overshoot) pixels (not limited)."""
    inside = inside & region
    if radius > 0 and inside.any():
        reach = _disk_around(inside, radius) & region
        inside = ndi.binary_propagation(inside, structure=STRUCT_2D, mask=reach)
    return inside | _disk_around(outside, radius)


def path_mask(path: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    if len(path):
        out[path[:, 0], path[:, 1]] = True
    return out
