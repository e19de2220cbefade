"""One benchmark job: data -> baseline -> robot-driven sessions on held-out cases -> MLflow.

    summary = run(config)          # config: a validated JobConfig (iunet_bench.tasks.config.load_config)

`prepare` (`prepare.JobSetup`) builds the pieces; this module opens (or, resuming, reopens) the MLflow run
and runs the case loop, which only produces events: the observers of `callbacks` log them to MLflow, write
the job folder's files, draw the progress bars and record the failures. A case that fails is recorded and
the others go on; what is logged stays logged; a config or device problem raises ConfigError before any
MLflow run exists. A job holds a claim on its run (`tracking.claim`): the same configuration running
elsewhere stops this one with `RunClaimed`. A server lost midway raises `TrackingLost`, after the job folder
has kept every finished case and the run was closed where the server answers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from iunet_bench.analysis import results
from iunet_bench.analysis.results import Summary
from iunet_bench.core.runtime import job_overrides, output_dir
from iunet_bench.tasks.callbacks import (
    CaseEnd,
    CaseProgress,
    Failures,
    JobEnd,
    JobFiles,
    JobStart,
    MlflowLogger,
    Observers,
    keep_local,
)
from iunet_bench.tasks.config import JobConfig
from iunet_bench.tasks.prepare import JobSetup, prepare, show_progress
from iunet_bench.tracking import resume
from iunet_bench.tracking import tracker as tracking
from iunet_bench.tracking.claim import Claim
from iunet_bench.tracking.client import TrackingLost


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
    client, previous = tracking.open_client(t.uri, t.limits(show_progress(config))), None
    claim = Claim(client, t.claim_timeout_s)  # one live job per run (`tracking.claim`)
    if config.resume:
        experiment_id = tracking.prepare_store(t.uri, t.experiment, t.artifact_root, client)
        found = resume.find_run(client, experiment_id, key, parent)
        if found is not None:
            claim.refuse_if_held(found)
        previous = resume.load_previous(client, found) if found is not None else None
    if previous is not None and previous.finished:
        run_id = previous.run.info.run_id
        print(
            f"already finished as MLflow run {run_id}; nothing computed (resume=false runs it again)",
            file=sys.stderr,
        )
        records = [r for cid in test_ids for r in previous.cases.get(cid, [])]
        return _summary(records, config.session.rounds, [], config.protocol, run_id)
    if previous is not None:
        claim.take(previous.run.info.run_id)
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
            **claim.tags(),
        },
        reopen=previous.run.info.run_id if previous is not None else None,
        client=client,
    )
    if previous is None and config.resume:
        claim.settle_new(tracker.run, tracker.experiment_id, key, parent)
    stop_claim = claim.keep_alive(tracker.run_id)
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
        stop_claim()
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
    failures = Failures(tracker, out)
    tracker.set_tags({"failed_cases": "0"})
    volumes = setup.volumes()
    for f in volumes.failures:
        failures.add(f.case_id, "load", f.error)
    if not volumes.train or not volumes.test:
        missing = "training" if not volumes.train else "held-out"
        tracker.set_tags({"error": f"no {missing} case could be loaded (see failures.json)"})
        return Summary("", [], {}, failures.items)
    done = previous.cases if previous is not None else {}
    observers = Observers(job_observers(setup, tracker, out, failures))
    return _case_loop(setup, volumes, done, observers, out, failures.items)


def job_observers(setup: JobSetup, tracker, out: Path, failures: Failures) -> list:
    """A job's observers, in the order they hear each event (see `callbacks`: the curves before the files)."""
    config = setup.config
    return [
        CaseProgress(show_progress(config), config.train.steps if setup.trains_baseline else 0),
        MlflowLogger(tracker, config.session.rounds),
        JobFiles(tracker, out, setup.dataset, failures),
        failures,
    ]


def _case_loop(
    setup: JobSetup, volumes, done: dict, observers: Observers, out: Path, failures: list
) -> Summary:
    """The held-out cases, as events for the observers (`iunet_bench.tasks.callbacks`); `done`: the records
    of the cases an earlier attempt of the run finished (resume)."""
    from iunet_bench.tasks.cases import run_cases

    config, test = setup.config, volumes.test
    pictures = [
        out / "pictures" / v.case_id if i < config.session.pictures else None for i, v in enumerate(test)
    ]
    todo = [(v, p) for v, p in zip(test, pictures) if v.case_id not in done]
    records = []
    try:
        observers.on_job_start(JobStart(volumes.train, test, [v.case_id for v, _ in todo]))
        initial = setup.initial_predictions(test, observers)  # the baseline's, or empty masks
        for v in test:
            if v.case_id in done:  # finished before an interruption: its records are the run's
                records += done[v.case_id]
                observers.on_case_restored(v.case_id, done[v.case_id])
        ran = run_cases(setup, todo, initial)
        for volume, folder in todo:
            observers.on_case_start(volume.case_id)
            _, result = next(ran)
            if result.records is None:
                observers.on_case_failed(volume.case_id, result.error, result.trace)
                continue
            records += result.records
            observers.on_case_end(CaseEnd(volume, result.records, result.prediction, folder))
        summary = _summary(records, config.session.rounds, failures, config.protocol)
        observers.on_job_end(JobEnd(summary, records))
    except TrackingLost as lost:  # the server went away: what was computed stays in the job folder
        lost.note(keep_local(out, records))
        raise
    return summary


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
