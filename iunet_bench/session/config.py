"""The `session` and `protocol` keys: how many rounds on how many cases, how a session is measured and what
comes before the robot's first round. (The `observers` keys belong to their task: `tasks.observers_config`.)"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from iunet_bench.core.schema import Bool, Float, Int, Schema


class SessionConfig(Schema):
    """The `session` keys: how many rounds, on how many cases, when a case stops."""

    rounds: Int = Field(
        10, ge=0, description="interaction rounds per case (round 0, the baseline prediction, is extra)"
    )
    max_cases: Int | None = Field(None, ge=1, description="use at most this many held-out cases (null = all)")
    target_dsc: Float | None = Field(
        None, ge=0, le=1, description="stop a case once its DSC reaches this; its curve is carried forward"
    )
    undo: Bool = Field(
        False,
        description="the user undoes a round whose prediction has a lower DSC than the previous one with "
        "every stroke so far painted in, and keeps that instead (an ideal user's judgement, as the robot's "
        "strokes are an ideal user's); the refiner's next round starts from it, a learning one keeps its "
        "weights; rounds_undone says how often (docs/explanation/pancreas.md)",
    )
    pictures: Int = Field(2, ge=0, description="cases for which a slice picture of every round is logged")
    workers: Int = Field(
        1,
        ge=1,
        description="held-out cases run in this many parallel processes (CPU only), each with cores // "
        "workers TensorFlow threads; same records as one process (README, Speed, for when it pays off)",
    )


class ProtocolConfig(Schema):
    """The `protocol` keys: how a session is measured and what comes before the robot's first round. The
    presets (`protocol=iunet|ritm|cvpr25|deepigeos|davis`, `conf/protocol/`) also set the robot, the rounds
    and the stopping rule of a public protocol; README.md (Protocols) says where each differs from its
    source."""

    name: str = Field("iunet", description="preset name, shown in run tables (free text)")
    first: Literal["none", "box"] = Field(
        "none",
        description="box: round 1 is a bounding box of the organ (the CVPR 2025 challenge's optional first "
        "prompt: everything outside it marked background), the robot's rounds follow; none: the robot from "
        "round 1",
    )
    thresholds: Annotated[tuple[Float, ...], Field(min_length=1)] = Field(
        (0.85, 0.90),
        description="DSC targets: NoI@k (rounds to reach k, a case that never does counts as the last round, "
        "as RITM's NoC) and seconds_to_k for each; NoF (cases that never reach it) at the last one",
    )
    nsd_tolerance_mm: Float = Field(2.0, gt=0, description="tolerance of the normalised surface Dice, mm")
    time_budget_s: Float = Field(
        480.0,
        gt=0,
        description="effort AUC: DSC against the user's estimated seconds over [0, this], normalised (the "
        "paper: about 8 minutes per interactive pancreas; DAVIS: 8 interactions x 30 s)",
    )
    box_jitter: Float = Field(
        0.0, ge=0, le=1, description="first=box: each face moves by up to this share of the organ's extent"
    )
    box_shift: Int = Field(
        0,
        ge=0,
        description="first=box: the 2D box grows by a random 0..this pixels per side, scaled from 256 pixels "
        "(the challenge's shift: 5)",
    )

    @model_validator(mode="after")
    def _sorted(self) -> ProtocolConfig:
        if any(not 0 < t <= 1 for t in self.thresholds) or list(self.thresholds) != sorted(self.thresholds):
            raise ValueError(
                f"protocol.thresholds: {list(self.thresholds)}: expected increasing DSC values in (0, 1]"
            )
        return self

    def threshold_name(self, t: float) -> str:
        """`85` for 0.85: the suffix of noi_85, seconds_to_85, nof_90."""
        return f"{round(t * 100):d}"
