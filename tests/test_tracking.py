"""The tracking store under the faults users meet: parallel jobs on a fresh sqlite file, a half-created
store, a tracking server that is not there, the store going away in the middle of a job."""

import json
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time

import mlflow
import pytest

from iunet_bench.core.schema import ConfigError
from iunet_bench.tracking import links
from iunet_bench.tracking import tracker as tracking
from tests.conftest import ROOT, run_cli

WRITER = textwrap.dedent(
    """
    import sys
    from iunet_bench.tracking.tracker import Tracker
    uri, name = sys.argv[1], sys.argv[2]
    for j in range(3):  # a job's worth of logging, three times: params, per-case curves, summary
        t = Tracker(uri, "iunet_bench", sys.argv[3], run_name=f"{name}-{j}")
        t.log_params({f"p{i}": i for i in range(150)})
        for case in range(8):
            t.log_metrics([(f"dsc/c{case}", 0.5 + r / 100, r) for r in range(11)])
        t.set_tags({"done": "yes"})
        t.end()
    print("ok", name)
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_parallel_writers_on_a_fresh_sqlite_store_lose_no_run(tmp_path):
    """Four processes start at once on a store that does not exist yet (the default `runs/mlflow.db` of a
    fresh checkout): without the lock they race to create its schema and corrupt it."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, uri, f"w{i}", str(tmp_path / "art")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert "locked" not in err
    client = mlflow.MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("iunet_bench").experiment_id])
    assert len(runs) == 12 and {r.info.status for r in runs} == {"FINISHED"}
    assert all(len(client.get_metric_history(r.info.run_id, "dsc/c7")) == 11 for r in runs)
    # and the store stays usable for the next job
    tracking.Tracker(uri, "iunet_bench", str(tmp_path / "art"), run_name="later").end()


def test_a_half_created_store_is_a_config_error_naming_the_file(tmp_path):
    db = tmp_path / "half.db"
    with sqlite3.connect(db) as con:  # what a lost schema race leaves: some tables, no complete schema
        con.execute("CREATE TABLE latest_metrics (key VARCHAR(250))")
    with pytest.raises(ConfigError) as err:
        tracking.open_client(f"sqlite:///{db}")
    assert "tracking.uri" in str(err.value) and str(db) in str(err.value)


def test_an_unreachable_server_fails_in_seconds_naming_tracking_uri():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        tracking.open_client(uri)
    assert time.perf_counter() - t0 < 30  # MLflow's own retries take minutes
    assert "tracking.uri" in str(err.value) and uri in str(err.value)


@pytest.mark.slow
def test_a_job_pointed_at_no_server_stops_before_any_compute(tmp_path):
    uri = f"http://127.0.0.1:{free_port()}"
    proc = run_cli("experiment=smoke", f"tracking.uri={uri}", "train.cache_dir=runs/bl", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "tracking.uri" in proc.stderr and uri in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "runs" / "bl").exists() or not any((tmp_path / "runs" / "bl").iterdir())


def test_a_sweep_counts_failed_and_killed_jobs_from_their_status_files(tmp_path):
    from iunet_bench.tasks.sweep import STATUS_DIR, failed_jobs

    jobs = tmp_path / STATUS_DIR
    jobs.mkdir()
    for num, status, error in [
        (0, "FINISHED", ""),
        (1, "STARTED", ""),
        (2, "FAILED", "ValueError: bad"),
        (10, "FINISHED", ""),
    ]:
        (jobs / f"{num}.json").write_text(
            json.dumps({"overrides": f"seed={num}", "status": status, "error": error}), encoding="utf-8"
        )
    failed = failed_jobs(tmp_path)
    assert [name for name, _ in failed] == ["job 1 (seed=1)", "job 2 (seed=2)"]
    assert "killed" in failed[0][1] and failed[1][1] == "ValueError: bad"


def test_experiments_open_on_training_runs_in_the_mlflow_ui(tmp_path):
    """The experiment kind tag (marks the experiment as model training for MLflow 3's UI; 3.17 opens on the
    runs only through the links `ui_hint` prints): set on the experiments the harness creates, and added to
    one that exists without it."""
    uri = tracking.store_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = tracking.open_client(uri)
    key, value = tracking.EXPERIMENT_KIND
    new = tracking.prepare_store(uri, "made-here", str(tmp_path / "a"), client)
    assert client.get_experiment(new).tags.get(key) == value
    old = client.create_experiment("made-by-hand")
    assert key not in client.get_experiment(old).tags
    assert tracking.prepare_store(uri, "made-by-hand", None, client) == old
    assert client.get_experiment(old).tags.get(key) == value


def test_the_ui_hint_for_a_local_store_gives_the_command_and_the_runs_and_chart_links(tmp_path):
    """MLflow 3.17's UI opens on a GenAI page: the job prints links straight to the experiment's runs table
    in the "Model training" mode, and to its chart view (checked in a browser: docs/reference/mlflow.md)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = tracking.open_client(uri)
    experiment = tracking.prepare_store(uri, "hint", str(tmp_path / "a"), client)
    run = client.create_run(experiment).info.run_id
    assert links.experiment_of(uri, run) == experiment
    assert links.experiment_of(uri, "no-such-run") is None
    lines = links.ui_hint(uri, experiment, run).splitlines()
    runs = f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
    assert lines[0] == f"MLflow run {run}. See all runs with:"
    assert lines[1] == f"  mlflow ui --backend-store-uri {uri}"
    assert lines[-2:] == [f"  {runs}", f"  {runs}&compareRunsMode=CHART"]
    assert links.ui_hint(uri, None, run).splitlines()[-1] == "and open http://127.0.0.1:5000"


def test_the_ui_hint_for_a_tracking_server_gives_the_servers_own_links():
    hint = links.ui_hint("https://mlflow.example.org:8443/", "7", "abc")
    assert "mlflow ui" not in hint and "--backend-store-uri" not in hint and "127.0.0.1" not in hint
    runs = "https://mlflow.example.org:8443/#/experiments/7/runs?workflowType=machine_learning"
    assert hint.splitlines()[-2:] == [f"  {runs}", f"  {runs}&compareRunsMode=CHART"]
    assert links.ui_hint("http://HOST:5000", None, "r").splitlines()[-1] == "  http://HOST:5000"


def test_the_ui_hint_never_prints_a_database_password():
    hint = links.ui_hint("postgresql://mlflow:secret@dbhost/mlflow", "1", "r")
    assert "secret" not in hint and "postgresql://mlflow:PASSWORD@dbhost/mlflow" in hint
