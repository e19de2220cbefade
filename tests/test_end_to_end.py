"""The whole loop as a user runs it, checked through what MLflow holds afterwards."""

from pathlib import Path

import mlflow
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow

SMOKE_ROUNDS = 3


def client_for(tmp: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{tmp / 'runs' / 'mlflow.db'}")


def all_runs(client: mlflow.MlflowClient):
    exp = client.get_experiment_by_name("iunet_bench")
    assert exp is not None, "the job created no MLflow experiment"
    return client.search_runs([exp.experiment_id])


def test_smoke_job_logs_the_tracking_contract(tmp_path):
    proc = run_cli("experiment=smoke", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mlflow ui --backend-store-uri sqlite:///runs/mlflow.db" in proc.stdout
    client = client_for(tmp_path)
    runs = all_runs(client)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["interact.trainable"] == "['head', 'bottleneck']"
    assert run.data.params["session.rounds"] == str(SMOKE_ROUNDS)
    for tag in ("git_commit", "data_fingerprint", "device", "held_out_cases"):
        assert run.data.tags.get(tag), tag

    curve = client.get_metric_history(run.info.run_id, "dsc")
    assert [m.step for m in curve] == list(range(SMOKE_ROUNDS + 1))
    assert all(0.0 <= m.value <= 1.0 for m in curve)
    cases = run.data.tags["held_out_cases"].split(",")
    assert cases
    for case in cases:
        per_case = client.get_metric_history(run.info.run_id, f"dsc.{case}")
        assert [m.step for m in per_case] == list(range(SMOKE_ROUNDS + 1))
    for key in ("dsc_final", "dsc_gain", "noi_85", "noi_90", "dsc_auc", "round_seconds"):
        assert key in run.data.metrics, key
    first, last = curve[0].value, curve[-1].value
    assert run.data.metrics["dsc_gain"] == pytest.approx(last - first)
    loss = client.get_metric_history(run.info.run_id, "loss")
    assert len(loss) == SMOKE_ROUNDS * 3  # interact.steps = 3 in the smoke experiment
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "rounds.csv", "curves.png"} <= artifacts


def test_layer_sweep_makes_one_child_per_subset_under_a_parent_and_trains_once(tmp_path):
    proc = run_cli("+sweep=layers", "experiment=smoke", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = all_runs(client_for(tmp_path))
    parents = [r for r in runs if r.data.tags.get("kind") == "sweep"]
    children = [r for r in runs if r.data.tags.get("kind") == "job"]
    assert len(parents) == 1 and len(children) == 5
    parent = parents[0]
    assert parent.data.tags["sweep"] == "layers"
    assert parent.info.status == "FINISHED"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    subsets = sorted(c.data.params["interact.trainable"] for c in children)
    assert subsets == sorted(
        ["['head']", "['bottleneck']", "['head', 'bottleneck']", "['decoder']", "['all']"]
    )
    assert len({c.data.tags["baseline_key"] for c in children}) == 1
    assert sorted(c.data.tags["baseline_cached"] for c in children) == ["False"] + ["True"] * 4
    # same baseline, same held-out cases: every subset starts from the same round-0 DSC
    assert len({round(c.data.metrics["dsc_baseline"], 9) for c in children}) == 1
    # the sweep's comparison report lands on the parent run and lists every subset
    client = client_for(tmp_path)
    assert {"report/report.csv", "report/curves.png"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id, "report")
    }
    table = client.download_artifacts(parent.info.run_id, "report/report.csv", str(tmp_path))
    assert len(Path(table).read_text(encoding="utf-8").strip().splitlines()) == 1 + 5


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("interact.trainable=[head,nosuchgroup]", "interact.trainable"),
        ("session.rounds=-1", "session.rounds"),
        ("interact.geodesic.threshold=1.5", "interact.geodesic.threshold"),
        ("data=msd data.root=/nonexistent/folder", "data.root"),
        ("simulator.policy.region=everywhere", "simulator.policy.region"),
    ],
)
def test_invalid_configuration_stops_before_compute_naming_the_key(tmp_path, override, key):
    proc = run_cli("experiment=smoke", *override.split(), cwd=tmp_path)
    assert proc.returncode == 2
    assert key in proc.stderr
    assert not (tmp_path / "runs" / "cache").exists(), "nothing may be computed for an invalid config"
