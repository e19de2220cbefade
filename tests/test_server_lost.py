"""A tracking server lost in the middle of a job (`iunet_bench.tracking.client`): the job gives up within its
retry budget (`tracking.http_*`) with one message, closes its run as FAILED if the server answers again,
keeps every finished case in its folder and says how to continue; the same command then resumes the run.
A real `mlflow server` on loopback, killed with SIGKILL."""

import contextlib
import csv
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import mlflow
import pytest

from iunet_bench.tasks import cases, job
from iunet_bench.tracking import resume
from iunet_bench.tracking.client import Client, Limits, TrackingLost
from iunet_bench.tracking.tracker import Tracker, open_client
from tests.conftest import ROOT, shared_data_cache, shared_train_cache
from tests.test_callbacks import ROUNDS, Dataset, Setup, histories, records_of, sessions  # noqa: F401

QUICK = Limits(retries=2, backoff_s=1, timeout_s=5, progress=False)  # gives up after about 3 s


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder, port: int | None = None):
    """A real `mlflow server` (its own process group, so that SIGKILL takes its workers too) on `port` (a
    free one by default), once its health check answers: (process, uri)."""
    port = port or free_port()
    server = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder / 'server.db'}",
            "--artifacts-destination", str(folder / "server-artifacts"), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=5) as r:
                if r.status == 200:
                    return server, uri
        except OSError:
            pass
        if server.poll() is not None or time.time() > deadline:
            kill(server)
            pytest.fail(f"mlflow server did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.5)


def kill(server) -> None:
    """SIGKILL to the server and its workers: the server is gone, as a lost node leaves it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)


def test_the_http_limits_hold_during_the_jobs_calls_only_and_a_dead_server_fails_once(monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "9")  # the user's own choice, for their own code
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    with Limits(retries=3, backoff_s=1, timeout_s=7, progress=False).applied():
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert (
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"
        and "MLFLOW_HTTP_REQUEST_TIMEOUT" not in os.environ
    )

    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens: a server that is gone
    client = Client(mlflow.MlflowClient(uri), uri, QUICK)
    caplog.set_level(logging.DEBUG)
    t0 = time.perf_counter()
    with pytest.raises(TrackingLost) as err:
        client.search_experiments()
    assert time.perf_counter() - t0 < QUICK.give_up_s + 5  # MLflow's defaults retry for minutes
    assert uri in str(err.value) and "Connection refused" in str(err.value)
    assert "gave up after 2 retries" in str(err.value) and "tracking.http_retries" in str(err.value)
    assert not [r for r in caplog.records if "Retrying" in r.getMessage()]  # no page of retry warnings
    t0 = time.perf_counter()
    with pytest.raises(TrackingLost):
        client.get_run("any")  # lost once, lost for every later call: no second retry budget
    assert time.perf_counter() - t0 < 0.5
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "9"


@pytest.mark.usefixtures("sessions")  # the stand-in sessions of test_callbacks: no training
def test_a_server_lost_midway_ends_the_job_in_its_budget_keeping_the_finished_cases_and_the_run_resumes(
    tmp_path, monkeypatch
):
    server, uri = start_server(tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    client = open_client(uri, QUICK)
    tracker = Tracker(uri, "lost", None, run_name="t", client=client)
    beside = Tracker(uri, "lost", None, run_name="beside", client=client)  # closed while the server is down
    out = tmp_path / "job"
    out.mkdir()
    staged = cases.run_cases  # the stand-in sessions (`sessions`)

    def server_dies_in_case_b(setup, todo, initial):
        for volume, result in staged(setup, todo, initial):
            if volume.case_id == "b":  # b is computed; its curves will not reach the server
                kill(server)
            yield volume, result

    monkeypatch.setattr(cases, "run_cases", server_dies_in_case_b)
    t0 = time.perf_counter()
    with pytest.raises(TrackingLost) as err:
        job._run_cases(Setup(uri, Dataset()), tracker, out)
    assert time.perf_counter() - t0 < QUICK.give_up_s + 10
    assert "Kept in" in str(err.value) and "2 finished case(s) (a, b)" in str(err.value)
    for case in ("a", "b"):  # what the job computed is in its folder, as a resume reads it
        kept = (out / "records" / f"{case}.json").read_text(encoding="utf-8")
        assert kept == resume.records_to_json(records_of(case))
    with (out / "rounds.csv").open(newline="", encoding="utf-8") as fh:
        assert sorted({row["case_id"] for row in csv.DictReader(fh)}) == ["a", "b"]
    assert (out / "curves.png").stat().st_size > 0
    t0 = time.perf_counter()
    beside.end("FAILED")
    assert time.perf_counter() - t0 < 6  # one attempt, no retries
    assert f"MLflow run {beside.run_id} stays RUNNING on the server" in str(err.value)

    monkeypatch.setattr(cases, "run_cases", staged)  # no more deaths
    server, _ = start_server(tmp_path, port)  # back, on the same address and store
    try:
        tracker.end("FAILED")  # one quick try on the way out: the server answers, the run is closed
        assert f"MLflow run {tracker.run_id} is closed as FAILED" in str(err.value)
        reader = open_client(uri)
        assert reader.get_run(tracker.run_id).info.status == "FAILED"
        assert reader.get_run(beside.run_id).info.status == "RUNNING"  # a resume reopens it all the same
        previous = resume.load_previous(reader, reader.get_run(tracker.run_id))
        assert set(previous.cases) == {"a"}  # b's records never reached the server: it is done again
        again = Tracker(uri, "lost", None, reopen=tracker.run_id, client=reader)
        (tmp_path / "again").mkdir()
        job._run_cases(Setup(uri, Dataset()), again, tmp_path / "again", previous)
        again.end()
        logged = histories(reader, tracker.run_id)
        for case in ("a", "b", "c"):
            assert [s for s, _ in logged[f"dsc/{case}"]] == list(range(ROUNDS + 1))
        assert reader.get_run(tracker.run_id).info.status == "FINISHED"
    finally:
        kill(server)


def test_reading_a_runs_records_draws_no_download_bar_with_progress_off(tmp_path, capfd):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    writer = open_client(uri)
    tracker = Tracker(uri, "bars", str(tmp_path / "art"), client=writer)
    for case in ("a", "b", "c"):
        resume.save_case(tracker, tmp_path, case, records_of(case))
    run = writer.get_run(tracker.run_id)
    capfd.readouterr()
    assert set(resume.load_previous(open_client(uri, QUICK), run).cases) == {"a", "b", "c"}
    assert "Downloading artifacts" not in capfd.readouterr().err
    resume.load_previous(open_client(uri, Limits(progress=True)), run)
    assert "Downloading artifacts" in capfd.readouterr().err  # MLflow's bar, when progress is on


@pytest.mark.slow
def test_a_job_whose_server_dies_fails_with_one_message_and_the_same_command_resumes_it(tmp_path):
    """The user's view: `python -m iunet_bench ... tracking.uri=http://...`, the server killed after the first
    case. The job ends within its budget with one message (no traceback, no retry warnings) naming what is
    kept and the command to run; run with the server back, that command finishes the same run."""
    server, uri = start_server(tmp_path)
    port = int(uri.rsplit(":", 1)[1])
    command = [
        "experiment=smoke", "progress=false", f"tracking.uri={uri}", "tracking.http_retries=2",
        "tracking.http_backoff_s=1", f"hydra.run.dir={tmp_path / 'job'}", shared_data_cache(),
        shared_train_cache(),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "iunet_bench", *command],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 600
    while not list((tmp_path / "server-artifacts").glob("**/records/*.json")):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.05)
    kill(server)
    t0 = time.perf_counter()
    _, err = proc.communicate(timeout=300)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 1, err[-3000:]
    assert seconds < Limits(2, 1).give_up_s + 30  # the budget, and the rest of the case it was in
    assert "Traceback" not in err and "Retrying" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) <= 6, err
    assert f"tracking.uri {uri}: the MLflow server stopped answering" in err
    assert "stays RUNNING on the server" in err and f"Kept in {tmp_path / 'job'}" in err
    again = err.split("this continues the run: ")[1].split()
    assert again[:3] == ["python", "-m", "iunet_bench"] and again[3:] == command

    server, _ = start_server(tmp_path, port)
    try:
        rerun = subprocess.run(
            [sys.executable, "-m", "iunet_bench", *again[3:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert "resuming MLflow run" in rerun.stderr and "Downloading artifacts" not in rerun.stderr
        assert "mlflow ui --backend-store-uri" not in rerun.stdout  # a server serves its own UI
        assert f"{uri}/#/experiments/" in rerun.stdout
        client = mlflow.MlflowClient(uri)
        (run,) = client.search_runs([client.get_experiment_by_name("iunet_bench").experiment_id])
        assert run.info.status == "FINISHED" and run.data.tags["resumed"] == "1"
        for key in [k for k in run.data.metrics if k.startswith("dsc/")]:
            assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1, 2, 3]
    finally:
        kill(server)
