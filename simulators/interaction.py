"""The `Interaction` type: what a (simulated) user hands to a refiner in one round.

Arrays are z-y-x on the model grid. Framework-free by design (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Effort:
    """How much work the user did in one round."""

    strokes: int = 0
    voxels: int = 0
    length_mm: float = 0.0
    slices: int = 0
    clicks: int = 0
    seconds: float = 0.0  # estimated annotation time from the robot's time model

    def as_dict(self) -> dict[str, float]:
        return {
            "strokes": self.strokes,
            "voxels": self.voxels,
            "length_mm": self.length_mm,
            "slices": self.slices,
            "clicks": self.clicks,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class Interaction:
    """Scribbles of one round: `add` = foreground ("this is organ"), `remove` = background ("this is not").

    Both masks are boolean, z-y-x, on the grid the refiner works on. They never overlap.
    `box` is an optional (z0, y0, x0, z1, y1, x1) half-open bounding box, for box robots.
    """

    add: np.ndarray
    remove: np.ndarray
    effort: Effort = field(default_factory=Effort)
    box: tuple[int, int, int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.add.shape != self.remove.shape:
            raise ValueError(f"Interaction: add {self.add.shape} and remove {self.remove.shape} differ in shape")
        if self.add.dtype != bool or self.remove.dtype != bool:
            raise TypeError("Interaction: add and remove must be boolean masks")
        if np.any(self.add & self.remove):
            raise ValueError("Interaction: a voxel cannot be both 'add' and 'remove'")

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> Interaction:
        return cls(np.zeros(shape, bool), np.zeros(shape, bool))

    @property
    def is_empty(self) -> bool:
        return not (self.add.any() or self.remove.any())

    @property
    def scribbles(self) -> np.ndarray:
        """All scribbled voxels, either polarity."""
        return self.add | self.remove

    def paste(self, prediction: np.ndarray) -> np.ndarray:
        """The prediction with the scribbles pasted in (the paper's Y')."""
        out = prediction.astype(bool).copy()
        out[self.add] = True
        out[self.remove] = False
        return out
