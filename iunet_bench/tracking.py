"""Everything MLflow: the store, one run per job (children of a sweep's parent run), batched logging.

Contract (see README, "What MLflow holds"): params = the flattened resolved config; tags = sweep, git
commit, data fingerprint, device; metric `dsc` per round (step = round, mean over cases), `dsc.<case>`
per case, summary metrics, `loss` per fine-tuning step; artifacts = config, CSV, plots, pictures, masks.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

PARENT_FILE = "mlflow_parent_run_id"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """{'a': {'b': 1}} -> {'a.b': '1'}; lists become their string form."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = str(value)
    return out


def git_commit() -> str:
    try:
        root = Path(__file__).resolve().parents[1]
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return (
            sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
            if sha.returncode == 0
            else "unknown"
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def prepare_store(uri: str, experiment: str, artifact_root: str | None = None) -> str:
    """Create the store and the experiment once (before parallel jobs start); return the experiment id."""
    import mlflow

    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = None
    local = uri.startswith(("sqlite:", "file:"))  # a tracking server decides its own artifact store
    if artifact_root and local:
        Path(artifact_root).mkdir(parents=True, exist_ok=True)
        location = Path(artifact_root).resolve().as_uri()
    try:
        return client.create_experiment(experiment, artifact_location=location)
    except Exception:  # another process created it first
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


class Tracker:
    """One MLflow run. Metrics are logged in batches (one call per case), never one call per value."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        artifact_root: str | None,
        run_name: str | None = None,
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ):
        import mlflow

        self.client = mlflow.MlflowClient(uri)
        experiment_id = prepare_store(uri, experiment, artifact_root)
        tags = dict(tags or {})
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        self.run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
        self.run_id = self.run.info.run_id

    def log_params(self, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, rows: Iterable[tuple[str, float, int]]) -> None:
        """rows of (key, value, step), sent in batches of 1000."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, int(s)) for k, v, s in rows]
        for i in range(0, len(items), 1000):
            self.client.log_batch(self.run_id, metrics=items[i : i + 1000])

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)


def metric_key(name: str) -> str:
    """MLflow keys allow alphanumerics, _ - . / and space: map anything else to _."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


def sweep_name(cfg) -> str:
    """The `sweep` tag: the sweep file's name, "multirun" for an ad-hoc `-m`, "" for a single run."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if cfg.tracking.sweep:
        return str(cfg.tracking.sweep)
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return "multirun"
    return ""


def tracking_settings(cfg) -> tuple[str, str, str | None]:
    t = cfg.tracking
    return str(t.uri), str(t.experiment), (str(t.artifact_root) if t.artifact_root else None)


def _sweep_parent_file(cfg) -> Path:
    return Path(str(cfg.hydra.sweep.dir)) / PARENT_FILE


class SweepCallback(Callback):
    """Hydra callback: before a multirun's jobs start, create the MLflow store and the sweep's parent run.

    Runs in the launching process, so parallel jobs (joblib, submitit, Ray) never race to create the
    sqlite schema. The parent run id goes to a file in the sweep folder, where every job finds it.
    """

    def on_multirun_start(self, config, **kwargs) -> None:
        import atexit

        uri, experiment, artifacts = tracking_settings(config)
        sweep = str(config.tracking.sweep or "multirun")
        tracker = Tracker(
            uri,
            experiment,
            artifacts,
            run_name=f"{sweep} {time.strftime('%Y-%m-%d %H:%M:%S')}",
            tags={"sweep": sweep, "git_commit": git_commit(), "kind": "sweep"},
        )
        path = _sweep_parent_file(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tracker.run_id, encoding="utf-8")
        # If the launcher dies before on_multirun_end, the parent must not stay RUNNING for ever.
        atexit.register(_close_if_running, uri, tracker.run_id)

    def on_multirun_end(self, config, **kwargs) -> None:
        import mlflow

        path = _sweep_parent_file(config)
        if not path.exists():
            return
        uri, _, _ = tracking_settings(config)
        client = mlflow.MlflowClient(uri)
        parent = path.read_text(encoding="utf-8").strip()
        children = client.search_runs(
            [client.get_run(parent).info.experiment_id], f"tags.mlflow.parentRunId = '{parent}'"
        )
        finished = [r for r in children if r.info.status == "FINISHED"]
        try:  # the comparison table and curves go to the parent run; a failure here loses no job's data
            from iunet_bench.report import report

            folder = Path(str(config.hydra.sweep.dir)) / "report"
            print(report(uri, str(config.tracking.experiment), None, parent, folder))
            client.log_artifacts(parent, str(folder), "report")
        except (SystemExit, Exception) as exc:  # noqa: BLE001
            print(f"sweep report not written: {exc}")
        client.set_tag(parent, "failed_jobs", str(len(children) - len(finished)))
        client.set_terminated(parent, "FINISHED" if finished else "FAILED")


def _close_if_running(uri: str, run_id: str) -> None:
    import mlflow

    with contextlib.suppress(Exception):
        client = mlflow.MlflowClient(uri)
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_terminated(run_id, "FAILED")


def parent_run_id_for_job() -> str | None:
    """The sweep's parent run id when this job is part of a Hydra multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    path = Path(hc.sweep.dir) / PARENT_FILE
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def record_failed_job(cfg, error: str) -> None:
    """A FAILED run for a sweep job that could not start (e.g. a bad value), so the sweep shows it."""
    from omegaconf import OmegaConf

    with contextlib.suppress(Exception):  # the job is failing already; tracking trouble must not hide why
        uri, experiment, artifacts = tracking_settings(cfg)
        tracker = Tracker(
            uri,
            experiment,
            artifacts,
            run_name="invalid configuration",
            parent_run_id=parent_run_id_for_job(),
            tags={"sweep": sweep_name(cfg), "kind": "job", "error": error[:5000]},
        )
        tracker.log_params(flatten(OmegaConf.to_container(cfg, resolve=False)))
        tracker.end("FAILED")
