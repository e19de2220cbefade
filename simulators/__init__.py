"""Robot annotators for interactive segmentation benchmarks. numpy/scipy/scikit-image only: never TensorFlow.

An annotator has one method:

    annotate(image, reference, prediction, rng, spacing=(1, 1, 1)) -> Interaction

`image` is the (preprocessed) volume, `reference` and `prediction` are 0/1 masks on the same z-y-x grid,
`rng` is a `numpy.random.Generator` (the only source of randomness), `spacing` is z-y-x in millimetres.
An empty `Interaction` means "nothing worth an interaction": the session stops that case.

Modules: `errors` (error regions), `policy` (what to scribble), `strokes` (stroke shapes and painting),
`noise` (human-like errors), `effort` (effort and time model), `scribble` / `click` / `box` (robots; `box`
also the CVPR 2025 challenge's box prompt), `manual` (an observer contouring every slice by hand),
`config` (the `simulator` config group), `render` (pictures of a round), `perturb` (synthetic wrong
predictions, to exercise the robots without a model).

May import: core (its schema), none of the benchmark's other rooms.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from simulators.box import BoxRobot, box_interaction, challenge_box, jittered_box
from simulators.click import ClickRobot, ClickStyle
from simulators.config import ClickSimulator, ScribbleSimulator, make_annotator
from simulators.effort import ClickTime, TimeModel
from simulators.errors import ErrorAnalysis, ErrorRegion, analyse_errors
from simulators.interaction import Click, Effort, Interaction, SliceBox, Stroke
from simulators.manual import OBSERVERS, ManualResult, ManualStyle, contour_case
from simulators.noise import Noise
from simulators.policy import Policy
from simulators.scribble import ScribbleRobot
from simulators.strokes import StrokeStyle

__all__ = [
    "Annotator",
    "BoxRobot",
    "Click",
    "ClickRobot",
    "ClickSimulator",
    "ClickStyle",
    "ClickTime",
    "Effort",
    "ErrorAnalysis",
    "ErrorRegion",
    "Interaction",
    "ManualResult",
    "ManualStyle",
    "OBSERVERS",
    "Noise",
    "Policy",
    "ScribbleRobot",
    "ScribbleSimulator",
    "SliceBox",
    "Stroke",
    "StrokeStyle",
    "TimeModel",
    "analyse_errors",
    "box_interaction",
    "challenge_box",
    "contour_case",
    "jittered_box",
    "make_annotator",
]


class Annotator(Protocol):
    def annotate(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        prediction: np.ndarray,
        rng: np.random.Generator,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> Interaction: ...
