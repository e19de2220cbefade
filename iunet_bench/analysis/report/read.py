"""Reading a report's runs back from MLflow: the job runs of a sweep (or of the experiment), their round
records, and the planned jobs of the sweep that have no run."""

from __future__ import annotations

from pathlib import Path

from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.analysis.report.runs import RunData


def select_runs(client, experiment: str, sweep: str | None = None, parent: str | None = None):
    """(job runs of one sweep (its latest parent run when only the sweep name is given) or of the
    experiment, the parent run or None).

    A sweep with no parent run is a set of single jobs given one name (`tracking.sweep=NAME`, e.g. one
    job per model or fold started by hand): its job runs are the sweep, with no parent."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        raise ReportError(f"report: no MLflow experiment named {experiment!r} in this store")
    ids = [exp.experiment_id]
    query = "tags.kind = 'job'"
    if sweep and not parent:
        parents = client.search_runs(
            ids,
            f"tags.kind = 'sweep' and tags.sweep = '{sweep}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if parents:
            parent = parents[0].info.run_id
        else:  # jobs started one by one under one name
            query += f" and tags.sweep = '{sweep}'"
    if parent:
        query = f"tags.mlflow.parentRunId = '{parent}'"
    runs = client.search_runs(ids, query, order_by=["attributes.start_time ASC"])
    if sweep and not parent and not runs:
        raise ReportError(
            f"report: no sweep named {sweep!r} (tag `sweep`, from `+sweep=` or `tracking.sweep=`) "
            f"in experiment {experiment!r}"
        )
    return runs, (client.get_run(parent) if parent else None)


def read_run(client, run) -> RunData:
    from iunet_bench.tracking.resume import load_previous

    cases = load_previous(client, run).cases
    expected = [c for c in run.data.tags.get("held_out_cases", "").split(",") if c]
    order = expected + sorted(c for c in cases if c not in expected)
    records = [rec for c in order if c in cases for rec in cases[c]]
    return RunData(
        run.info.run_id,
        run.info.run_name or run.info.run_id[:8],
        dict(run.data.params),
        records,
        run.info.status,
        run.data.tags.get("failed_cases", "?"),
        expected,
    )


def missing_jobs(client, parent) -> list[str]:
    """The sweep's planned jobs (the parent's `jobs.json` artifact) that have no run."""
    import json
    import tempfile

    if parent is None:
        return []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            planned = json.loads(
                Path(client.download_artifacts(parent.info.run_id, "jobs.json", tmp)).read_text()
            )
    except Exception:  # an older sweep without the plan: nothing to compare with
        return []
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    started = {r.data.tags.get("job_overrides") for r in children}
    return [" ".join(job) or "(no overrides)" for job in planned if " ".join(job) not in started]
