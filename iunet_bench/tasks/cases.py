"""The held-out cases' sessions, in this process or in parallel worker processes (`session.workers`).

    for volume, result in run_cases(setup, todo, initial):   # in the order of `todo`
        ...                                                        # result.records, .prediction, .error

Each case is independent: the refiner restores the baseline at `start`, the robot draws from generators
derived from (seed, case, round), so a case gives the same records whichever process runs it and whatever
ran before it. With `workers` > 1 (CPU only) each worker process builds the job's setup once from the same
configuration, loads the baseline from the cache the job has just filled, builds its own refiner, paste
floor and painter, and takes cores // workers TensorFlow threads; results come back in the order of the cases, so the
job logs them exactly as a sequential job would. A case that fails in a worker comes back as its error.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iunet_bench.core.runtime import cores
from iunet_bench.data import Volume


@dataclass
class CaseResult:
    records: list | None  # RoundRecords of rounds 0..R (None: the case failed)
    prediction: np.ndarray | None  # the last prediction the user saw
    error: str = ""
    trace: str = ""


def run_case(
    setup, refiner, floor, volume: Volume, initial: np.ndarray, pictures: Path | None, painter=None
) -> CaseResult:
    """One case's session; slice pictures of every round under `pictures` (None: none); with `painter`
    (the paste refiner) the painting-only user's session beside it, its DSC in `RoundRecord.painter_dsc`."""
    from iunet_bench.session.loop import painter_curve, run_session
    from simulators.render import save_round_png

    config, latest = setup.config, {}

    def on_round(record, prediction, interaction) -> None:
        latest["prediction"] = prediction
        if pictures is not None:
            pictures.mkdir(parents=True, exist_ok=True)
            save_round_png(
                pictures / f"round_{record.round:02d}.png",
                volume.image,
                volume.label,
                prediction,
                interaction,
                title=f"{volume.case_id} round {record.round}: DSC {record.dsc:.3f}",
            )

    try:
        records = run_session(
            volume,
            initial,
            setup.robot,
            refiner,
            config.session.rounds,
            config.seed,
            config.session.target_dsc,
            on_round,
            floor=floor,
            nsd_tolerance_mm=config.protocol.nsd_tolerance_mm,
            first=setup.first_robot,
            undo=config.session.undo,
        )
        if painter is not None:
            s = config.session
            painted = painter_curve(
                volume, initial, setup.robot, painter, s.rounds, config.seed, s.target_dsc, setup.first_robot
            )
            for record, dsc in zip(records, painted, strict=True):
                record.painter_dsc = dsc
    except Exception as exc:  # one bad case never loses the rest of the job
        return CaseResult(None, None, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    return CaseResult(records, latest["prediction"])


_WORKER: dict = {}  # per worker process: the setup, refiner and floor of the configuration it serves


def _in_worker(config, volume: Volume, initial: np.ndarray, pictures: Path | None) -> CaseResult:
    from iunet_bench.tasks.prepare import JobSetup

    key = config.model_dump_json()
    if _WORKER.get("key") != key:
        setup = JobSetup(config)
        _WORKER.update(
            key=key, setup=setup, refiner=setup.refiner(), floor=setup.floor(), painter=setup.painter()
        )
    w = _WORKER
    return run_case(w["setup"], w["refiner"], w["floor"], volume, initial, pictures, w["painter"])


def run_cases(
    setup, todo: list[tuple[Volume, Path | None]], initial: dict
) -> Iterator[tuple[Volume, CaseResult]]:
    """(volume, result) for each (volume, pictures folder) of `todo`, in that order."""
    workers = min(setup.config.session.workers, len(todo))
    if workers <= 1:
        refiner, floor, painter = setup.refiner(), setup.floor(), setup.painter()
        for volume, pictures in todo:
            yield volume, run_case(setup, refiner, floor, volume, initial[volume.case_id], pictures, painter)
        return
    from joblib import Parallel, delayed

    config = setup.config.model_copy(update={"threads": max(1, cores() // workers), "device": "cpu"})
    jobs = (delayed(_in_worker)(config, v, initial[v.case_id], p) for v, p in todo)
    results = Parallel(n_jobs=workers, backend="loky", return_as="generator")(jobs)
    yield from zip((v for v, _ in todo), results)
