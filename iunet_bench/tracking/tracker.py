"""Everything MLflow: the store, one run per job (children of a sweep's parent run), batched logging.

Contract (docs/reference/mlflow.md): params = the flattened resolved config; tags = sweep, git
commit, data fingerprint, device; metric `dsc` per round (step = round, mean over cases), `dsc/<case>`,
`hd95/<case>` and `nsd/<case>` per case, summary metrics, `loss` per fine-tuning step; artifacts = config,
CSV, plots, pictures, masks.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import Field, field_validator

from iunet_bench.core.runtime import in_multirun, job_overrides, sweep_dir
from iunet_bench.core.schema import Int, Schema, flatten
from iunet_bench.tracking.client import HTTP_BACKOFF_S, HTTP_RETRIES, HTTP_TIMEOUT_S, Client, Limits

PARENT_FILE = "mlflow_parent_run_id"
TRACKING_SCHEMES = (
    "sqlite:///",
    "file:",
    "http://",
    "https://",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
)


class TrackingConfig(Schema):
    """The `tracking` keys: where runs go and what they are called."""

    uri: str = Field(
        "sqlite:///runs/mlflow.db",
        description="MLflow tracking URI: `sqlite:///...`, `file:...`, a shared server `http://host:5000`, or a "
        "database URL",
    )
    experiment: str = Field("iunet_bench", min_length=1, description="MLflow experiment name")
    artifact_root: str | None = Field(
        "runs/mlartifacts",
        description="artifact location of a new experiment in a local store (a tracking server uses its own)",
    )
    run_name: str | None = Field(None, description="run name (null: method, layer subset and robot)")
    sweep: str | None = Field(None, description="sweep name, logged as the `sweep` tag (set by `+sweep=...`)")
    http_retries: Int = Field(
        HTTP_RETRIES,
        ge=0,
        le=10,
        description="retries of a request to a tracking server that does not answer, for this job's calls "
        "(MLflow's MLFLOW_HTTP_REQUEST_MAX_RETRIES); a lost server fails the job after about "
        "http_backoff_s * (2**http_retries - 2) s: 28 s by default",
    )
    http_backoff_s: Int = Field(
        HTTP_BACKOFF_S, ge=0, le=120, description="back-off between those retries: waits of 0, 2x, 4x, ... s"
    )
    http_timeout_s: Int = Field(
        HTTP_TIMEOUT_S, ge=1, description="seconds one request waits for a tracking server's answer"
    )
    claim_timeout_s: Int = Field(
        120,
        ge=0,
        description="seconds without a heartbeat (sent every 30 s) after which a run held by a job on another "
        "machine counts as abandoned and is resumed; 0: take a run over at once (its job is known dead)",
    )

    def limits(self, progress: bool = True) -> Limits:
        """The HTTP limits of this job's MLflow calls (`client.Limits`); progress: MLflow's download bars."""
        return Limits(self.http_retries, self.http_backoff_s, self.http_timeout_s, progress)

    @field_validator("uri")
    @classmethod
    def _scheme(cls, uri: str) -> str:
        if not uri.startswith(TRACKING_SCHEMES):
            raise ValueError(
                f"must start with one of {list(TRACKING_SCHEMES)} (e.g. sqlite:///runs/mlflow.db)"
            )
        return uri


def params(config: Mapping) -> dict[str, str]:
    """MLflow params: the flattened config, every value as text."""
    return {k: str(v) for k, v in flatten(config).items()}


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


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """For a tracking server (`http(s)://`): ConfigError naming `tracking.uri` unless an MLflow server answers
    its health check within `timeout` seconds. Called before any compute, so that a wrong address or a server
    that is down fails the job in seconds, not after MLflow's minutes of retries."""
    import urllib.error
    import urllib.request

    from iunet_bench.core.schema import ConfigError

    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (the user's own server)
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # a protected server: reachable, its credentials are MLflow's business
            return
        problem = f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, unknown host, bad URL
        problem = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
    raise ConfigError(
        [
            f"tracking.uri: no MLflow server answers at {uri} ({problem} from {url} within {timeout:g} s); "
            "start one (docs/how-to/clusters.md) or use a local store, e.g. "
            "tracking.uri=sqlite:///runs/mlflow.db"
        ]
    )


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")).absolute() if uri.startswith("sqlite:///") else None


def store_uri(uri: str) -> str:
    """The URI with a relative sqlite path made absolute (against the working directory): MLflow keeps
    one store per URI text in a process, so `sqlite:///runs/mlflow.db` from two working directories would
    otherwise reach the first one's file."""
    db = _sqlite_path(uri)
    return f"sqlite:///{db}" if db is not None else uri


def open_client(uri: str, limits: Limits | None = None) -> Client:
    """An MlflowClient on `uri`, its store created or upgraded safely, each of its calls under `limits`
    (`client.Client`; default: the `tracking.http_*` defaults).

    A fresh sqlite file gets its schema from the first process that opens it; two processes doing that at
    once corrupt it (half-migrated, every later job fails). So opening a sqlite store happens under a file
    lock beside the database (`<db>.lock`, the `filelock` package): the others wait and
    then find the schema complete (every open takes the lock: a few milliseconds once the schema exists). A
    store already left half-created is a ConfigError naming the file."""
    import mlflow
    from filelock import FileLock

    from iunet_bench.core.schema import ConfigError

    uri = store_uri(uri)
    db = _sqlite_path(uri)
    if db is None:
        check_reachable(uri)
        client = Client(mlflow.MlflowClient(uri), uri, limits)
        if uri.startswith(("http://", "https://")):
            try:
                client.search_experiments(max_results=1)
            except mlflow.exceptions.MlflowException as exc:
                if getattr(exc, "get_http_status_code", lambda: 0)() in (401, 403):
                    raise ConfigError(
                        [
                            f"tracking.uri: the MLflow server at {uri} refused this job's credentials: set "
                            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (docs/how-to/clusters.md)"
                        ]
                    ) from None
                raise
        return client
    db.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(db) + ".lock", timeout=300):
        try:
            client = Client(mlflow.MlflowClient(uri), uri, limits)
            client.search_experiments(max_results=1)  # builds the store: schema created or upgraded here
        except Exception as exc:
            raise ConfigError(
                [
                    f"tracking.uri: the MLflow store {db} cannot be opened ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:300]}); if an older version of this tool left it half-created, "
                    "move it away and run again, or point tracking.uri at another file"
                ]
            ) from None
    return client


