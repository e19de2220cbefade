"""One live job per run (`iunet_bench.tracking.claim`): the same configuration started twice at once is
refused, not merged into one run; a killed job's run still resumes. The claims here are taken on a real
sqlite store, by this process, by threads racing, and by a process killed with SIGKILL; the last test runs
two real jobs at once."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import mlflow
import pytest

from iunet_bench.tracking import claim as claims
from iunet_bench.tracking.claim import Claim, RunClaimed
from iunet_bench.tracking.tracker import open_client, prepare_store
from tests.conftest import ROOT, shared_data_cache, shared_train_cache


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = open_client(uri)
    return uri, client, prepare_store(uri, "claims", str(tmp_path / "art"), client)


def another_job(client, timeout_s=120) -> Claim:
    """The claim of a live job in another process of this host (pytest's parent stands for it)."""
    return Claim(client, timeout_s, pid=os.getppid())


def new_run(client, experiment_id, claim, key="k"):
    return client.create_run(experiment_id, tags={"run_key": key, **claim.tags()})


def held_by(client, run_id) -> str:
    return json.loads(client.get_run(run_id).data.tags[claims.TAG])["token"]


def test_a_live_jobs_run_refuses_a_second_job_naming_the_holder_and_the_way_out(store):
    _, client, experiment_id = store
    run = new_run(client, experiment_id, another_job(client))
    second = Claim(client, 120)
    with pytest.raises(RunClaimed) as err:
        second.take(run.info.run_id)
    message = str(err.value)
    assert run.info.run_id in message and socket.gethostname() in message and f"pid {os.getppid()}" in message
    assert "tracking.claim_timeout_s=0" in message
    assert held_by(client, run.info.run_id) != second.token  # the holder keeps it
    client.set_terminated(run.info.run_id, "KILLED")  # a closed run holds nothing (Ctrl-C, a failed job)
    second.take(run.info.run_id)
    assert held_by(client, run.info.run_id) == second.token


def test_a_job_killed_with_sigkill_holds_nothing_so_its_run_resumes_at_once(store):
    uri, client, experiment_id = store
    holder = textwrap.dedent(
        """
        import os, signal, sys
        from iunet_bench.tracking.claim import Claim
        from iunet_bench.tracking.tracker import open_client
        client = open_client(sys.argv[1])
        run = client.create_run(sys.argv[2], tags={"run_key": "k", **Claim(client, 120).tags()})
        print(run.info.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", holder, uri, experiment_id],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run_id = proc.stdout.split()[0]
    assert client.get_run(run_id).info.status == "RUNNING"  # kill -9 closes nothing
    resumer = Claim(client, 120)
    resumer.take(run_id)  # no wait for a heartbeat to age: the holder's process is gone
    assert held_by(client, run_id) == resumer.token
    # a job restarted in the same container often gets its predecessor's pid (1 in a pod): not a rival
    client.set_tag(run_id, claims.TAG, another_job(client).tags()[claims.TAG])
    Claim(client, 120, pid=os.getppid()).take(run_id)


def test_a_claim_from_another_host_holds_until_its_heartbeat_is_older_than_claim_timeout_s(store):
    _, client, experiment_id = store
    run = client.create_run(experiment_id, tags={"run_key": "k"})
    heard = {"host": "node-7", "pid": 1, "token": "theirs", "at": time.time() - 60}
    client.set_tag(run.info.run_id, claims.TAG, json.dumps(heard))
    with pytest.raises(RunClaimed, match="host node-7, pid 1, heard from 6[0-9] s ago"):
        Claim(client, 120).take(run.info.run_id)
    Claim(client, 30).take(run.info.run_id)  # 60 s without a heartbeat: abandoned
    client.set_tag(run.info.run_id, claims.TAG, json.dumps({**heard, "at": time.time()}))
    Claim(client, 0).take(run.info.run_id)  # tracking.claim_timeout_s=0: taken over at once


@pytest.mark.parametrize("left", ["RUNNING", "KILLED"])  # by kill -9, by Ctrl-C or a scheduler's SIGTERM
def test_two_jobs_resuming_one_free_run_at_the_same_moment_leave_it_to_exactly_one(store, left):
    _, client, experiment_id = store
    run_id = client.create_run(experiment_id, tags={"run_key": "k"}).info.run_id  # a killed job's
    if left != "RUNNING":
        client.set_terminated(run_id, left)
    jobs = [Claim(client, 120) for _ in range(2)]
    start, refused = threading.Barrier(2), []

    def resume(job):
        start.wait()
        try:
            job.take(run_id)
        except RunClaimed:
            refused.append(job)

    threads = [threading.Thread(target=resume, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(refused) == 1
    (winner,) = [job for job in jobs if job not in refused]
    assert held_by(client, run_id) == winner.token


def test_two_jobs_creating_the_run_at_once_keep_the_older_run_and_delete_the_other(store):
    _, client, experiment_id = store
    first, second = another_job(client), Claim(client, 120)
    mine = new_run(client, experiment_id, first)
    theirs = new_run(client, experiment_id, second)  # both created before either looked
    first.settle_new(mine, experiment_id, "k", None)  # the older run: kept
    with pytest.raises(RunClaimed, match=mine.info.run_id):
        second.settle_new(theirs, experiment_id, "k", None)
    assert client.get_run(theirs.info.run_id).info.lifecycle_stage == "deleted"
    assert client.get_run(mine.info.run_id).info.lifecycle_stage == "active"
    other = new_run(client, experiment_id, another_job(client), key="another configuration")
    Claim(client, 120).settle_new(other, experiment_id, "another configuration", None)  # not a rival


def test_the_heartbeat_refreshes_the_claim_until_the_job_stops_it(store, monkeypatch):
    _, client, experiment_id = store
    monkeypatch.setattr(claims, "HEARTBEAT_S", 0.05)
    job = Claim(client, 120)
    run_id = new_run(client, experiment_id, job).info.run_id

    def heard() -> float:
        return json.loads(client.get_run(run_id).data.tags[claims.TAG])["at"]

    first = heard()
    stop = job.keep_alive(run_id)
    deadline = time.time() + 30
    while heard() == first:
        assert time.time() < deadline, "no heartbeat"
        time.sleep(0.05)
    stop()
    last = heard()
    time.sleep(0.3)
    assert heard() == last


@pytest.mark.slow
def test_one_configuration_started_twice_at_once_runs_once_and_the_other_job_is_refused(tmp_path):
    """Two real jobs on one fresh sqlite store, started together: one runs, the other stops with the claim's
    message; the store holds one run whose per-case curves have one point per round (4 for 3 rounds, not 8)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [
        sys.executable, "-m", "iunet_bench", "experiment=smoke", "progress=false", f"tracking.uri={uri}",
        "tracking.artifact_root=mlartifacts", shared_data_cache(), shared_train_cache(),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    jobs = [
        subprocess.Popen(
            [*command, f"hydra.run.dir={tmp_path / f'job{i}'}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [job.communicate(timeout=900) for job in jobs]
    codes = sorted(job.returncode for job in jobs)
    assert codes == [0, 1], [err[-3000:] for _, err in outs]
    (refused,) = [err for job, (_, err) in zip(jobs, outs) if job.returncode == 1]
    assert "is being run by another job" in refused and "Traceback" not in refused
    client = mlflow.MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("iunet_bench").experiment_id])
    assert run.info.status == "FINISHED" and "resumed" not in run.data.tags
    curves = [k for k in run.data.metrics if k.startswith("dsc/")]
    assert len(curves) == 2  # the smoke split's held-out cases
    for key in curves:
        assert [m.step for m in client.get_metric_history(run.info.run_id, key)] == [0, 1, 2, 3]
