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

import numpy as np
from pydantic import Field

from iunet_bench.core.schema import Float, Schema
from simulators.interaction import ADD, Click, Effort, Interaction, Stroke


class _Time(Schema):
    """The time model's shared terms; each robot's model adds its own gestures' (the other's count 0)."""

    seconds_per_slice: Float = Field(
        4.0, ge=0, description="estimated seconds to scroll to and inspect one slice"
    )
    wait_seconds: Float = Field(
        2.0, ge=0, description="estimated wait for the updated segmentation, per round"
    )

    def seconds(self, strokes: int, length_mm: float, slices: int, clicks: int) -> float:
        if strokes == 0 and clicks == 0:
            return 0.0
        per = {
            k: getattr(self, k, 0.0) for k in ("seconds_per_stroke", "seconds_per_cm", "seconds_per_click")
        }
        return float(
            self.seconds_per_slice * slices
            + per["seconds_per_stroke"] * strokes
            + per["seconds_per_cm"] * length_mm / 10.0
            + per["seconds_per_click"] * clicks
            + self.wait_seconds
        )


class TimeModel(_Time):
    """The scribble robot's time model."""

    seconds_per_stroke: Float = Field(1.5, ge=0, description="estimated seconds to aim and start one stroke")
    seconds_per_cm: Float = Field(0.5, ge=0, description="estimated seconds per centimetre drawn")


class ClickTime(_Time):
    """The click robot's time model."""

    seconds_per_click: Float = Field(1.5, ge=0, description="estimated seconds per click")


def measure_effort(add: np.ndarray, remove: np.ndarray, strokes: Sequence[Stroke], time: _Time) -> Effort:
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


def build_interaction(
    shape: tuple[int, int, int], strokes: Sequence[Stroke], time: _Time, clicks: Sequence[Click] = ()
) -> Interaction:
    """Paint the gestures in order (a later gesture paints over an earlier one, as in a paint tool) and
    account the round's effort; `clicks`, the click robot's clicks in native form, pass through as given."""
    add, remove = np.zeros(shape, bool), np.zeros(shape, bool)
    for s in strokes:
        idx = tuple(s.voxels.T)
        add[idx] = s.label == ADD
        remove[idx] = s.label != ADD
    effort = measure_effort(add, remove, strokes, time)
    return Interaction(add, remove, effort, strokes=tuple(strokes), clicks=tuple(clicks))
