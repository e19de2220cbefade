"""Robot annotators for interactive segmentation benchmarks. numpy/scipy/scikit-image only: never TensorFlow.

An annotator has one method:

    annotate(image, reference, prediction, rng, spacing=(1, 1, 1)) -> Interaction

`image` is the (preprocessed) volume, `reference` and `prediction` are 0/1 masks on the same z-y-x grid,
`rng` is a `numpy.random.Generator` (the only source of randomness), `spacing` is z-y-x in millimetres.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from simulators.interaction import Effort, Interaction
from simulators.scribble import ScribbleRobot

__all__ = ["Annotator", "Effort", "Interaction", "ScribbleRobot", "make_annotator"]


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
    """Build an annotator from the `simulator` config group (a plain mapping)."""
    cfg = dict(cfg)
    kind = cfg.pop("kind", "scribble")
    cfg.pop("name", None)
    if kind == "scribble":
        return ScribbleRobot(**cfg)
    raise ValueError(f"simulator.kind: unknown robot {kind!r}; expected one of ['scribble']")
