"""The whole loop as a user runs it, checked through what MLflow holds afterwards."""

import csv
import json
from pathlib import Path

import mlflow
import pytest

from iunet_bench.core import metrics
from iunet_bench.interactive.config import IUnetInteract
from tests.conftest import run_cli, shared_train_cache

pytestmark = pytest.mark.slow

SMOKE_ROUNDS = 3


def client_for(tmp: Path) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(f"sqlite:///{tmp / 'runs' / 'mlflow.db'}")


def all_runs(client: mlflow.MlflowClient):
    exp = client.get_experiment_by_name("iunet_bench")
    assert exp is not None, "the job created no MLflow experiment"
    return client.search_runs([exp.experiment_id])


def test_smoke_job_logs_the_tracking_contract(tmp_path):
    proc = run_cli("experiment=smoke", shared_train_cache(), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "mlflow ui --backend-store-uri sqlite:///runs/mlflow.db" in proc.stdout
    client = client_for(tmp_path)
    runs = all_runs(client)
    assert len(runs) == 1
    run = runs[0]
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    default = IUnetInteract()  # the whole validated config is logged, defaults included
    assert run.data.params["interact.trainable"] == str(list(default.trainable))
    assert run.data.params["interact.until_agreement"] == str(default.until_agreement)
    assert run.data.params["session.rounds"] == str(SMOKE_ROUNDS)
    for tag in ("git_commit", "data_fingerprint", "device", "held_out_cases", "baseline_key"):
        assert run.data.tags.get(tag), tag
    assert run.data.tags["failed_cases"] == "0"

    def history(key):
        return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]

    curve = history("dsc")
    assert len(curve) == SMOKE_ROUNDS + 1
    assert all(0.0 <= v <= 1.0 for v in curve)
    cases = run.data.tags["held_out_cases"].split(",")
    per_case = {case: history(f"dsc/{case}") for case in cases}
    assert all(len(c) == SMOKE_ROUNDS + 1 for c in per_case.values())
    # the mean curve is the mean of the per-case curves, and the summaries follow from them
    assert curve == pytest.approx([sum(v) / len(cases) for v in zip(*per_case.values())])
    m = run.data.metrics
    assert m["dsc_gain"] == pytest.approx(curve[-1] - curve[0])
    assert m["dsc_auc"] == pytest.approx(sum(metrics.auc(c) for c in per_case.values()) / len(cases))
    assert m["noi_85"] == pytest.approx(sum(metrics.noi(c, 0.85) for c in per_case.values()) / len(cases))
    assert m["round_seconds"] > 0
    # the painter: a user who only paints, its own session on the same cases from the same start
    painter = {case: history(f"painter_dsc/{case}") for case in cases}
    assert all(len(c) == SMOKE_ROUNDS + 1 and c[0] == per_case[k][0] for k, c in painter.items())
    painted = history("dsc_painter")
    assert painted == pytest.approx([sum(v) / len(cases) for v in zip(*painter.values())])
    assert m["dsc_gain_over_painter"] == pytest.approx(curve[-1] - painted[-1])
    wins = [per_case[k][-1] > painter[k][-1] for k in cases]
    ties = [per_case[k][-1] == painter[k][-1] for k in cases]
    assert m["painter_case_wins"] == pytest.approx((sum(wins) + sum(ties) / 2) / len(cases))
    floor = history("dsc_floor")  # the in-run floor: the method's interactions pasted in
    assert len(floor) == SMOKE_ROUNDS + 1 and floor[0] == pytest.approx(curve[0])
    assert m["dsc_gain_over_floor"] == pytest.approx(curve[-1] - floor[-1])
    assert history("dsc_gain_over_floor") == pytest.approx([a - b for a, b in zip(curve, floor)])
    agreement = history("scribble_agreement")  # rounds 1..R (round 0 has no scribbles)
    assert len(agreement) == SMOKE_ROUNDS and all(0.0 <= v <= 1.0 for v in agreement)
    assert 0.0 <= m["rounds_honoured"] <= 1.0
    hd95 = history("hd95")
    assert len(hd95) == SMOKE_ROUNDS + 1 and all(v >= 0 for v in hd95)
    effort = history("effort_strokes")
    assert len(effort) == SMOKE_ROUNDS + 1 and effort[0] == 0 and effort == sorted(effort)  # cumulative
    assert len(history("train_loss")) == 150  # train.steps in the smoke experiment
    # the stopping rule: chunks of interact.steps = 3, at most interact.max_steps = 12 per round (smoke)
    steps = history("fine_tune_steps")
    assert steps and all(3 <= v <= 12 for v in steps)
    total = len(history("loss"))  # one point per step of the case that fine-tuned longest
    assert total % 3 == 0 and SMOKE_ROUNDS * 3 <= total <= SMOKE_ROUNDS * 12
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "rounds.csv", "cases.csv", "curves.png", "masks", "pictures"} <= artifacts
    assert run.data.tags["intensity"] == "window"  # the mode actually used, also per case in cases.csv
    table = client.download_artifacts(run_id, "cases.csv", str(tmp_path))
    with open(table, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["case_id"] for r in rows if r["role"] == "held_out") == sorted(cases)
    assert {r["intensity"] for r in rows} == {"window"} and all(int(r["label_voxels"]) > 0 for r in rows)
    masks = {a.path for a in client.list_artifacts(run_id, "masks")}
    assert masks == {f"masks/{case}.nii.gz" for case in cases}
    pictures = client.list_artifacts(run_id, f"pictures/{cases[0]}")
    assert len(pictures) == SMOKE_ROUNDS + 1  # session.pictures = 1: every round of the first case


