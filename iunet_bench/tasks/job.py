"""One benchmark job: data -> baseline -> robot-driven sessions on held-out cases -> MLflow.

    summary = run(config)          # config: a validated JobConfig (iunet_bench.tasks.config.load_config)

`prepare` (`prepare.JobSetup`) builds the pieces; this module runs the cases and hands their records to
`results` (pure aggregation) and `tracking` (logging). A case that fails is recorded and the others go on;
what is logged stays logged; a config or device problem raises ConfigError before any MLflow run exists.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from pathlib import Path

from iunet_bench.analysis import results
from iunet_bench.analysis.results import Summary
from iunet_bench.core.runtime import job_overrides, output_dir
from iunet_bench.tasks.config import JobConfig
from iunet_bench.tasks.prepare import JobSetup, prepare, show_progress
from iunet_bench.tracking import resume
from iunet_bench.tracking import tracker as tracking


class _Failures:
    """Failed cases, written to `failures.json` and the `failed_cases` tag as each one happens."""

    def __init__(self, tracker, out: Path):
        self.tracker, self.path, self.items = tracker, out / "failures.json", []

    def add(self, case_id: str, stage: str, error: str, trace: str = "") -> None:
        self.items.append({"case_id": case_id, "stage": stage, "error": error, "traceback": trace})
        with contextlib.suppress(Exception):  # a full disk or tracking trouble must not hide the error
            self.tracker.set_tags({"failed_cases": str(len(self.items))})
            self.path.write_text(json.dumps(self.items, indent=2), encoding="utf-8")
            self.tracker.log_artifact(self.path)


def run(config: JobConfig) -> Summary:
    """The whole job. Raises ConfigError before any compute (and before any MLflow run) on bad input.
    With `resume=true` a finished run of the same configuration is returned as it is, and an unfinished one
    is continued (see `iunet_bench.tracking.resume`)."""
    setup = prepare(config)
    out = output_dir()
    _, test_ids = setup.split
    t = config.tracking
    parent = tracking.parent_run_id_for_job()
    commit = tracking.git_commit()
    key = resume.run_key(config.params(), commit)
    client, previous = tracking.open_client(t.uri), None
    if config.resume:
        experiment_id = tracking.prepare_store(t.uri, t.experiment, t.artifact_root, client)
        found = resume.find_run(client, experiment_id, key, parent)
        previous = resume.load_previous(client, found) if found is not None else None
    if previous is not None and previous.finished:
        run_id = previous.run.info.run_id
        print(
            f"already finished as MLflow run {run_id}; nothing computed (resume=false runs it again)",
            file=sys.stderr,
        )
        records = [r for cid in test_ids for r in previous.cases.get(cid, [])]
        return _summary(records, config.session.rounds, [], config.protocol, run_id)
    tracker = tracking.Tracker(
        t.uri,
        t.experiment,
        t.artifact_root,
        run_name=config.run_name,
        parent_run_id=parent,
        tags={
            "sweep": tracking.sweep_name(t),
            "git_commit": commit,
            "run_key": key,
            "data_fingerprint": setup.dataset.fingerprint,
            "device": setup.device,
            "held_out_cases": ",".join(test_ids),
            "intensity": setup.dataset.preprocess_config.intensity,  # `auto` resolved
            "kind": "job",
            "job_overrides": job_overrides(),
        },
        reopen=previous.run.info.run_id if previous is not None else None,
        client=client,
    )
    status = "FAILED"
    try:
        if previous is None:
            tracker.log_params(tracking.params(config.params()))
        else:
            times = int(previous.run.data.tags.get("resumed", "0")) + 1
            tracker.set_tags({"resumed": str(times)})
            print(
                f"resuming MLflow run {tracker.run_id}: {len(previous.cases)} of {len(test_ids)} held-out cases "
                "already finished",
                file=sys.stderr,
            )
        (out / "config.yaml").write_text(_yaml(config.params()), encoding="utf-8")
        tracker.log_artifact(out / "config.yaml")
        summary = _run_cases(setup, tracker, out, previous)
        summary.run_id = tracker.run_id
        status = "FINISHED" if summary.curve else "FAILED"
        return summary
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from a scheduler (see __main__)
        status = "KILLED"
        raise
    finally:
        try:
            tracker.end(status)
        except Exception as exc:
            if status == "FINISHED":
                raise
            # already failing (often: the store went away); its own error is the one to see
            print(f"could not close MLflow run {tracker.run_id} as {status}: {exc}", file=sys.stderr)


def _yaml(tree: dict) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(tree))


def _run_cases(setup: JobSetup, tracker, out: Path, previous: resume.Previous | None = None) -> Summary:
    from tqdm.auto import tqdm

    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.tasks.cases import run_cases

    config, progress = setup.config, show_progress(setup.config)
    failures = _Failures(tracker, out)
    tracker.set_tags({"failed_cases": "0"})
    volumes = setup.volumes()
    for f in volumes.failures:
        failures.add(f.case_id, "load", f.error)
    if not volumes.train or not volumes.test:
        missing = "training" if not volumes.train else "held-out"
        tracker.set_tags({"error": f"no {missing} case could be loaded (see failures.json)"})
        return Summary("", [], {}, failures.items)

    tracker.log_artifact(_cases_csv(out / "cases.csv", volumes.train, volumes.test))

    bar = tqdm(total=config.train.steps, desc="baseline training", disable=not progress, leave=False)

    def on_step(p) -> None:  # train.baseline.Progress
        if bar.n == 0 and p.step:  # continued from a checkpoint
            bar.update(p.step)
        bar.update(1)
        bar.set_postfix(
            loss=f"{p.loss:.3f}", **({"val_dsc": f"{p.val_dsc:.3f}"} if p.val_dsc is not None else {})
        )

    baseline = setup.baseline(on_step)
    bar.close()
    tags = {"baseline_key": baseline.key, "baseline_cached": str(baseline.hit)}
    if baseline.stopped_at is not None:
        tags["baseline_stopped_at"] = str(baseline.stopped_at)  # early stopping
    if baseline.resumed_from is not None:
        tags["baseline_resumed_from"] = str(baseline.resumed_from)  # continued from a checkpoint
    tracker.set_tags(tags)
    if baseline.losses and not resume.logged_rounds(tracker.client, tracker.run_id, "train_loss"):
        tracker.log_metrics(("train_loss", v, i) for i, v in enumerate(baseline.losses))
        tracker.log_metrics(("train_val_dsc", v, int(s)) for s, v in baseline.validation)

    # Round 0 of every case comes from the baseline itself (refiners fine-tune their own copy).
    initial = {v.case_id: predict_mask(baseline.model, v.image) for v in volumes.test}
    records = []
    rounds, session = config.session.rounds, config.session
    done = previous.cases if previous is not None else {}
    todo = []
    for index, volume in enumerate(volumes.test):
        if volume.case_id in done:  # finished before an interruption: its records are the run's
            records += done[volume.case_id]
            case_key = tracking.metric_key(volume.case_id)
            if not resume.logged_rounds(tracker.client, tracker.run_id, results.case_metric("dsc", case_key)):
                tracker.log_metrics(results.case_rows(case_key, done[volume.case_id]))  # cut off in between
        else:
            todo.append((volume, out / "pictures" / volume.case_id if index < session.pictures else None))
    cases_bar = tqdm(total=len(todo), desc="cases", disable=not progress)
    for volume, result in run_cases(setup, todo, initial):
        cases_bar.update(1)
        cases_bar.set_postfix(case=volume.case_id)
        case_key = tracking.metric_key(volume.case_id)
        pictures = out / "pictures" / volume.case_id
        if result.records is None:
            failures.add(volume.case_id, "session", result.error, result.trace)
            continue
        case_records = result.records
        records += case_records
        # kept in the job folder as each case ends, whatever MLflow does (MLflow keeps it if the disk cannot)
        local = _write_local(failures, volume.case_id, results.rounds_csv, out / "rounds.csv", records)
        try:
            # first the records (they mark the case done for a resume), then the curves
            _write_local(
                failures, volume.case_id, resume.save_case, tracker, out, volume.case_id, case_records
            )
            tracker.log_metrics(results.case_rows(case_key, case_records))
        except Exception as exc:
            raise RuntimeError(
                f"tracking.uri {config.tracking.uri}: logging case {volume.case_id} failed "
                f"({type(exc).__name__}: {str(exc)[:300]}); the rounds of every finished case are kept in "
                f"{local or 'no local file either (see the failures above)'}"
            ) from exc
        try:  # the curve is logged; a trouble with its files must not discard it
            mask = setup.dataset.write_mask(
                volume, result.prediction, out / "masks" / f"{volume.case_id}.nii.gz"
            )
            tracker.log_artifact(mask, "masks")
            if pictures.is_dir():
                tracker.log_artifacts(pictures, f"pictures/{volume.case_id}")
        except Exception as exc:
            failures.add(volume.case_id, "artifacts", f"{type(exc).__name__}: {exc}", traceback.format_exc())

    cases_bar.close()

    def files() -> None:  # the job's own files, last: the curves and summary are in MLflow already
        tracker.log_artifact(results.rounds_csv(out / "rounds.csv", records))
        if records:
            _plot(out / "curves.png", records)
            tracker.log_artifact(out / "curves.png")

    summary = _summary(records, rounds, failures.items, config.protocol)
    if not records:
        _write_local(failures, "job", files)
        return summary
    if not resume.logged_rounds(tracker.client, tracker.run_id, "dsc"):  # a resumed run may have them
        tracker.log_metrics(results.curve_rows(records, rounds, summary.metrics))
    _write_local(failures, "job", files)
    return summary


def _write_local(failures: _Failures, case_id: str, write, *args):
    """`write(*args)`, or None when the job folder takes no file (disk full, read-only): recorded as a
    failure naming the path, and the job goes on (its results are in MLflow)."""
    try:
        return write(*args)
    except OSError as exc:
        if exc.filename is None:  # not a file of ours (a connection to the tracking server, say)
            raise
        failures.add(case_id, "artifacts", f"cannot write {exc.filename}: {exc.strerror or exc}")
        return None


def _summary(records, rounds: int, failures: list, protocol, run_id: str = "") -> Summary:
    if not records:
        return Summary(run_id, [], {}, failures)
    return Summary(
        run_id,
        results.mean_curve(records),
        results.summarise(records, protocol),
        failures,
        results.seconds_per_round(records, rounds),
        results.honesty_curves(records, rounds),
    )


def _cases_csv(path: Path, train, test) -> Path:
    """One row per loaded case: its role, the intensity mapping actually used, spacing and label size, so
    what `auto` chose (and how each case was normalised) is in the run, not only in the cache."""
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "case_id",
                "role",
                "intensity",
                "intensity_lo",
                "intensity_hi",
                "grid_spacing_mm",
                "label_voxels",
            ]
        )
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


def _plot(path: Path, records) -> None:
    from iunet_bench.analysis.plots import plot_curves

    curves = results.curves_by_case(records)
    mean = results.mean_curve(records)
    plot_curves(path, {f"mean of {len(curves)} cases": mean}, background=curves, ylim=(0, 1))
