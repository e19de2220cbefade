"""Scale-out as on a cluster, here on loopback, in CI: the same two-job sweep through Hydra's basic launcher, through
submitit's (`submitit_local`, the local twin of `submitit_slurm`) against a real `mlflow server` (basic auth
on), and through the project's Ray launcher (`hydra/launcher=ray`) on a one-node Ray cluster the test starts
and stops; each ends with the basic launcher's per-case curves, exactly."""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pytest
from filelock import FileLock

from iunet_bench.core.schema import ConfigError
from iunet_bench.tracking import tracker as tracking
from tests.conftest import _SESSION_CACHE, run_cli, shared_train_cache

# The sweep of every launcher test: two jobs (two layer subsets), one round on the smoke phantoms' two
# held-out cases each, through the session's shared baseline.
SWEEP = (
    "-m",
    "experiment=smoke",
    "session.rounds=1",
    "session.pictures=0",
    "interact.trainable=[head],[bottleneck]",
    shared_train_cache(),
)
SUBSETS = ["['bottleneck']", "['head']"]


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all held open while they are picked)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def start_server(folder, *extra, env=None):
    """A real `mlflow server` on a free loopback port, once its health check answers: (process, uri)."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination", str(folder / "server-artifacts"), "--workers", "1", *extra,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=folder,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                if r.status == 200:
                    return server, uri
        except OSError:
            pass
        if server.poll() is not None or time.time() > deadline:
            server.kill()
            pytest.fail(f"mlflow server did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.5)


def stop(server) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def curves(client) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """Every job's per-case DSC curves, by layer subset: {subset: {case: [(round, dsc), ...]}}."""
    experiment = client.get_experiment_by_name("iunet_bench")
    jobs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("kind") == "job"]
    return {
        job.data.params["interact.trainable"]: {
            case: sorted((m.step, m.value) for m in client.get_metric_history(job.info.run_id, f"dsc/{case}"))
            for case in job.data.tags["held_out_cases"].split(",")
        }
        for job in jobs
    }


def basic_curves() -> dict:
    """The sweep's curves through Hydra's basic launcher (the jobs one after another in one process): run
    once per test session, under a lock, whichever launcher test asks first (pytest-xdist workers share the
    session's folder), and kept as JSON (Python's floats round-trip through it exactly)."""
    path = _SESSION_CACHE / "basic-launcher-curves.json"
    with FileLock(f"{path}.lock"):
        if not path.exists():
            folder = Path(tempfile.mkdtemp(prefix="basic-", dir=_SESSION_CACHE))
            proc = run_cli(*SWEEP, cwd=folder)
            assert proc.returncode == 0, proc.stderr[-3000:]
            found = curves(mlflow.MlflowClient(f"sqlite:///{folder / 'runs' / 'mlflow.db'}"))
            path.write_text(json.dumps(found), encoding="utf-8")
    found = json.loads(path.read_text(encoding="utf-8"))
    return {
        subset: {case: [tuple(p) for p in c] for case, c in per_case.items()}
        for subset, per_case in found.items()
    }


@pytest.mark.slow
def test_a_submitit_sweep_against_a_protected_tracking_server_ends_with_the_basic_launchers_curves(
    tmp_path, monkeypatch
):
    """The shape of a cluster study: jobs in their own processes, one shared server behind MLflow's
    basic-auth app. An unauthenticated request is refused; a job without credentials is told what to set;
    with them, every run, curve and artifact of the sweep arrives, the curves those of the basic launcher."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs hydra-submitit-launcher (dev)")
    pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth] (the dev extra)")
    password = "a-Long-test-passw0rd"
    env = {"MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only"}
    server, uri = start_server(tmp_path, "--app-name", "basic-auth", env=env)
    try:
        search = f"{uri}/api/2.0/mlflow/experiments/search?max_results=1"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(search, timeout=10)
        assert refused.value.code == 401
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        with pytest.raises(ConfigError, match="MLFLOW_TRACKING_USERNAME"):
            tracking.open_client(uri)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")  # the jobs inherit the environment
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        proc = run_cli(
            *SWEEP,
            f"tracking.uri={uri}",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        client = mlflow.MlflowClient(uri)
        check_sweep(client, SUBSETS)
        assert curves(client) == basic_curves()
    finally:
        stop(server)


def check_sweep(client, subsets: list[str]) -> None:
    """The sweep of these tests arrived whole: a FINISHED parent, a FINISHED child per layer subset under
    it, each case's curve once per round, every artifact."""
    experiment = client.get_experiment_by_name("iunet_bench")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("kind") == "job"]
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_jobs"] == "0"
    assert sorted(c.data.params["interact.trainable"] for c in children) == subsets
    for child in children:
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        cases = child.data.tags["held_out_cases"].split(",")
        for case in cases:  # every curve arrived, each point once
            assert [m.step for m in client.get_metric_history(child.info.run_id, f"dsc/{case}")] == [0, 1]
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"config.yaml", "rounds.csv", "cases.csv", "curves.png", "masks", "records"} <= artifacts
        records = {a.path for a in client.list_artifacts(child.info.run_id, "records")}
        assert records == {f"records/{c}.json" for c in cases}
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "report/report.csv" in report


