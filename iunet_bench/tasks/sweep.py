"""A Hydra multirun as one MLflow sweep: the parent run, created before any job, and the report at its end.

`conf/config.yaml` registers `SweepCallback`; each job finds the parent run through a file in the sweep
folder (`tracking.tracker.parent_run_id_for_job`). Each job's folder is named by `job_folder` (the resolver
`iunet_bench.job_folder`, registered when this module is imported: by `__main__`, and by Hydra wherever it
unpickles this callback, so in a launcher's worker processes too).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import sys
import time
from pathlib import Path

from hydra.errors import ConfigCompositionException, OverrideParseException, SearchPathException
from hydra.experimental.callback import Callback

from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.tracking.client import Client
from iunet_bench.tracking.tracker import PARENT_FILE, Tracker, TrackingConfig, git_commit, store_uri

STATUS_DIR = "jobs"  # <sweep folder>/jobs/<job number>.json: each job's overrides and outcome
JOB_FOLDER = "iunet_bench.job_folder"  # conf/config.yaml: hydra.sweep.subdir


def job_folder(num, overrides: str) -> str:
    """A sweep job's folder name: its number and a short hash of its overrides (`hydra.job.override_dirname`,
    which leaves out the keys that do not change the result). Short whatever the overrides (a name past 255
    bytes cannot be made), one folder whatever their values (a path value nests none), the same for the same
    overrides. The overrides themselves are in the job's `.hydra/overrides.yaml` and its run's
    `job_overrides` tag."""
    return f"{num}_{hashlib.sha256(str(overrides).encode()).hexdigest()[:8]}"


def _register_resolver() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(JOB_FOLDER):
        OmegaConf.register_new_resolver(JOB_FOLDER, job_folder)


_register_resolver()


def _write_status(hydra_cfg, status: str, error: str = "", configuration: bool = False) -> None:
    overrides = [str(o) for o in hydra_cfg.overrides.task]
    _write_status_file(
        Path(str(hydra_cfg.sweep.dir)), hydra_cfg.job.num, overrides, status, error, configuration
    )


def _write_status_file(
    folder: Path, num: int, overrides: list[str], status: str, error: str, configuration: bool
) -> None:
    path = folder / STATUS_DIR / f"{num}.json"
    entry = {"overrides": " ".join(overrides), "status": status, "error": error[:5000]}
    if configuration:
        entry["configuration"] = True
    with contextlib.suppress(OSError):  # the job's own error matters more than its status file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(entry), encoding="utf-8")


def write_job_status(status: str, error: str = "", configuration: bool = False) -> None:
    """This sweep job's outcome (FINISHED or FAILED, with the error; `configuration`: it failed on its
    configuration), for the launching process to count whatever the launcher (the sweep folder is shared:
    local processes, or a cluster's shared disk)."""
    from hydra.core.hydra_config import HydraConfig

    _write_status(HydraConfig.get(), status, error, configuration)


def _statuses(sweep_folder: Path) -> list[tuple[str, dict]]:
    """(job number, status entry) of the sweep's jobs, by number; an unreadable file is a FAILED entry."""
    out = []
    paths = sorted(Path(sweep_folder, STATUS_DIR).glob("*.json"), key=lambda p: int(p.stem))
    for path in paths:
        try:
            out.append((path.stem, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            out.append((path.stem, {"status": "FAILED", "error": f"unreadable status file {path}"}))
    return out


def failed_jobs(sweep_folder: Path) -> list[tuple[str, str]]:
    """(job number and overrides, error) of the sweep's jobs that did not finish: a FAILED status, or still
    STARTED (the job was killed, or its process died before it could say)."""
    out = []
    for num, status in _statuses(sweep_folder):
        if status.get("status") == "FINISHED":
            continue
        error = status.get("error") or "the job was killed or its process died before it finished"
        name = f"job {num} ({status['overrides']})" if "overrides" in status else f"job {num}"
        out.append((name, str(error)))
    return out


def gist(error: str) -> str:
    """An error in one line, for the sweep's closing list of failed jobs: its first line, and its first item
    when that line only introduces a list (a configuration's several problems)."""
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}" + (f" (+{len(lines) - 2} more)" if len(lines) > 2 else "")
    return lines[0] if lines else ""


def exit_status(sweep_folder: Path) -> int:
    """What the launching process exits with: 2 when a job failed on its configuration (configuration
    errors exit 2, as a single job's do), 1 when any other did not finish, else 0."""
    unfinished = [s for _, s in _statuses(sweep_folder) if s.get("status") != "FINISHED"]
    if any(s.get("configuration") for s in unfinished):
        return 2
    return 1 if unfinished else 0


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
    process with exit status 2 if one failed on its configuration, else 1 (`exit_status`; Hydra returns
    nothing from a multirun, so this is where the count is).
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
        folder = Path(str(config.hydra.sweep.dir))
        failed = failed_jobs(folder)
        if failed:
            lines = [f"  {name}: {gist(error)}" for name, error in failed]
            print(f"\n{len(failed)} sweep job(s) failed:", *lines, sep="\n", file=sys.stderr)
        # the status files count this invocation's jobs (a resumed parent also holds earlier attempts)
        counted = any(Path(folder, STATUS_DIR).glob("*.json"))
        client.set_tag(parent, "failed_jobs", str(len(failed) if counted else len(children) - len(finished)))
        client.set_terminated(parent, "FINISHED" if finished else "FAILED")
        if failed:  # the launching process exits 2 or 1, so CI and schedulers see a sweep whose jobs failed
            raise SystemExit(exit_status(folder))


def close_if_running(uri: str, run_id: str) -> None:
    import mlflow

    with contextlib.suppress(Exception):
        client = Client(mlflow.MlflowClient(store_uri(uri)), uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "FAILED")


# Hydra's own configuration errors: an override it cannot parse, a group option or key it cannot compose
HYDRA_CONFIG_ERRORS = (OverrideParseException, ConfigCompositionException, SearchPathException)


class ComposableJobs:
    """A sweep's launcher, handed only the jobs Hydra can compose (`hydra_plugins.iunet_bench_sweeper`).

    Hydra's basic sweeper composes every job of a batch before launching any, and one value Hydra rejects
    (`simulator=no_such_robot`) would end the sweep with the valid jobs not run. Here each job is composed
    first; one that Hydra rejects is recorded (`record_rejected_job`: a FAILED child run and a status file,
    as for a value the schema refuses) and the others go to the launcher, with their planned job numbers
    (a run of consecutive composable jobs per `launch`, so a launcher's parallel batch is split only where
    a job was rejected)."""

    def __init__(self, launcher, config_loader, config):
        self.launcher, self.config_loader, self.config = launcher, config_loader, config

    def launch(self, job_overrides, initial_job_idx: int):
        rejected = set()
        for i, overrides in enumerate(job_overrides):
            try:
                self.config_loader.load_sweep_config(self.config, list(overrides))
            except HYDRA_CONFIG_ERRORS as exc:
                rejected.add(i)
                record_rejected_job(self.config, initial_job_idx + i, [str(o) for o in overrides], str(exc))
        results, start = [], 0
        for i in [*sorted(rejected), len(job_overrides)]:
            if i > start:
                results += self.launcher.launch(
                    job_overrides[start:i], initial_job_idx=initial_job_idx + start
                )
            start = i + 1
        return results


def record_rejected_job(config, num: int, overrides: list[str], error: str) -> None:
    """A sweep job Hydra could not compose, recorded from the launching process as a job whose values the
    schema refuses records itself (`__main__`): its status file (a configuration error) and a FAILED child
    run with the error, its overrides (tag `job_overrides`, params) and the sweep's tracking keys."""
    from omegaconf import OmegaConf

    from iunet_bench.tracking.tracker import record_failed_job

    text = f"configuration error: {error}"
    print(f"job {num} ({' '.join(overrides)}): {text}", file=sys.stderr)
    _write_status_file(Path(str(config.hydra.sweep.dir)), num, overrides, "FAILED", text, configuration=True)
    parent = _sweep_parent_file(config)
    values = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    tracking = OmegaConf.to_container(config.tracking, resolve=True)
    record_failed_job(
        {"tracking": tracking, **values},
        text,
        overrides=" ".join(overrides),
        parent=parent.read_text(encoding="utf-8").strip() if parent.exists() else "",
        sweep=_tracking_of(config).sweep or "multirun",
    )
