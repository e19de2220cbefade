"""Effort accounting and the time model: how long a person would have needed for one round.

    seconds = seconds_per_slice  * slices        (scroll to a slice and look at it)
            + seconds_per_stroke * strokes       (aim and put the pen down)
            + seconds_per_cm     * length_mm / 10 (draw)
            + seconds_per_click  * clicks
            + wait_seconds                        (wait for the updated segmentation)

An empty round (nothing worth a scribble) costs 0 s: the user is done and the session stops. The defaults
are assumptions for a mouse-driven GUI, not measurements; the paper's only figures are totals (about
8 minutes interactive against 15 minutes manual per pancreas), which curves of DSC against these
estimated minutes can be compared with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.interaction import ADD, Effort, Interaction, Stroke


@dataclass(frozen=True)
class TimeModel:
    seconds_per_stroke: float = 1.5
    seconds_per_cm: float = 0.5
    seconds_per_slice: float = 4.0
    seconds_per_click: float = 1.5
    wait_seconds: float = 2.0

    def seconds(self, strokes: int, length_mm: float, slices: int, clicks: int) -> float:
        if strokes == 0 and clicks == 0:
            return 0.0
        return float(
            self.seconds_per_slice * slices
            + self.seconds_per_stroke * strokes
            + self.seconds_per_cm * length_mm / 10.0
            + self.seconds_per_click * clicks
            + self.wait_seconds
        )


def measure_effort(add: np.ndarray, remove: np.ndarray, strokes: Sequence[Stroke], time: TimeModel) -> Effort:
    """Effort of one round from its painted masks and its gesture records."""
    n_strokes = sum(1 for s in strokes if not s.is_click)
    n_clicks = sum(1 for s in strokes if s.is_click)
    length = float(sum(s.length_mm for s in strokes))
    slices = len({(s.plane, s.index) for s in strokes})
    add_voxels, remove_voxels = int(add.sum()), int(remove.sum())
    return Effort(
        strokes=n_strokes,
        voxels=add_voxels + remove_voxels,
        length_mm=length,
        slices=slices,
        clicks=n_clicks,
        seconds=time.seconds(n_strokes, length, slices, n_clicks),
        add_voxels=add_voxels,
        remove_voxels=remove_voxels,
    )


def build_interaction(shape: tuple[int, int, int], strokes: Sequence[Stroke], time: TimeModel) -> Interaction:
    """Paint the gestures in order (a later gesture paints over an earlier one, as in a paint tool) and
    account the round's effort."""
    add, remove = np.zeros(shape, bool), np.zeros(shape, bool)
    for s in strokes:
        idx = tuple(s.voxels.T)
        add[idx] = s.label == ADD
        remove[idx] = s.label != ADD
    return Interaction(add, remove, measure_effort(add, remove, strokes, time), strokes=tuple(strokes))
