"""The `Interaction` type: what a (simulated) user hands to a refiner in one round.

Arrays are z-y-x on the model grid. Framework-free by design (numpy only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ADD, REMOVE = "add", "remove"
POLARITIES = (ADD, REMOVE)
PLANES = {"axial": 0, "coronal": 1, "sagittal": 2}  # plane name -> the axis normal to it (z-y-x)


@dataclass(frozen=True)
class Effort:
    """How much work the user did in one round.

    strokes: pen-down gestures (a broken stroke still counts once: the hand moved once);
    voxels: scribbled voxels after painting (add + remove); length_mm: ink length of all strokes;
    slices: distinct (plane, slice) pairs the user drew on; clicks: point interactions;
    seconds: the estimated human time of the round from the robot's time model (0 for an empty round).
    """

    strokes: int = 0
    voxels: int = 0
    length_mm: float = 0.0
    slices: int = 0
    clicks: int = 0
    seconds: float = 0.0
    add_voxels: int = 0
    remove_voxels: int = 0

    def as_dict(self) -> dict[str, float]:
        """Flat numeric values, one per field (what the session logs per round)."""
        return {
            "strokes": self.strokes,
            "voxels": self.voxels,
            "length_mm": self.length_mm,
            "slices": self.slices,
            "clicks": self.clicks,
            "seconds": self.seconds,
            "add_voxels": self.add_voxels,
            "remove_voxels": self.remove_voxels,
        }


@dataclass(frozen=True, eq=False)
class Stroke:
    """One gesture as drawn: a stroke (or a click) on one 2D slice.

    label: what the user said ("add" or "remove"). target: the polarity of the error region the user
    meant (differs from `label` for a wrong-label stroke). plane: the axis normal to the slice (0 axial,
    1 coronal, 2 sagittal); index: the slice along that axis. path: (n, 3) z-y-x voxels of the intended
    centre line inside the region, before any noise model (jitter, gap, overshoot; for a click: the voxel
    aimed at, before jitter); voxels: (m, 3) every voxel this gesture painted (before later gestures
    painted over it). length_mm: ink length of what was drawn; pieces: connected pieces after the noise
    model broke it; overshoot: the noise model carried it over the region's border.
    """

    label: str
    target: str
    plane: int
    index: int
    path: np.ndarray
    voxels: np.ndarray
    length_mm: float
    shape: str
    pieces: int = 1
    overshoot: bool = False
    region_voxels: int = 0

    @property
    def wrong_label(self) -> bool:
        return self.label != self.target

    @property
    def is_click(self) -> bool:
        return self.shape == "click"


@dataclass(frozen=True)
class SliceBox:
    """The CVPR 2025 challenge's box prompt: the z range [z0, z1) of the organ and a 2D box, rows [y0, y1)
    and columns [x0, x1), on slice `z_mid` (all half-open voxel indices)."""

    z0: int
    z1: int
    z_mid: int
    y0: int
    x0: int
    y1: int
    x1: int

    def inside(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The voxels the box leaves open: every voxel of the z range, except on `z_mid` those outside the
        2D box."""
        mask = np.zeros(shape, bool)
        mask[self.z0 : self.z1] = True
        mask[self.z_mid] = False
        mask[self.z_mid, self.y0 : self.y1, self.x0 : self.x1] = True
        return mask

    def as_challenge_dict(self) -> dict[str, int]:
        """The challenge's `boxes` entry (inclusive ends; x is the column, y the row)."""
        return {
            "z_min": self.z0,
            "z_max": self.z1 - 1,
            "z_mid": self.z_mid,
            "z_mid_x_min": self.x0,
            "z_mid_y_min": self.y0,
            "z_mid_x_max": self.x1 - 1,
            "z_mid_y_max": self.y1 - 1,
        }


@dataclass(frozen=True)
class Click:
    """One click as the user gave it: `zyx`, the voxel clicked (after any jitter) on the volume's grid;
    `label`, what the user said ("add" or "remove", a wrong-label click included)."""

    zyx: tuple[int, int, int]
    label: str


@dataclass(frozen=True)
class Interaction:
    """What the user gave in one round, in two forms.

    As scribble masks (what this harness's own refiners read): `add` = foreground ("this is organ"),
    `remove` = background ("this is not"); both boolean, z-y-x, on the grid the refiner works on, never
    overlapping. A click is in them as the disk it paints, a box as the voxels it rules out.
    In native form (what a plug-in model reads, `iunet_bench.interactive.plugin.Prompts`): `clicks`, the
    round's clicks in the order given (the click robot; empty for scribbles and boxes); `box`, the round's
    box prompt (the box robot; None otherwise).
    `strokes` records every gesture (for effort, pictures and measuring the noise models).
    """

    add: np.ndarray
    remove: np.ndarray
    effort: Effort = field(default_factory=Effort)
    strokes: tuple[Stroke, ...] = ()
    clicks: tuple[Click, ...] = ()
    box: SliceBox | None = None

    def __post_init__(self) -> None:
        if self.add.shape != self.remove.shape:
            raise ValueError(
                f"Interaction: add {self.add.shape} and remove {self.remove.shape} differ in shape"
            )
        if self.add.dtype != bool or self.remove.dtype != bool:
            raise TypeError("Interaction: add and remove must be boolean masks")
        if np.any(self.add & self.remove):
            raise ValueError("Interaction: a voxel cannot be both 'add' and 'remove'")

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> Interaction:
        return cls(np.zeros(shape, bool), np.zeros(shape, bool))

    @property
    def is_empty(self) -> bool:
        """True when there is no scribble: the robot found nothing worth one (the session stops). Every click
        and every box paints or rules out voxels, so the native prompts never say more than the masks."""
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
