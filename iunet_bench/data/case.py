"""The small types that flow out of the data room.

`Geometry` (where a case came from, and how to get back there), `Case` (as read, in canonical orientation)
and `Volume` (as the model sees it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from itertools import permutations
from typing import Any

import numpy as np

# DICOM / ITK convention: a letter names where an index axis points in the patient's LPS physical frame.
_LETTERS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


def parse_orientation(code: str) -> tuple[tuple[int, int], ...]:
    """'LPS' -> ((physical axis, sign) for index axes x, y, z). Raises ValueError for an invalid code."""
    code = str(code).upper()
    pairs = [_LETTERS.get(c) for c in code]
    if len(code) != 3 or None in pairs or sorted(p[0] for p in pairs) != [0, 1, 2]:
        raise ValueError(
            f"{code!r} is not an orientation code: three letters, one from each of R/L, A/P, I/S (e.g. 'LPS')"
        )
    return tuple(pairs)


def axis_mapping(direction: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """For a 3x3 direction matrix (columns = physical directions of index axes x, y, z): the physical axis
    each index axis follows most closely and its sign. Oblique matrices get the permutation that keeps most
    of the cosines, so every index axis gets a distinct physical axis."""
    d = np.asarray(direction, float).reshape(3, 3)
    best = max(permutations(range(3)), key=lambda p: sum(abs(d[p[a], a]) for a in range(3)))
    signs = tuple(1 if d[best[a], a] >= 0 else -1 for a in range(3))
    return tuple(best), signs


@dataclass(frozen=True)
class Geometry:
    """The original file's grid, and how its array was turned into the canonical one.

    size, spacing, origin: x-y-z as SimpleITK reports them (voxels, mm, mm); direction: 9 floats, row-major.
    axes: canonical array axis i (z-y-x) is original array axis axes[i]; flips: canonical axis i is reversed
    after that transposition. `to_canonical` and `from_canonical` apply and undo exactly this.
    """

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]
    axes: tuple[int, int, int] = (0, 1, 2)
    flips: tuple[bool, bool, bool] = (False, False, False)
    orientation: str = "LPS"

    @classmethod
    def from_image(cls, size, spacing, origin, direction, orientation: str | None = "LPS") -> Geometry:
        """The geometry of a SimpleITK image (x-y-z metadata) and the map to `orientation` (None: keep)."""
        size, spacing, origin = tuple(map(int, size)), tuple(map(float, spacing)), tuple(map(float, origin))
        direction = tuple(float(v) for v in direction)
        if orientation is None:
            return cls(size, spacing, origin, direction, orientation="")
        target = parse_orientation(orientation)
        phys, signs = axis_mapping(np.reshape(direction, (3, 3)))
        axes_xyz, flips_xyz = [], []
        for t_phys, t_sign in target:  # canonical index axis t (x, y, z) follows physical axis t_phys
            a = phys.index(t_phys)
            axes_xyz.append(a)
            flips_xyz.append(signs[a] != t_sign)
        # array order is z-y-x: canonical array axis 2-t comes from original array axis 2-a
        axes = tuple(2 - axes_xyz[2 - i] for i in range(3))
        flips = tuple(bool(flips_xyz[2 - i]) for i in range(3))
        return cls(size, spacing, origin, direction, axes, flips, orientation.upper())

    @classmethod
    def identity(cls, shape_zyx, spacing_zyx) -> Geometry:
        """An axis-aligned LPS grid at the origin, for generated cases without a file."""
        return cls(
            tuple(int(s) for s in shape_zyx[::-1]),
            tuple(float(s) for s in spacing_zyx[::-1]),
            (0.0, 0.0, 0.0),
            (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
        )

    @property
    def original_shape(self) -> tuple[int, int, int]:
        """Array shape (z-y-x) of the original file."""
        return tuple(self.size[::-1])

    @property
    def canonical_shape(self) -> tuple[int, int, int]:
        return tuple(self.original_shape[a] for a in self.axes)

    @property
    def canonical_spacing(self) -> tuple[float, float, float]:
        """z-y-x millimetres of the canonical array."""
        zyx = self.spacing[::-1]
        return tuple(float(zyx[a]) for a in self.axes)

    def canonical_view(self, array: np.ndarray) -> np.ndarray:
        """An original-grid array turned to the canonical orientation, as a view (no copy)."""
        out = np.transpose(array, self.axes)
        flip = tuple(i for i in range(3) if self.flips[i])
        return np.flip(out, flip) if flip else out

    def to_canonical(self, array: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.canonical_view(array))

    def from_canonical(self, array: np.ndarray) -> np.ndarray:
        if tuple(array.shape) != self.canonical_shape:
            raise ValueError(
                f"array of shape {array.shape} is not on the canonical grid {self.canonical_shape}"
            )
        flip = tuple(i for i in range(3) if self.flips[i])
        out = np.flip(array, flip) if flip else array
        return np.ascontiguousarray(np.transpose(out, np.argsort(self.axes)))

    def as_dict(self) -> dict[str, Any]:
        """JSON types only (lists, not tuples), so a cached volume's meta equals a fresh one's."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Geometry:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class Case:
    """One image with its reference label, as read from disk (or generated), in canonical orientation.

    image: float32 z-y-x, Hounsfield units for CT. label: uint8 0/1 on the same grid.
    spacing: z-y-x in millimetres. geometry: the `Geometry` that maps results back onto the original file's
    grid (an identity one for generated phantoms). source: where it came from (file path or 'phantom').
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    geometry: Geometry | None = None
    source: str = ""


@dataclass(frozen=True)
class Volume:
    """A preprocessed case on the model grid: image in [-1, 1] (float32), label uint8 0/1, z-y-x.

    spacing: z-y-x millimetres of the model grid. crop: the half-open box (z0, y0, x0, z1, y1, x1) of the
    case grid that was resampled to the model grid; case_shape: the case grid's shape.
    meta: JSON-friendly facts: 'geometry' (Geometry.as_dict(), for the way back), 'label_interpolation',
    'box' ('reference' or 'robot_box'), 'source', 'intensity'; a class session's (`for_class`) also 'case_id'
    (the case's own id) and 'class' (the class's name).
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    crop: tuple[int, int, int, int, int, int]
    case_shape: tuple[int, int, int]
    meta: dict = field(default_factory=dict)

    @property
    def draw_id(self) -> str:
        """The id a session's robot draws from (`derive_rng(seed, draw_id, round)`): the case's own id, also
        for a class session (`<class>/<case>`), which so draws exactly as a job with `data.foreground=[<class>]`
        does on that case."""
        return self.meta.get("case_id", self.case_id)

    def for_class(self, name: str) -> Volume:
        """This volume (of a class's data set) as that class's session: case id `<name>/<case>`."""
        meta = {**self.meta, "case_id": self.case_id, "class": name}
        return replace(self, case_id=f"{name}/{self.case_id}", meta=meta)
