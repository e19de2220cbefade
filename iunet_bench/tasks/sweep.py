"""A Hydra multirun as one MLflow sweep: the parent run, created before any job, and the report at its end.

`conf/config.yaml` registers `SweepCallback`; each job finds the parent run through a file in the sweep
folder (`tracking.tracker.parent_run_id_for_job`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import sys
import time
from pathlib import Path

from hydra.experimental.callback import Callback

from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.tracking.client import Client
from iunet_bench.tracking.tracker import PARENT_FILE, Tracker, TrackingConfig, git_commit, store_uri

STATUS_DIR = "jobs"  # <sweep folder>/jobs/<job number>.json: each job's overrides and outcome


def _status_path(hydra_cfg) -> Path:
    return Path(str(hydra_cfg.sweep.dir)) / STATUS_DIR / f"{hydra_cfg.job.num}.json"


def _write_status(hydra_cfg, status: str, error: str = "") -> None:
    path = _status_path(hydra_cfg)
    overrides = " ".join(str(o) for o in hydra_cfg.overrides.task)
    with contextlib.suppress(OSError):  # the job's own error matters more than its status file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps({"overrides": overrides, "status": status, "error": error[:5000]}), encoding="utf-8"
        )


def write_job_status(status: str, error: str = "") -> None:
    """This sweep job's outcome (FINISHED or FAILED, with the error), for the launching process to count
    whatever the launcher (the sweep folder is shared: local processes, or a cluster's shared disk)."""
    from hydra.core.hydra_config import HydraConfig

    _write_status(HydraConfig.get(), status, error)


def failed_jobs(sweep_folder: Path) -> list[tuple[str, str]]:
    """(job number and overrides, error) of the sweep's jobs that did not finish: a FAILED status, or still
    STARTED (the job was killed, or its process died before it could say)."""
    out = []
    paths = sorted(Path(sweep_folder, STATUS_DIR).glob("*.json"), key=lambda p: int(p.stem))
    for path in paths:
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            out.append((f"job {path.stem}", f"unreadable status file {path}"))
            continue
        if status.get("status") == "FINISHED":
            continue
        error = status.get("error") or "the job was killed or its process died before it finished"
        out.append((f"job {path.stem} ({status.get('overrides', '')})", str(error)))
    return out


def _tracking_of(hydra_cfg) -> TrackingConfig:
    """The tracking keys of a composed Hydra config (the sweep callback sees the raw one): validated here
    too, so the parent run goes where the jobs' runs go."""
    from omegaconf import OmegaConf

    from iunet_bench.core.schema import validate

    return validate(TrackingConfig, OmegaConf.to_container(hydra_cfg.tracking, resolve=True), "tracking.")


def _sweep_parent_file(hydra_cfg) -> Path:
    return Path(str(hydra_cfg.hydra.sweep.dir)) / PARENT_FILE


def planned_jobs(config) -> list[list[str]]:
    """Every job's overrides, expanded from the sweep file's params and the command line as Hydra's basic
    sweeper expands them (its own `split_arguments`), in launch order."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()] + [str(o) for o in config.hydra.overrides.task]
    overrides = OverridesParser.create().parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]


class SweepCallback(Callback):
    """Hydra callback: before a multirun's jobs start, create the MLflow store and the sweep's parent run.

    Runs in the launching process, so parallel jobs (joblib, submitit, Ray) never race to create the
    sqlite schema. The parent run id goes to a file in the sweep folder, where every job finds it. At the
    end it reads the jobs' status files (`failed_jobs`) and, when any job failed, ends the launching
    process with exit status 1 (Hydra returns nothing from a multirun, so this is where the count is).
    """

    def on_job_start(self, config, **kwargs) -> None:
        """In the job's own process (any launcher): mark it started, so a job that dies is counted."""
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.get().mode == RunMode.MULTIRUN:
            _write_status(HydraConfig.get(), "STARTED")

    def on_multirun_start(self, config, **kwargs) -> None:
        """With `resume=true`, a sweep command run again (same overrides, same code) reuses its parent run,
        so its jobs find their own runs under it: finished ones are skipped, the others continued."""
        from iunet_bench.tracking.resume import sweep_key
        from iunet_bench.tracking.tracker import open_client, prepare_store

        t = _tracking_of(config)
        sweep = t.sweep or "multirun"
        commit = git_commit()
        key = sweep_key(sweep, [str(o) for o in config.hydra.overrides.task], commit)
        client = open_client(t.uri, t.limits())
        experiment_id = prepare_store(t.uri, t.experiment, t.artifact_root, client)
        earlier = []
        if bool(config.get("resume", True)):
            earlier = client.search_runs(
                [experiment_id],
                f"tags.sweep_key = '{key}' and tags.kind = 'sweep'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
        if earlier:
            run_id = earlier[0].info.run_id
            client.update_run(run_id, status="RUNNING")
            print(f"resuming sweep run {run_id} (resume=false starts a new one)", file=sys.stderr)
        else:
            run_id = Tracker(
                t.uri,
                t.experiment,
                t.artifact_root,
                run_name=f"{sweep} {time.strftime('%Y-%m-%d %H:%M:%S')}",
                tags={"sweep": sweep, "git_commit": commit, "kind": "sweep", "sweep_key": key},
                client=client,
            ).run_id
        path = _sweep_parent_file(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(run_id, encoding="utf-8")
        plan = path.parent / "jobs.json"  # the report names the planned jobs that have no run
        plan.write_text(json.dumps(planned_jobs(config)), encoding="utf-8")
        client.log_artifact(run_id, str(plan))
        # If the launcher dies before on_multirun_end, the parent must not stay RUNNING for ever.
        atexit.register(close_if_running, t.uri, run_id)

    def on_multirun_end(self, config, **kwargs) -> None:
        import mlflow

        path = _sweep_parent_file(config)
        if not path.exists():
            return
        t = _tracking_of(config)
        uri = t.uri
        client = Client(mlflow.MlflowClient(store_uri(uri)), uri, t.limits())
        parent = path.read_text(encoding="utf-8").strip()
        children = client.search_runs(
            [client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
        )
        finished = [r for r in children if r.info.status == "FINISHED"]
        try:  # the comparison table and curves go to the parent run; a failure here loses no job's data
            from iunet_bench.analysis.report.cli import report

            folder = Path(str(config.hydra.sweep.dir)) / "report"
            print(report(uri, t.experiment, None, parent, folder))
            client.log_artifacts(parent, str(folder), "report")
        except ReportError as exc:  # nothing to report on yet (no finished case)
            print(f"sweep report not written: {exc}")
        except Exception as exc:  # noqa: BLE001  any other failure is logged: a report never kills a sweep
            print(f"sweep report not written: {exc}")
        failed = failed_jobs(Path(str(config.hydra.sweep.dir)))
        if failed:
            lines = [f"  {name}: {error.splitlines()[0] if error else ''}" for name, error in failed]
            print(f"\n{len(failed)} sweep job(s) failed:", *lines, sep="\n", file=sys.stderr)
        # the status files count this invocation's jobs (a resumed parent also holds earlier attempts)
        counted = any(Path(str(config.hydra.sweep.dir), STATUS_DIR).glob("*.json"))
        client.set_tag(parent, "failed_jobs", str(len(failed) if counted else len(children) - len(finished)))
        client.set_terminated(parent, "FINISHED" if finished else "FAILED")
        if failed:  # the launching process exits 1, so CI and schedulers see a sweep whose jobs failed
            raise SystemExit(1)


def close_if_running(uri: str, run_id: str) -> None:
    import mlflow

    with contextlib.suppress(Exception):
        client = Client(mlflow.MlflowClient(store_uri(uri)), uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "FAILED")