# Marks the experiment as model training for MLflow 3's UI. MLflow 3.17's UI opens every experiment on its
# GenAI overview whatever this tag says (its "GenAI / Model training" switch decides), so a job prints
# links straight to the runs table and its charts (`ui_hint`).
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")


def prepare_store(uri: str, experiment: str, artifact_root: str | None = None, client=None) -> str:
    """Create the store and the experiment once (safe when parallel jobs start at once, see `open_client`);
    return the experiment id."""
    import mlflow

    client = client if client is not None else open_client(uri)
    mlflow.set_tracking_uri(store_uri(uri))
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        if found.tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:  # made by an older version, or by hand
            client.set_experiment_tag(found.experiment_id, *EXPERIMENT_KIND)
        return found.experiment_id
    location = None
    local = uri.startswith(("sqlite:", "file:"))  # a tracking server decides its own artifact store
    if artifact_root and local:
        Path(artifact_root).mkdir(parents=True, exist_ok=True)
        location = Path(artifact_root).resolve().as_uri()
    try:
        return client.create_experiment(experiment, artifact_location=location, tags=dict([EXPERIMENT_KIND]))
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
        reopen: str | None = None,
        client=None,
    ):
        """reopen: the id of an unfinished run to continue (resume) instead of creating one; client: an
        `open_client(uri)` already made (default: opened here)."""
        self.client = client if client is not None else open_client(uri)
        experiment_id = prepare_store(uri, experiment, artifact_root, self.client)
        tags = dict(tags or {})
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        if reopen is not None:
            self.client.update_run(reopen, status="RUNNING")
            self.run = self.client.get_run(reopen)
            self.run_id = reopen
            self.set_tags(tags)
        else:
            self.run = self.client.create_run(experiment_id, run_name=run_name, tags=tags)
            self.run_id = self.run.info.run_id
        self.experiment_id = experiment_id

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
        """Close the run. After its server was lost (`client.TrackingLost`): one quick try to close it as
        FAILED, and the lost error told how that went (a RUNNING run left behind is resumed all the same)."""
        lost = getattr(self.client, "lost", None)
        if lost is None:
            self.client.set_terminated(self.run_id, status)
        elif self.client.once("set_terminated", self.run_id, "FAILED"):
            lost.note(f"MLflow run {self.run_id} is closed as FAILED (the server answered again).")
        else:
            lost.note(
                f"MLflow run {self.run_id} stays RUNNING on the server (it could not be reached to close it)."
            )


def metric_key(name: str) -> str:
    """MLflow keys allow alphanumerics, _ - . / and space: map anything else to _."""
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


def sweep_name(tracking: TrackingConfig) -> str:
    """The `sweep` tag: the sweep file's name, "multirun" for an ad-hoc `-m`, "" for a single run."""
    if tracking.sweep:
        return tracking.sweep
    return "multirun" if in_multirun() else ""


def parent_run_id_for_job() -> str | None:
    """The sweep's parent run id when this job is part of a Hydra multirun, else None."""
    folder = sweep_dir()
    path = folder / PARENT_FILE if folder is not None else None
    return path.read_text(encoding="utf-8").strip() if path is not None and path.exists() else None


def record_failed_job(
    raw: Mapping,
    error: str,
    overrides: str | None = None,
    parent: str | None = None,
    sweep: str | None = None,
) -> None:
    """A FAILED run for a sweep job whose configuration is invalid, so the sweep shows it: logged where the
    job's `tracking` keys point if they are valid, else to the default store. `overrides`, `parent`, `sweep`:
    the job's, when it is recorded from outside its own process (default: this job's)."""
    from iunet_bench.core.schema import ConfigError, validate

    with contextlib.suppress(Exception):  # the job is failing already; tracking trouble must not hide why
        try:
            t = validate(TrackingConfig, raw.get("tracking") or {}, "tracking.")
        except ConfigError:
            t = TrackingConfig()
        tracker = Tracker(
            t.uri,
            t.experiment,
            t.artifact_root,
            run_name="invalid configuration",
            parent_run_id=parent_run_id_for_job() if parent is None else parent,
            tags={
                "sweep": sweep_name(t) if sweep is None else sweep,
                "kind": "job",
                "error": error[:5000],
                "job_overrides": job_overrides() if overrides is None else overrides,
            },
        )
        tracker.log_params(params(raw))
        tracker.end("FAILED")
