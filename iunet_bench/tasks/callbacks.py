"""What a job's case loop tells, and who listens: each observer owns one concern.

The loop (`job._case_loop`) only produces events; the observers hear each one in the order of their list,
as lightning's Trainer calls its callbacks:

    on_job_start(start)                  the loaded cases, the ids still to run
    on_baseline_step(progress)           one training step of the baseline (none when the cache has it)
    on_baseline_end(baseline)
    on_case_restored(case_id, records)   finished before an interruption (resume): its records are the run's
    on_case_start(case_id)               the loop turns to it (runs it, or awaits it from a worker)
    on_case_end(case)                    its RoundRecords, last prediction and pictures folder
    on_case_failed(case_id, error, trace)
    on_job_end(end)                      the summary and every record

A job's list is `[CaseProgress, MlflowLogger, JobFiles, Failures]`. The order matters twice: a case's curves
reach MLflow before its files, of which `records/<case>.json` (the run's mark that the case is done, what a
resume reads) is the last, after the case's mask and pictures; and at the end the curves and summary reach
MLflow before the job's own files, so a trouble with a file never costs a logged result. A tracking server
lost midway (`tracking.client.TrackingLost`) ends the loop; the job folder then keeps every finished case
(`keep_local`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from iunet_bench.analysis import results
from iunet_bench.analysis.results import Summary
from iunet_bench.data import Volume
from iunet_bench.session.records import RoundRecord
from iunet_bench.tracking import resume
from iunet_bench.tracking.tracker import metric_key


@dataclass
class JobStart:
    train: list[Volume]
    test: list[Volume]  # the held-out cases, in the job's order
    todo: list[str]  # the ids of those still to run (not restored from an earlier attempt)


@dataclass
class CaseEnd:
    volume: Volume
    records: list[RoundRecord]  # rounds 0..R
    prediction: np.ndarray  # the last prediction the user saw
    pictures: Path | None  # the folder the session drew its slice pictures in (None: none)

    @property
    def case_id(self) -> str:
        return self.volume.case_id


@dataclass
class JobEnd:
    summary: Summary
    records: list[RoundRecord]  # every finished case's, restored ones included, in the job's order


class CaseObserver:
    """The hooks, each a no-op: an observer overrides those of its concern."""

    def on_job_start(self, start: JobStart) -> None: ...
    def on_baseline_step(self, progress) -> None: ...  # train.baseline.Progress
    def on_baseline_end(self, baseline) -> None: ...  # train.baseline.Baseline
    def on_case_restored(self, case_id: str, records: list[RoundRecord]) -> None: ...
    def on_case_start(self, case_id: str) -> None: ...
    def on_case_end(self, case: CaseEnd) -> None: ...
    def on_case_failed(self, case_id: str, error: str, trace: str = "") -> None: ...
    def on_job_end(self, end: JobEnd) -> None: ...


HOOKS = tuple(name for name in vars(CaseObserver) if name.startswith("on_"))


class Observers:
    """`observers.on_case_end(case)` calls `on_case_end(case)` of each observer, in list order."""

    def __init__(self, observers):
        self.observers = list(observers)

    def __getattr__(self, hook: str):
        if hook not in HOOKS:
            raise AttributeError(hook)

        def call(*args) -> None:
            for observer in self.observers:
                getattr(observer, hook)(*args)

        return call


class Failures(CaseObserver):
    """Failed cases, written to `failures.json` and the `failed_cases` tag as each one happens; the other
    observers add theirs (a file that could not be written) with `add`."""

    def __init__(self, tracker, out: Path):
        self.tracker, self.path, self.items = tracker, out / "failures.json", []

    def add(self, case_id: str, stage: str, error: str, trace: str = "") -> None:
        self.items.append({"case_id": case_id, "stage": stage, "error": error, "traceback": trace})
        with contextlib.suppress(Exception):  # a full disk or tracking trouble must not hide the error
            self.tracker.set_tags({"failed_cases": str(len(self.items))})
            self.path.write_text(json.dumps(self.items, indent=2), encoding="utf-8")
            self.tracker.log_artifact(self.path)

    def on_case_failed(self, case_id: str, error: str, trace: str = "") -> None:
        self.add(case_id, "session", error, trace)


class CaseProgress(CaseObserver):
    """The progress bars: the baseline's training steps (`steps` 0: a job that trains no baseline), then
    the cases still to run."""

    def __init__(self, show: bool, steps: int):
        self.show, self.steps, self.todo = show, steps, 0
        self.bar = None

    def _bar(self, **kwargs):
        from tqdm.auto import tqdm

        return tqdm(disable=not self.show, **kwargs)

    def on_job_start(self, start: JobStart) -> None:
        self.todo = len(start.todo)
        if not self.steps:  # no baseline: no on_baseline_end either
            self.bar = self._bar(total=self.todo, desc="cases")
            return
        self.bar = self._bar(total=self.steps, desc="baseline training", leave=False)

    def on_baseline_step(self, progress) -> None:
        if self.bar.n == 0 and progress.step:  # continued from a checkpoint
            self.bar.update(progress.step)
        self.bar.update(1)
        val = {"val_dsc": f"{progress.val_dsc:.3f}"} if progress.val_dsc is not None else {}
        self.bar.set_postfix(loss=f"{progress.loss:.3f}", **val)

    def on_baseline_end(self, baseline) -> None:
        self.bar.close()
        self.bar = self._bar(total=self.todo, desc="cases")

    def on_case_start(self, case_id: str) -> None:
        self.bar.set_postfix(case=case_id)

    def on_case_end(self, case: CaseEnd) -> None:
        self.bar.update(1)

    def on_case_failed(self, case_id: str, error: str, trace: str = "") -> None:
        self.bar.update(1)

    def on_job_end(self, end: JobEnd) -> None:
        self.bar.close()


class MlflowLogger(CaseObserver):
    """The run's metrics and the baseline's tags: the baseline's training curves; each case's curves
    (`dsc/<case>`, `hd95/<case>`, `nsd/<case>` at step = round) as it ends or is restored; the job's curves
    and summary at the end. Each is logged only when the run has none of it yet, so a resumed run (whose
    earlier attempt may have logged any of them before it was cut off) ends with every round once."""

    def __init__(self, tracker, rounds: int):
        self.tracker, self.rounds = tracker, rounds

    def _logged(self, metric: str) -> bool:
        return resume.logged_rounds(self.tracker.client, self.tracker.run_id, metric) > 0

    def on_baseline_end(self, baseline) -> None:
        tags = {"baseline_key": baseline.key, "baseline_cached": str(baseline.hit)}
        if baseline.stopped_at is not None:
            tags["baseline_stopped_at"] = str(baseline.stopped_at)  # early stopping
        if baseline.resumed_from is not None:
            tags["baseline_resumed_from"] = str(baseline.resumed_from)  # continued from a checkpoint
        self.tracker.set_tags(tags)
        if baseline.losses and not self._logged("train_loss"):
            self.tracker.log_metrics(("train_loss", v, i) for i, v in enumerate(baseline.losses))
            self.tracker.log_metrics(("train_val_dsc", v, int(s)) for s, v in baseline.validation)

    def _case(self, case_id: str, records: list[RoundRecord]) -> None:
        key = metric_key(case_id)
        if not self._logged(results.case_metric("dsc", key)):
            self.tracker.log_metrics(results.case_rows(key, records))

    def on_case_restored(self, case_id: str, records: list[RoundRecord]) -> None:
        self._case(case_id, records)  # cut off between its records and its curves

    def on_case_end(self, case: CaseEnd) -> None:
        self._case(case.case_id, case.records)

    def on_job_end(self, end: JobEnd) -> None:
        if end.records and not self._logged("dsc"):
            self.tracker.log_metrics(results.curve_rows(end.records, self.rounds, end.summary.metrics))


class JobFiles(CaseObserver):
    """The job folder's files, each kept as a run artifact too: `cases.csv` at the start; per case
    `rounds.csv` (every case so far, a local copy whatever MLflow does), `masks/<case>.nii.gz`, the slice
    pictures and, last, `records/<case>.json`; at the end `rounds.csv` and `curves.png`. A file the job folder
    cannot take (disk full, read-only) is a failure naming it, and the job goes on."""

    def __init__(self, tracker, out: Path, dataset, failures: Failures):
        self.tracker, self.out, self.dataset, self.failures = tracker, out, dataset, failures
        self.records: list[RoundRecord] = []

    def _local(self, case_id: str, write, *args):
        """`write(*args)`, or None when the job folder takes no file: recorded as a failure naming the path."""
        try:
            return write(*args)
        except OSError as exc:
            if exc.filename is None:  # not a file of ours (a connection to the tracking server, say)
                raise
            self.failures.add(case_id, "artifacts", f"cannot write {exc.filename}: {exc.strerror or exc}")
            return None

    def on_job_start(self, start: JobStart) -> None:
        self.tracker.log_artifact(cases_csv(self.out / "cases.csv", start.train, start.test))

    def on_case_restored(self, case_id: str, records: list[RoundRecord]) -> None:
        self.records += records

    def on_case_end(self, case: CaseEnd) -> None:
        cid = case.case_id
        self.records += case.records
        self._local(cid, results.rounds_csv, self.out / "rounds.csv", self.records)
        try:  # the curve is logged; a trouble with these files must not discard it
            mask = self.dataset.write_mask(case.volume, case.prediction, self.out / "masks" / f"{cid}.nii.gz")
            self.tracker.log_artifact(mask, "masks")
            if case.pictures is not None and case.pictures.is_dir():
                self.tracker.log_artifacts(case.pictures, f"pictures/{cid}")
        except Exception as exc:
            self.failures.add(cid, "artifacts", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        # last: the records mark the case done for a resume, once everything else of it is written
        self._local(cid, resume.save_case, self.tracker, self.out, cid, case.records)

    def on_job_end(self, end: JobEnd) -> None:
        def files() -> None:
            self.tracker.log_artifact(results.rounds_csv(self.out / "rounds.csv", end.records))
            if end.records:
                plot(self.out / "curves.png", end.records)
                self.tracker.log_artifact(self.out / "curves.png")

        self._local("job", files)


def keep_local(out: Path, records: list[RoundRecord]) -> str:
    """When the tracking store is lost: every finished case's records written to the job folder (as a
    resume reads them: `records/<case>.json`), with `rounds.csv` and `curves.png`; returns the line that
    says what is kept where."""
    folder = out.resolve()
    cases: dict[str, list[RoundRecord]] = {}
    for r in records:
        cases.setdefault(r.case_id, []).append(r)
    if not cases:
        return f"No held-out case had finished; the job folder is {folder}."
    try:
        for case_id, rounds in cases.items():
            resume.write_records(out, case_id, rounds)
        results.rounds_csv(out / "rounds.csv", records)
        plot(out / "curves.png", records)
    except OSError as exc:
        return f"The finished cases could not be kept in {folder} either ({exc})."
    return (
        f"Kept in {folder}: records/, rounds.csv and curves.png of the {len(cases)} finished case(s) "
        f"({', '.join(cases)})."
    )


def cases_csv(path: Path, train, test) -> Path:
    """One row per loaded case: its role, the intensity mapping actually used, spacing and label size, so
    what `auto` chose (and how each case was normalised) is in the run, not only in the cache."""
    header = [
        "case_id",
        "role",
        "intensity",
        "intensity_lo",
        "intensity_hi",
        "grid_spacing_mm",
        "label_voxels",
    ]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for role, volumes in (("train", train), ("held_out", test)):
            for v in volumes:
                i = v.meta.get("intensity", {})
                spacing = "x".join(f"{s:.3g}" for s in v.spacing)
                row = [
                    v.case_id,
                    role,
                    i.get("mode"),
                    i.get("lo"),
                    i.get("hi"),
                    spacing,
                    v.meta.get("label_voxels"),
                ]
                writer.writerow(row)
    return path


def plot(path: Path, records) -> None:
    from iunet_bench.analysis.plots import plot_curves

    curves = results.curves_by_case(records)
    mean = results.mean_curve(records)
    plot_curves(path, {f"mean of {len(curves)} cases": mean}, background=curves, ylim=(0, 1))
