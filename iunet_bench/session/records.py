"""What one round of a session leaves behind (`RoundRecord`) and how a prediction is measured against the
reference (`measure`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iunet_bench.core import metrics
from iunet_bench.data.case import Volume


@dataclass
class RoundRecord:
    case_id: str
    round: int
    dsc: float
    hd95: float
    refine_seconds: float = 0.0
    robot_seconds: float = 0.0
    effort: dict = field(default_factory=dict)
    losses: list = field(default_factory=list)
    stopped: bool = False  # True for rounds after the session stopped (values carried forward)
    # Does the method do what the user asked? Measured on the method's own output (before any pasting):
    agreement: float = float("nan")  # share of this round's scribbled voxels labelled as scribbled
    agreement_all: float = float("nan")  # the same over every scribble of the case so far
    changed_voxels: int = 0  # voxels whose label this round changed (in what the user kept)
    # session.undo: True = the user kept the previous prediction with the strokes painted in (None: no undo)
    undone: bool | None = None
    # The two no-learning opponents (NaN where the job ran none):
    # painter: a user who only paints, in a session of its own (its robot draws on its own predictions,
    # every stroke pasted in): what a user could do instead of the method, the headline's comparison;
    floor_dsc: float = float("nan")  # the in-run floor: the METHOD's strokes pasted into the previous
    # prediction (drawn for the method's errors, not the painter's: a weaker opponent, a diagnostic)
    painter_dsc: float = float("nan")
    nsd: float = float("nan")  # normalised surface Dice at protocol.nsd_tolerance_mm
    volume_ratio: float = float("nan")  # predicted / reference volume (the paper saw < 1 after round 1)

    def row(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("effort", "losses")}
        out.update({f"effort_{k}": v for k, v in self.effort.items()})
        out["loss_last"] = self.losses[-1] if self.losses else float("nan")
        return out


def measure(
    volume: Volume, prediction: np.ndarray, tolerance_mm: float, surfaces: bool = True
) -> dict[str, float]:
    """A prediction's metrics against the case's reference: DSC, HD95 in mm (with "one mask is empty"
    counted as the volume's diagonal, the largest possible distance, so that means over cases stay finite
    and every case counts in every round), NSD at `tolerance_mm`, and the volume ratio. surfaces=False:
    HD95 and NSD are NaN, not computed (the surface distances cost most of a measurement)."""
    if not surfaces:
        return {
            "dsc": metrics.dsc(volume.label, prediction),
            "hd95": float("nan"),
            "nsd": float("nan"),
            "volume_ratio": metrics.volume_ratio(volume.label, prediction),
        }
    diagonal = float(np.linalg.norm(np.asarray(volume.image.shape) * np.asarray(volume.spacing)))
    hd, nsd = metrics.surface_metrics(volume.label, prediction, volume.spacing, tolerance_mm)
    return {
        "dsc": metrics.dsc(volume.label, prediction),
        "hd95": min(hd, diagonal),
        "nsd": nsd,
        "volume_ratio": metrics.volume_ratio(volume.label, prediction),
    }
