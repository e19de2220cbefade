"""Scale-out as on a cluster, here on loopback: a real `mlflow server` (basic auth on) in a subprocess, a sweep whose jobs
run as separate processes through Hydra's submitit launcher (`submitit_local`, the local twin of
`submitit_slurm`), everything checked afterwards over HTTP with MlflowClient."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import pytest

from iunet_bench.core.schema import ConfigError
from iunet_bench.tracking import tracker as tracking
from tests.conftest import run_cli, shared_train_cache

pytest.importorskip(
    "hydra_plugins.hydra_submitit_launcher", reason="needs the dev extra (hydra-submitit-launcher)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


@pytest.mark.slow
def test_a_submitit_sweep_against_a_protected_tracking_server_logs_every_run(tmp_path, monkeypatch):
    """The shape of a cluster study: jobs in their own processes, one shared server behind MLflow's
    basic-auth app. An unauthenticated request is refused; a job without credentials is told what to set;
    with them, every run, curve and artifact of the sweep arrives."""
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
            "-m",
            "experiment=smoke",
            "session.rounds=1",
            "session.pictures=0",
            "interact.trainable=[head]",  # one job: the sweep machinery is tested on sqlite elsewhere
            f"tracking.uri={uri}",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            shared_train_cache(),
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        check_sweep(mlflow.MlflowClient(uri), ["['head']"])
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


@pytest.mark.slow
def test_a_ray_sweep_on_a_local_ray_instance_logs_every_run(tmp_path):
    """`hydra/launcher=ray` (the `cluster` extra) on a local Ray instance. Skipped where the Ray launcher is
    not installed: it pins cloudpickle < 3, which the joblib launcher's joblib >= 1.6 refuses, so it lives
    in its own environment (README, "Several machines")."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="needs the cluster extra's Ray launcher")
    proc = run_cli(
        "-m",
        "experiment=smoke",
        "session.rounds=1",
        "session.pictures=0",
        "interact.trainable=[head],[bottleneck]",
        "hydra/launcher=ray",
        shared_train_cache(),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_sweep(
        mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"), ["['bottleneck']", "['head']"]
    )
