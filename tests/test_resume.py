"""Resume: a job killed for real (SIGKILL, in the middle of a case) and run again ends with the curves of an
uninterrupted run, in one run, with no duplicate point and nothing left RUNNING."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from iunet_bench.session.records import RoundRecord
from iunet_bench.tracking import resume
from tests.conftest import ROOT, run_cli, shared_data_cache, shared_train_cache

# 3 held-out cases of 6 phantoms, 5 rounds each: long enough to be killed inside the second case
JOB = [
    "experiment=smoke",
    "data.split.folds=2",
    "session.rounds=5",
    "session.pictures=0",
    shared_train_cache(),
]
TIMINGS = {"refine_seconds", "robot_seconds"}


def client_for(folder: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{folder / 'runs' / 'mlflow.db'}")


def runs_of(client):
    return client.search_runs([e.experiment_id for e in client.search_experiments()])


def case_curves(client, run) -> dict[str, list[tuple[int, float]]]:
    keys = [k for k in run.data.metrics if k.startswith("dsc/")]
    return {k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)] for k in keys}


def rounds_table(client, run, folder) -> list[dict]:
    path = client.download_artifacts(run.info.run_id, "rounds.csv", str(folder))
    with open(path, newline="", encoding="utf-8") as fh:
        return sorted(
            ({k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(fh)),
            key=lambda r: (r["case_id"], int(r["round"])),
        )


def test_records_round_trip_through_json_nan_included():
    rec = RoundRecord("c", 2, 0.5, 3.25, 1.5, 0.1, {"strokes": 2}, [0.3, 0.2], agreement=float("nan"))
    (back,) = resume.records_from_json(resume.records_to_json([rec]))
    assert back.case_id == "c" and back.losses == [0.3, 0.2] and back.effort == {"strokes": 2}
    assert back.dsc == 0.5 and back.agreement != back.agreement  # NaN comes back as NaN


def test_the_run_key_ignores_where_things_go_but_not_what_is_computed():
    base = {
        "seed": 0,
        "progress": "auto",
        "resume": True,
        "tracking": {"uri": "a"},
        "data": {"cache_dir": "x"},
    }
    same = {**base, "progress": False, "tracking": {"uri": "b"}, "data": {"cache_dir": "y"}}
    assert resume.run_key(base, "c1") == resume.run_key(same, "c1")
    assert resume.run_key(base, "c1") != resume.run_key({**base, "seed": 1}, "c1")
    assert resume.run_key(base, "c1") != resume.run_key(base, "c2")  # another code version


@pytest.mark.slow
def test_a_job_killed_mid_case_resumes_to_the_uninterrupted_result(tmp_path):
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    whole.mkdir(), cut.mkdir()
    proc = run_cli(*JOB, cwd=whole)
    assert proc.returncode == 0, proc.stderr[-3000:]

    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    job = subprocess.Popen(
        [sys.executable, "-m", "iunet_bench", *JOB, shared_data_cache()],
        cwd=cut,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not list((cut / "runs" / "mlartifacts").glob("**/artifacts/records/*.json")):
        assert job.poll() is None and time.time() < deadline, "the job ended before its first case finished"
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)  # at once: the first case's curve may be logged or not, the second is cut
    job.wait()
    client = client_for(cut)
    (dead,) = runs_of(client)
    assert dead.info.status == "RUNNING"  # kill -9 closes nothing
    done = len(client.list_artifacts(dead.info.run_id, "records"))
    assert 1 <= done < 3, "the kill must fall inside a later case for this test to mean anything"

    again = run_cli(*JOB, cwd=cut)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming MLflow run {dead.info.run_id}: {done} of 3" in again.stderr
    assert "Downloading artifacts" not in again.stderr  # progress is off: no bar for the records read
    (resumed,) = runs_of(client)  # reopened, not replaced
    assert resumed.info.run_id == dead.info.run_id and resumed.info.status == "FINISHED"
    assert resumed.data.tags["resumed"] == "1"

    reference = client_for(whole)
    (uninterrupted,) = runs_of(reference)
    curves = case_curves(client, resumed)
    assert len(curves) == 3 and all(len(c) == 6 for c in curves.values())  # rounds 0..5, none twice
    assert curves == case_curves(reference, uninterrupted)
    assert len(client.get_metric_history(resumed.info.run_id, "dsc")) == 6
    summary = {k: v for k, v in resumed.data.metrics.items() if "seconds" not in k}
    assert summary == {k: v for k, v in uninterrupted.data.metrics.items() if "seconds" not in k}
    assert rounds_table(client, resumed, tmp_path / "a") == rounds_table(
        reference, uninterrupted, tmp_path / "b"
    )
    assert len(client.get_metric_history(resumed.info.run_id, "train_loss")) == 150  # logged once

    third = run_cli(*JOB, cwd=cut)  # finished: nothing to compute, no new run
    assert third.returncode == 0 and "already finished" in third.stderr
    assert len(runs_of(client)) == 1
