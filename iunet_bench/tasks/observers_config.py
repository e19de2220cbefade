"""The `observers` keys, owned by `task=observers` (`tasks.observers` runs it).

A schema module apart from the task itself: `tasks.config` composes it into `JobConfig`, and the task
imports `tasks.config`, so this module imports neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from iunet_bench.core.schema import Schema


class ObserversConfig(Schema):
    """The `observers` keys (`task=observers`, `experiment=observers`): the paper's second experiment,
    simulated. Observer i contours every held-out case by hand with manual style `manual[i]`
    (`simulators.manual.OBSERVERS`) and segments it interactively from the baseline with the scribble robot
    `interactive[i]` (a `conf/simulator/` preset) and its own seed."""

    manual: Annotated[tuple[Literal["careful", "average", "hurried"], ...], Field(min_length=2)] = Field(
        ("careful", "average", "hurried"),
        description="each observer's manual contouring style (simulators/manual.py: assumptions)",
    )
    interactive: Annotated[tuple[str, ...], Field(min_length=2)] = Field(
        ("scribble_careful", "scribble_ideal", "scribble_sloppy"),
        description="each observer's robot in interactive mode: a conf/simulator preset name",
    )

    @model_validator(mode="after")
    def _pairs(self) -> ObserversConfig:
        if len(self.manual) != len(self.interactive):
            raise ValueError(
                f"observers.manual ({len(self.manual)}) and observers.interactive ({len(self.interactive)}): "
                "one entry per observer in each"
            )
        return self

    def missing_presets(self, conf_dir: Path) -> str | None:
        """None when every `interactive` robot is a preset under `conf_dir/simulator/`, else the problem."""
        missing = [n for n in self.interactive if not (conf_dir / "simulator" / f"{n}.yaml").is_file()]
        if not missing:
            return None
        known = sorted(p.stem for p in (conf_dir / "simulator").glob("*.yaml"))
        return f"observers.interactive: no simulator preset {missing}; known: {known}"
