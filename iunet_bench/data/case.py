"""The small types that flow out of the data room: `Case` (as read) and `Volume` (as the model sees it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Case:
    """One image with its reference label, as read from disk (or generated), in canonical orientation.

    image: float32 z-y-x, Hounsfield units for CT. label: uint8 0/1 on the same grid.
    spacing: z-y-x in millimetres. geometry: whatever is needed to write a result back onto the
    original file's grid (None for generated phantoms without a file).
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    geometry: Any = None
    source: str = ""


@dataclass(frozen=True)
class Volume:
    """A preprocessed case on the model grid: image in [-1, 1] (float32), label uint8 0/1, z-y-x.

    spacing: z-y-x millimetres of the model grid. crop: the half-open box (z0, y0, x0, z1, y1, x1) of the
    case grid that was resampled to the model grid; case_shape: the case grid's shape.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    crop: tuple[int, int, int, int, int, int]
    case_shape: tuple[int, int, int]
    meta: dict = field(default_factory=dict)
