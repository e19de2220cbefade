"""The `simulator` config group: one schema per robot family (`simulator.kind` = scribble | click).

The sections are the robots' own settings, each defined (with its defaults and its keys' meanings) next to
the code that uses it: `Policy` (policy.py), `StrokeStyle` (strokes.py), `ClickStyle` (click.py), `Noise`
(noise.py), `TimeModel` (effort.py); the click robot has the smaller `ClickPolicy`, `ClickNoise` and
`ClickTime`. `make_annotator(config)` builds the robot of a validated config, or of a plain mapping
(validated here, for use outside the job).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from iunet_bench.core.schema import Schema, validate_group, variants
from simulators.click import ClickRobot, ClickStyle
from simulators.effort import ClickTime, TimeModel
from simulators.noise import ClickNoise, Noise
from simulators.policy import ClickPolicy, Policy
from simulators.scribble import ScribbleRobot
from simulators.strokes import StrokeStyle


class ScribbleSimulator(Schema):
    kind: Literal["scribble"] = Field("scribble", description="robot family: scribble strokes or clicks")
    name: str | None = Field("scribble_ideal", description="preset name, shown in run tables (free text)")
    policy: Policy = Policy()
    strokes: StrokeStyle = StrokeStyle()
    noise: Noise = Noise()
    time: TimeModel = TimeModel()

    def build(self) -> ScribbleRobot:
        return ScribbleRobot(policy=self.policy, strokes=self.strokes, noise=self.noise, time=self.time)


class ClickSimulator(Schema):
    kind: Literal["click"] = "click"
    name: str | None = "click_ritm"
    policy: ClickPolicy = ClickPolicy()
    clicks: ClickStyle = ClickStyle()
    noise: ClickNoise = ClickNoise()
    time: ClickTime = ClickTime()

    def build(self) -> ClickRobot:
        return ClickRobot(clicks=self.clicks, policy=self.policy, noise=self.noise, time=self.time)


SimulatorConfig = variants(ScribbleSimulator, ClickSimulator, tag="kind")
AnySimulator = ScribbleSimulator | ClickSimulator


def parse(cfg: Mapping[str, Any]) -> AnySimulator:
    """A `simulator` mapping validated (missing keys take their defaults); ConfigError names every bad key."""
    return validate_group(SimulatorConfig, {"kind": "scribble", **cfg}, "simulator")


def make_annotator(cfg: AnySimulator | Mapping[str, Any]):
    """The robot of a `simulator` config (a validated schema, or a plain mapping validated here)."""
    config = cfg if isinstance(cfg, (ScribbleSimulator, ClickSimulator)) else parse(cfg)
    return config.build()
