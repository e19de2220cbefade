"""The round loop: one case, one robot, one refiner.

Round 0 is the baseline prediction. In each round r = 1..R the robot looks at the current prediction,
returns an `Interaction`, the refiner turns it into a new prediction, and the metrics are measured.
A case stops early when the robot finds nothing worth a scribble or `target_dsc` is reached; its curve is
then carried forward (the user is done, the segmentation stays), so every curve has R + 1 points.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from iunet_bench.core import metrics
from iunet_bench.core.rng import derive_rng
from iunet_bench.data.case import Volume
from iunet_bench.interactive.base import Refiner, ScribbleMemory
from iunet_bench.session.records import RoundRecord, measure
from simulators import Annotator
from simulators.interaction import Interaction


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
    surfaces: bool = True,
    undo: bool = False,
) -> list[RoundRecord]:
    """The records of rounds 0..`rounds` of one case. The robot of round r draws from
    `derive_rng(seed, case id, r)` (`Volume.draw_id`: a class session draws as its case), so the order of
    cases never changes a curve.

    floor: a second refiner (the job's paste floor) handed the same interactions; it never changes what
    the robot sees (the robot looks at `refiner`'s predictions only), and its DSC is recorded beside the
    method's, so every round says what the method gained beyond pasting the user's scribbles in.
    first: the annotator of round 1 (a protocol's first prompt, e.g. a bounding box); `robot` from then on.
    surfaces=False: HD95 and NSD are not measured (NaN), for sessions whose DSC alone is used.
    undo: the user undoes a round whose prediction is worse (lower DSC) than the previous prediction with
    every stroke so far painted in, keeps the painted one (`refiner.accept`) and the record says `undone`
    (`session.undo`: an ideal user's judgement, as the robot's strokes are an ideal user's)."""
    reference = volume.label
    prediction = initial_prediction.astype(np.uint8)
    refiner.start(volume, prediction)
    if floor is not None:
        floor.start(volume, prediction)
    given = ScribbleMemory(volume.image.shape, accumulate=True)  # every scribble of the case so far
    measured = measure(volume, prediction, nsd_tolerance_mm, surfaces)
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
                derive_rng(seed, volume.draw_id, r),
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
        undone = False if undo else None
        if undo:
            painted = so_far.paste(previous).astype(np.uint8)
            if metrics.dsc(reference, painted) > metrics.dsc(reference, prediction):
                prediction, undone = painted, True
                refiner.accept(painted)
        rec = RoundRecord(
            volume.case_id,
            r,
            **measure(volume, prediction, nsd_tolerance_mm, surfaces),
            refine_seconds=refine_s,
            robot_seconds=robot_s,
            effort=interaction.effort.as_dict(),
            losses=list(result.losses),
            agreement=metrics.scribble_agreement(result.own, interaction.add, interaction.remove),
            agreement_all=metrics.scribble_agreement(result.own, so_far.add, so_far.remove),
            changed_voxels=int(np.count_nonzero(previous.astype(bool) != prediction.astype(bool))),
            floor_dsc=metrics.dsc(reference, floor.refine(interaction).prediction) if floor else float("nan"),
            undone=undone,
        )
        records.append(rec)
        if on_round:
            on_round(rec, prediction, interaction)
    finish = getattr(refiner, "finish", None)  # optional: the end of a case (a plug-in's `end`)
    if finish is not None:
        finish()
    return records


def painter_curve(
    volume: Volume,
    initial_prediction: np.ndarray,
    robot: Annotator,
    painter: Refiner,
    rounds: int,
    seed: int,
    target_dsc: float | None = None,
    first: Annotator | None = None,
) -> list[float]:
    """DSC per round 0..`rounds` of a user who only paints (`painter`: the paste refiner): a session of its
    own with the same robot, seed and stopping rule as the method's, the robot drawing on the painter's own
    predictions, so its strokes answer the painter's errors (unlike the in-run floor, which pastes the
    strokes drawn for the method's)."""
    records = run_session(
        volume, initial_prediction, robot, painter, rounds, seed, target_dsc, first=first, surfaces=False
    )
    return [r.dsc for r in records]