def test_a_sweep_job_with_a_bad_value_is_recorded_and_the_other_jobs_run(tmp_path):
    sweep = ["-m", "experiment=smoke", "session.rounds=1", "session.pictures=0"]
    sweep += ["interact.trainable=[nosuch],[head]", shared_train_cache()]
    proc = run_cli(*sweep, cwd=tmp_path)
    # the other job ran, but the sweep as a whole failed: it says which job, and exits 2, a configuration
    # error (CI, schedulers)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "1 sweep job(s) failed" in proc.stderr
    failed_line = proc.stderr.split("1 sweep job(s) failed:")[1].splitlines()[1]
    assert "nosuch" in failed_line and "interact.trainable" in failed_line
    runs = all_runs(client_for(tmp_path))
    parent = next(r for r in runs if r.data.tags.get("kind") == "sweep")
    children = {r.data.params["interact.trainable"]: r for r in runs if r.data.tags.get("kind") == "job"}
    assert set(children) == {"['nosuch']", "['head']"}
    assert children["['nosuch']"].info.status == "FAILED"
    assert "interact.trainable" in children["['nosuch']"].data.tags["error"]
    assert children["['head']"].info.status == "FINISHED"
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_jobs"] == "1"
    assert parent.data.tags["sweep"] == children["['head']"].data.tags["sweep"] == "multirun"

    # the same sweep again (resume=true): same parent, the finished job skipped, the failed one tried again
    again = run_cli(*sweep, cwd=tmp_path)
    assert again.returncode == 2 and f"resuming sweep run {parent.info.run_id}" in again.stderr
    assert "already finished as MLflow run " + children["['head']"].info.run_id in again.stderr
    runs = all_runs(client_for(tmp_path))
    assert [r.info.run_id for r in runs if r.data.tags.get("kind") == "sweep"] == [parent.info.run_id]
    jobs = [r for r in runs if r.data.tags.get("kind") == "job"]
    assert sorted(r.data.params["interact.trainable"] for r in jobs) == [
        "['head']",
        "['nosuch']",
        "['nosuch']",
    ]
    parent = next(r for r in runs if r.data.tags.get("kind") == "sweep")
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_jobs"] == "1"


def test_a_value_hydra_rejects_fails_its_job_alone_and_the_other_jobs_run(tmp_path):
    """No such simulator preset: Hydra cannot compose that job. It is a FAILED child run naming the error,
    the valid jobs before and after it run, the parent counts it, and the sweep exits 2 (a configuration
    error), where the whole sweep used to end before any job ran."""
    values = "scribble_ideal,no_such_robot,scribble_careful"
    sweep = ["-m", "experiment=smoke", "session.rounds=1", "session.pictures=0", f"simulator={values}"]
    proc = run_cli(*sweep, shared_train_cache(), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    failed_line = proc.stderr.split("1 sweep job(s) failed:")[1].splitlines()[1]
    assert "job 1 (" in failed_line and "Could not find 'simulator/no_such_robot'" in failed_line
    runs = all_runs(client_for(tmp_path))
    parent = next(r for r in runs if r.data.tags.get("kind") == "sweep")
    jobs = {
        r.data.tags["job_overrides"].split("simulator=")[1].split()[0]: r
        for r in runs
        if r.data.tags.get("kind") == "job"
    }
    assert set(jobs) == set(values.split(","))
    assert jobs["scribble_ideal"].info.status == jobs["scribble_careful"].info.status == "FINISHED"
    rejected = jobs["no_such_robot"]
    assert rejected.info.status == "FAILED" and "simulator/no_such_robot" in rejected.data.tags["error"]
    assert rejected.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert parent.info.status == "FINISHED" and parent.data.tags["failed_jobs"] == "1"
    (folder,) = (tmp_path / "runs" / "hydra" / "multirun").glob("*/*")
    statuses = [json.loads((folder / "jobs" / f"{n}.json").read_text()) for n in range(3)]
    assert [s["status"] for s in statuses] == ["FINISHED", "FAILED", "FINISHED"]
    assert statuses[1].get("configuration") is True
    page = Path(
        client_for(tmp_path).download_artifacts(parent.info.run_id, "report/report.md", str(tmp_path))
    )
    assert "no run yet" not in page.read_text(encoding="utf-8")  # every planned job has its run


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
    with open(table, newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert len(rows) == 5 and all(len(row) == len(header) for row in rows)
    assert {row[header.index("failed")] for row in rows} == {"0"}
    assert {row[header.index("cases")] for row in rows} == {"2/2"}
    assert sorted(row[header.index("interact.trainable")] for row in rows) == subsets
    assert [row[header.index("p final (Holm)")] for row in rows].count("reference") == 1
    # every subset says what it gained over a user who only paints, and how often it honoured the scribbles
    assert all(row[header.index("gain over painter")] not in ("", "nan") for row in rows)
    assert all(0.0 <= float(row[header.index("rounds honoured")]) <= 1.0 for row in rows)
    # the page and the paper's figures are there too, and every planned job has its run
    assert {"report/index.html", "report/effort.png", "report/final_box.png", "report/pareto.png"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id, "report")
    }
    plan = json.loads(
        Path(client.download_artifacts(parent.info.run_id, "jobs.json", str(tmp_path))).read_text()
    )
    assert len(plan) == 5 and sorted(c.data.tags["job_overrides"] for c in children) == sorted(
        map(" ".join, plan)
    )
    page = Path(client.download_artifacts(parent.info.run_id, "report/report.md", str(tmp_path)))
    assert "no run yet" not in page.read_text(encoding="utf-8")


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
    cache = tmp_path / "runs" / "cache"
    written = [f for f in cache.rglob("*") if f.is_file()] if cache.exists() else []
    assert not written, f"nothing may be computed for an invalid config: {written}"
    assert not (tmp_path / "runs" / "mlflow.db").exists(), "no MLflow run for an invalid config"