# A Ray cluster on loopback only: on Linux Ray replaces 127.0.0.1 with the machine's network address unless
# it runs as on a laptop (a single-node cluster, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0); its own token (not
# ~/.ray's); no usage statistics sent.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "token",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def session_processes(sid: int) -> list[int]:
    """The processes of session `sid` (Linux: the sixth field of /proc/PID/stat)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[3]) == sid:
                pids.append(int(stat.parent.name))
    return pids


def stop_session(head: subprocess.Popen, grace: float = 5) -> None:
    """End the session the test started for `ray start` (Ray's daemons, and its workers, each in a process
    group of its own) by its processes' ids: SIGTERM, then after `grace` seconds SIGKILL (Ray's GCS server
    and autoscaler monitor outlive SIGTERM by more than 12 s); never `ray stop`, which ends every Ray
    process of the user on the machine. Raises if any outlives SIGKILL."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        for pid in session_processes(head.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.time() + wait
        while time.time() < deadline:
            head.poll()  # reap our own child, or its zombie would count
            if not session_processes(head.pid):
                return
            time.sleep(0.2)
    raise AssertionError(f"Ray processes {session_processes(head.pid)} outlived SIGKILL")


@contextlib.contextmanager
def ray_cluster(monkeypatch):
    """A one-node Ray cluster (`ray start --head`, 2 CPUs, no dashboard) on free loopback ports, in its
    own session and temporary folder, both removed afterwards whatever happened; yields its address
    and folder. Its environment goes to the test's own processes too (monkeypatch), so the sweep can join."""
    for key, value in {**RAY_ENV, "RAY_AUTH_TOKEN": secrets.token_hex(32)}.items():
        monkeypatch.setenv(key, value)
    port, client, dashboard, agent = free_ports(4)  # Ray's fixed defaults would collide
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths live under it (108 bytes)
    head = subprocess.Popen(
        [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--port={port}",
            "--node-ip-address=127.0.0.1", "--num-cpus=2", "--include-dashboard=false",
            f"--ray-client-server-port={client}", f"--dashboard-port={dashboard}",
            f"--dashboard-agent-listen-port={agent}", "--disable-usage-stats", f"--temp-dir={temp}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=temp,  # not the sweep's folder: the launcher must take the jobs there itself
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        start_new_session=True,  # its daemons and workers stay in this session, which the test ends
    )  # fmt: skip
    try:
        out, _ = head.communicate(timeout=240)  # returns once the node is up, its daemons still running
        assert head.returncode == 0, f"ray start failed: {out[-3000:]}"
        yield f"127.0.0.1:{port}", Path(temp)
    finally:
        stop_session(head)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_a_ray_sweep_on_a_loopback_ray_cluster_ends_with_the_basic_launchers_curves(tmp_path, monkeypatch):
    """`hydra/launcher=ray` joins a running cluster (`hydra.launcher.ray.init.address`), its jobs run as
    Ray tasks in the cluster's worker processes, started elsewhere, yet write into the sweep's folder and
    store, and the sweep ends with the curves of the basic launcher. The cluster's processes are gone after."""
    pytest.importorskip("ray", reason="needs Ray (the cluster extra: pip install -e '.[cluster]')")
    with ray_cluster(monkeypatch) as (address, folder):
        proc = run_cli(
            *SWEEP, "hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}", cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        # the jobs ran in this cluster's workers: their output is in its worker logs
        worker_logs = "".join(
            p.read_text(errors="replace") for p in folder.glob("session_*/logs/worker-*.out")
        )
    assert not folder.exists()
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    check_sweep(client, SUBSETS)
    experiment = client.get_experiment_by_name("iunet_bench")
    jobs = [r for r in client.search_runs([experiment.experiment_id]) if r.data.tags.get("kind") == "job"]
    assert all(f"MLflow run {job.info.run_id}." in worker_logs for job in jobs)
    assert curves(client) == basic_curves()


# A Hydra app of two jobs: the first kills its own Ray worker process at once (as a lost node would), the
# second writes a file a few seconds later
CRASHING_APP = """
import os
import time
from pathlib import Path
import hydra

@hydra.main(version_base="1.3", config_path=None, config_name=None)
def main(cfg):
    if cfg.crash:
        os._exit(3)
    time.sleep(4)  # still running when the first job dies: a launcher that gave up then would lose it
    Path("survivor.txt").write_text(str(cfg.crash))

main()
"""


@pytest.mark.slow
def test_a_job_whose_ray_task_dies_fails_the_sweep_after_the_other_jobs_ran(tmp_path, monkeypatch):
    """The Ray launcher waits for every job before it reports a task that died (Ray's retries off): the
    surviving job's output is there, and the sweep fails naming Ray's error, not with a hang or silence."""
    pytest.importorskip("ray", reason="needs Ray (the cluster extra: pip install -e '.[cluster]')")
    (tmp_path / "app.py").write_text(CRASHING_APP, encoding="utf-8")
    with ray_cluster(monkeypatch) as (address, _):
        proc = subprocess.run(
            [
                sys.executable, "app.py", "-m", "+crash=true,false", "hydra/launcher=ray",
                f"hydra.searchpath=[file://{Path(__file__).resolve().parents[1] / 'conf'}]",
                f"hydra.launcher.ray.init.address={address}", "+hydra.launcher.ray.remote.max_retries=0",
                "hydra.sweep.dir=sweep",
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "WorkerCrashedError" in proc.stderr or "worker died" in proc.stderr.lower(), proc.stderr[-3000:]
    assert (tmp_path / "survivor.txt").read_text() == "False"
