"""The round loop: one case, one robot, one refiner.

Round 0 is the baseline prediction. In each round r = 1..R the robot looks at the current prediction,
returns an `Interaction`, the refiner turns it into a new prediction, and the metrics are measured.
A case stops early when the robot finds nothing worth a scribble or `target_dsc` is reached; its curve is
then carried forward (the user is done, the segmentation stays), so every curve has R + 1 points.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from iunet_bench import metrics
from iunet_bench.data.case import Volume
from iunet_bench.interactive.base import Refiner, ScribbleMemory
from iunet_bench.rng import derive_rng
from iunet_bench.schema import Float, Int, Schema
from simulators import Annotator
from simulators.interaction import Interaction


class SessionConfig(Schema):
    """The `session` keys: how many rounds, on how many cases, when a case stops."""

    rounds: Int = Field(
        10, ge=0, description="interaction rounds per case (round 0, the baseline prediction, is extra)"
    )
    max_cases: Int | None = Field(None, ge=1, description="use at most this many held-out cases (null = all)")
    target_dsc: Float | None = Field(
        None, ge=0, le=1, description="stop a case once its DSC reaches this; its curve is carried forward"
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
    changed_voxels: int = 0  # voxels whose label this round changed
    floor_dsc: float = float("nan")  # DSC of the paste floor (the scribbles pasted in, no learning)
    nsd: float = float("nan")  # normalised surface Dice at protocol.nsd_tolerance_mm
    volume_ratio: float = float("nan")  # predicted / reference volume (the paper saw < 1 after round 1)

    def row(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("effort", "losses")}
        out.update({f"effort_{k}": v for k, v in self.effort.items()})
        out["loss_last"] = self.losses[-1] if self.losses else float("nan")
        return out


def measure(volume: Volume, prediction: np.ndarray, tolerance_mm: float) -> dict[str, float]:
    """A prediction's metrics against the case's reference: DSC, HD95 in mm (with "one mask is empty"
    counted as the volume's diagonal, the largest possible distance, so that means over cases stay finite
    and every case counts in every round), NSD at `tolerance_mm`, and the volume ratio."""
    diagonal = float(np.linalg.norm(np.asarray(volume.image.shape) * np.asarray(volume.spacing)))
    hd, nsd = metrics.surface_metrics(volume.label, prediction, volume.spacing, tolerance_mm)
    return {
        "dsc": metrics.dsc(volume.label, prediction),
        "hd95": min(hd, diagonal),
        "nsd": nsd,
        "volume_ratio": metrics.volume_ratio(volume.label, prediction),
    }


def run_session(
    volume: Volume,
    initial_prediction: np.ndarray,
    robot: Annotator,
    refiner: Refiner,
    rounds: int,
    seed: int,
    target_dsc: float | None = None,
    on_round: Callable[[RoundRecord, np.ndarray, Interaction | None], None] | None = None,
    floor: Refiner | None = None,
    nsd_tolerance_mm: float = 2.0,
    first: Annotator | None = None,
) -> list[RoundRecord]:
    """The records of rounds 0..`rounds` of one case. The robot of round r draws from
    `derive_rng(seed, case id, r)`, so the order of cases never changes a curve.

    floor: a second refiner (the job's paste floor) handed the same interactions; it never changes what
    the robot sees (the robot looks at `refiner`'s predictions only), and its DSC is recorded beside the
    method's, so every round says what the method gained beyond pasting the user's scribbles in.
    first: the annotator of round 1 (a protocol's first prompt, e.g. a bounding box); `robot` from then on."""
    reference = volume.label
    prediction = initial_prediction.astype(np.uint8)
    refiner.start(volume, prediction)
    if floor is not None:
        floor.start(volume, prediction)
    given = ScribbleMemory(volume.image.shape, accumulate=True)  # every scribble of the case so far
    measured = measure(volume, prediction, nsd_tolerance_mm)
    floor_first = measured["dsc"] if floor is not None else float("nan")
    records = [RoundRecord(volume.case_id, 0, **measured, floor_dsc=floor_first)]
    if on_round:
        on_round(records[0], prediction, None)
    stopped = False
    for r in range(1, rounds + 1):
        last = records[-1]
        if not stopped and target_dsc is not None and last.dsc >= target_dsc:
            stopped = True
        interaction = None
        if not stopped:
            annotator = first if r == 1 and first is not None else robot
            t0 = time.perf_counter()
            interaction = annotator.annotate(
                volume.image,
                reference,
                prediction,
                derive_rng(seed, volume.case_id, r),
                spacing=volume.spacing,
            )
            robot_s = time.perf_counter() - t0
            stopped = interaction.is_empty
        if stopped:
            carried = {k: getattr(last, k) for k in ("dsc", "hd95", "nsd", "volume_ratio", "floor_dsc")}
            records.append(RoundRecord(volume.case_id, r, **carried, stopped=True))
            continue
        t0 = time.perf_counter()
        result = refiner.refine(interaction)
        refine_s = time.perf_counter() - t0
        previous, prediction = prediction, result.prediction
        so_far = given.update(interaction)
        rec = RoundRecord(
            volume.case_id,
            r,
            **measure(volume, prediction, nsd_tolerance_mm),
            refine_seconds=refine_s,
            robot_seconds=robot_s,
            effort=interaction.effort.as_dict(),
            losses=list(result.losses),
            agreement=metrics.scribble_agreement(result.own, interaction.add, interaction.remove),
            agreement_all=metrics.scribble_agreement(result.own, so_far.add, so_far.remove),
            changed_voxels=int(np.count_nonzero(previous.astype(bool) != prediction.astype(bool))),
            floor_dsc=metrics.dsc(reference, floor.refine(interaction).prediction) if floor else float("nan"),
        )
        records.append(rec)
        if on_round:
            on_round(rec, prediction, interaction)
    return records
