"""Robot annotators for interactive segmentation benchmarks. numpy/scipy/scikit-image only: never TensorFlow.

An annotator has one method:

    annotate(image, reference, prediction, rng, spacing=(1, 1, 1)) -> Interaction

`image` is the (preprocessed) volume, `reference` and `prediction` are 0/1 masks on the same z-y-x grid,
`rng` is a `numpy.random.Generator` (the only source of randomness), `spacing` is z-y-x in millimetres.
An empty `Interaction` means "nothing worth an interaction": the session stops that case.

Modules: `errors` (error regions), `policy` (what to scribble), `strokes` (stroke shapes and painting),
`noise` (human-like errors), `effort` (effort and time model), `scribble` / `click` / `box` (robots),
`config` (the `simulator` config group), `render` (pictures of a round), `perturb` (synthetic wrong
predictions, to exercise the robots without a model).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from simulators.box import jittered_box
from simulators.click import ClickRobot, ClickStyle
from simulators.config import SimulatorConfigError, parse, sections
from simulators.effort import TimeModel
from simulators.errors import ErrorAnalysis, ErrorRegion, analyse_errors
from simulators.interaction import Effort, Interaction, Stroke
from simulators.noise import Noise
from simulators.policy import Policy
from simulators.scribble import ScribbleRobot
from simulators.strokes import StrokeStyle

__all__ = [
    "Annotator",
    "ClickRobot",
    "ClickStyle",
    "Effort",
    "ErrorAnalysis",
    "ErrorRegion",
    "Interaction",
    "Noise",
    "Policy",
    "ScribbleRobot",
    "SimulatorConfigError",
    "Stroke",
    "StrokeStyle",
    "TimeModel",
    "analyse_errors",
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


def make_annotator(cfg: Mapping[str, Any]) -> Annotator:
    """Build a robot from the `simulator` config group (a plain, possibly nested mapping).

    Keys it omits take their defaults; unknown keys and bad values raise `SimulatorConfigError` (a
    ValueError) naming `simulator.<key>` and what is allowed. See README.md (Configuration).
    """
    values = parse(cfg)
    parts = sections(values)
    if values["kind"] == "click":
        return ClickRobot(
            clicks=parts["clicks"], policy=parts["policy"], noise=parts["noise"], time=parts["time"]
        )
    return ScribbleRobot(
        policy=parts["policy"], strokes=parts["strokes"], noise=parts["noise"], time=parts["time"]
    )
