"""In-process jobs on the smoke configuration: determinism and failure isolation."""

import os

import mlflow
import numpy as np
import pytest
from omegaconf import OmegaConf

from iunet_bench.analysis.results import format_table
from iunet_bench.tasks import job
from iunet_bench.tasks.config import load_config
from iunet_bench.tracking.tracker import store_uri
from tests.conftest import shared_data_cache, shared_train_cache

pytestmark = pytest.mark.slow


def config_of(compose, *overrides):
    return load_config(OmegaConf.to_container(compose(*overrides, shared_data_cache()), resolve=True))


@pytest.fixture
def smoke_cfg(compose, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ (store, caches, job folders) lands in the temporary folder
    monkeypatch.setenv("CI", "1")
    return config_of(compose, "experiment=smoke", shared_train_cache())


def test_same_seed_gives_bit_identical_curves_including_baseline_training(smoke_cfg, compose):
    # its own runs/cache: trained here; one TensorFlow thread, as each worker of the second run has
    first = job.run(config_of(compose, "experiment=smoke", "threads=1"))
    # a fresh cache: the baseline is trained again, so training determinism is tested too
    # (resume=false: the same configuration in the same store would otherwise return the first run);
    # its cases run in two worker processes, one thread each: a case's records must not depend on the
    # process that ran it (the thread count can change floating-point sums: README, Determinism)
    other = ["train.cache_dir=runs/cache/other", "resume=false", "session.workers=2"]
    second = job.run(config_of(compose, "experiment=smoke", *other))
    client = mlflow.MlflowClient(store_uri(smoke_cfg.tracking.uri))
    assert [client.get_run(s.run_id).data.tags["baseline_cached"] for s in (first, second)] == [
        "False",
        "False",
    ]
    assert first.run_id != second.run_id
    assert first.curve == second.curve  # bit-identical, not merely close
    timings = {"round_seconds", "robot_seconds"}
    assert {k: v for k, v in first.metrics.items() if k not in timings} == {
        k: v for k, v in second.metrics.items() if k not in timings
    }


def test_when_no_case_loads_the_job_reports_each_reason_and_trains_nothing(compose, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from iunet_bench.data import dataset as dataset_module

    def unreadable(self, ref):
        raise OSError(f"{ref.case_id}: disk on fire")

    monkeypatch.setattr(dataset_module.Dataset, "_volume", unreadable)
    cfg = config_of(compose, "experiment=smoke")
    summary = job.run(cfg)
    assert summary.curve == []
    assert {f["stage"] for f in summary.failures} == {"load"}
    assert all("disk on fire" in f["error"] for f in summary.failures)
    run = mlflow.MlflowClient(store_uri(cfg.tracking.uri)).get_run(summary.run_id)
    assert run.info.status == "FAILED"
    assert "no training case" in run.data.tags["error"]
    assert not list((tmp_path / "runs" / "cache" / "baseline").glob("baseline-*"))  # nothing trained


def test_when_every_case_fails_the_run_is_failed_and_the_reasons_are_kept(smoke_cfg, monkeypatch):
    from simulators.scribble import ScribbleRobot

    def broken(self, *args, **kwargs):
        raise RuntimeError("robot lost its pen")

    monkeypatch.setattr(ScribbleRobot, "annotate", broken)
    summary = job.run(smoke_cfg)
    assert summary.curve == []
    client = mlflow.MlflowClient(store_uri(smoke_cfg.tracking.uri))
    run = client.get_run(summary.run_id)
    held_out = run.data.tags["held_out_cases"].split(",")
    assert run.info.status == "FAILED"
    assert run.data.tags["failed_cases"] == str(len(held_out)) == str(len(summary.failures))
    assert "failures.json" in {a.path for a in client.list_artifacts(summary.run_id)}
    assert "no case finished" in format_table(summary)


def test_a_failing_case_is_recorded_and_the_other_cases_still_log(smoke_cfg, monkeypatch):
    from simulators.scribble import ScribbleRobot

    real = ScribbleRobot.annotate
    victims = []

    def flaky(self, image, reference, prediction, rng, spacing=(1.0, 1.0, 1.0)):
        key = image.tobytes()
        if not victims:
            victims.append(key)
        if key == victims[0]:
            raise RuntimeError("robot lost its pen")
        return real(self, image, reference, prediction, rng, spacing=spacing)

    monkeypatch.setattr(ScribbleRobot, "annotate", flaky)
    summary = job.run(smoke_cfg)
    assert len(summary.failures) == 1
    assert summary.failures[0]["stage"] == "session"
    assert "robot lost its pen" in summary.failures[0]["error"]
    client = mlflow.MlflowClient(store_uri(smoke_cfg.tracking.uri))
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["failed_cases"] == "1"
    held_out = run.data.tags["held_out_cases"].split(",")
    logged = {k.split("/", 1)[1] for k in run.data.metrics if k.startswith("dsc/")}
    assert len(logged) == len(held_out) - 1
    assert summary.failures[0]["case_id"] not in logged
    assert np.all(np.isfinite(summary.curve))
    assert "failures.json" in {a.path for a in client.list_artifacts(summary.run_id)}


def tree_digest(root) -> dict[str, str]:
    """Every file under `root` (links included, not followed) and a digest of its bytes."""
    import hashlib
    from pathlib import Path

    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_symlink():
            out[str(p)] = "link:" + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir"
    return out


def test_a_full_disk_midway_loses_no_logged_result_and_nothing_touches_the_data_folder(
    compose, tmp_path, monkeypatch
):
    """A job on a user's MSD folder whose job folder stops taking files (disk full) after the job started:
    every case still reaches MLflow, the failures name the file that could not be written, and the data
    folder is byte for byte what it was (nothing written, nothing added)."""
    import errno

    from iunet_bench.analysis import results
    from tests.test_data_dataset import write_msd

    root = write_msd(tmp_path / "data" / "Task07", n=4)
    before = tree_digest(tmp_path / "data")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # runs/ goes here, as it would under the user's working directory
    monkeypatch.setenv("CI", "1")

    def full(path, records):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(results, "rounds_csv", full)
    cfg = config_of(
        compose, "experiment=smoke", "data=msd", f"data.root={root}", "data.split.folds=2", "session.rounds=1"
    )
    summary = job.run(cfg)
    run = mlflow.MlflowClient(store_uri(cfg.tracking.uri)).get_run(summary.run_id)
    cases = run.data.tags["held_out_cases"].split(",")
    assert summary.curve and all(f"dsc/{c}" in run.data.metrics for c in cases)  # nothing computed is lost
    assert "dsc_final" in run.data.metrics
    written = [f for f in summary.failures if f["stage"] == "artifacts"]
    assert written and all("rounds.csv" in f["error"] and "No space left" in f["error"] for f in written)
    assert int(run.data.tags["failed_cases"]) == len(summary.failures)
    assert tree_digest(tmp_path / "data") == before


def test_the_cvpr25_protocol_starts_with_a_box_then_clicks_and_measures_nsd(smoke_cfg, compose, tmp_path):
    """The challenge's protocol end to end on the smoke volumes: round 1 is the box (two clicks' effort,
    nothing of the organ marked background), the later rounds one click each; every round has its NSD at
    the protocol's tolerance, and the summary its NoF, seconds-to-k and effort AUC."""
    import csv

    config = config_of(compose, "experiment=smoke", "protocol=cvpr25", shared_train_cache())
    assert config.protocol.first == "box" and config.session.rounds == 3  # the smoke's rounds win
    summary = job.run(config)
    with next((tmp_path / "runs").rglob("rounds.csv")).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    first = [r for r in rows if r["round"] == "1" and r["stopped"] == "False"]
    later = [r for r in rows if int(r["round"]) > 1 and r["stopped"] == "False"]
    assert first and all(r["effort_clicks"] == "2" and r["effort_add_voxels"] == "0" for r in first)
    assert later and all(r["effort_clicks"] == "1" for r in later)
    assert all(0.0 <= float(r["nsd"]) <= 1.0 and float(r["volume_ratio"]) >= 0.0 for r in rows)
    m = summary.metrics
    assert {"nof_90", "seconds_to_85", "seconds_to_90", "effort_auc", "nsd_final", "user_seconds"} <= set(m)
    assert 0.0 <= m["effort_auc"] <= 1.0 and m["seconds_to_85"] <= m["user_seconds"] + 1e-9
    client = mlflow.MlflowClient(store_uri(config.tracking.uri))
    run = client.get_run(summary.run_id)
    assert run.data.params["protocol.name"] == "cvpr25"
    assert {f"nsd/{c}" for c in run.data.tags["held_out_cases"].split(",")} <= set(run.data.metrics)


def test_task_cv_measures_the_baselines_own_segmentation_of_the_held_out_fold(smoke_cfg, compose):
    """The paper's first experiment per (model, fold): round 0 only, per-case DSC, HD95 and NSD logged."""
    config = config_of(compose, "experiment=smoke", "task=cv", "data.split.fold=1", shared_train_cache())
    assert config.session.rounds == 0
    summary = job.run(config)
    assert len(summary.curve) == 1 and summary.metrics["dsc_final"] == summary.metrics["dsc_baseline"]
    # no rounds, so no painter and no floor: nothing to compare, and the console says what was measured
    assert not any("painter" in k or "floor" in k for k in summary.metrics)
    table = format_table(summary)
    assert (
        f"automatic segmentation (round 0, no interaction): DSC {summary.metrics['dsc_baseline']:.3f}"
        in table
    )
    assert "against a user who only paints" not in table and "in-run floor" not in table
    assert "user minutes" not in table
    client = mlflow.MlflowClient(store_uri(config.tracking.uri))
    run = client.get_run(summary.run_id)
    assert not any("painter" in k for k in run.data.metrics)
    cases = run.data.tags["held_out_cases"].split(",")
    for name in ("dsc", "hd95", "nsd"):
        assert all(len(client.get_metric_history(run.info.run_id, f"{name}/{c}")) == 1 for c in cases)


def test_a_users_keras_model_runs_the_whole_loop_with_its_own_group(smoke_cfg, compose, tmp_path):
    """Bring your own network: a small functional model saved as .keras, a custom `head` group by pattern;
    its weights are the baseline (nothing trained), and the smoke loop fine-tunes only that group."""
    from tests.test_models import byo_file

    path = byo_file(tmp_path / "mine.keras")
    config = config_of(
        compose,
        "experiment=smoke",
        "model=keras",
        f"model.path={path}",
        '+model.groups.head=["^final_"]',
        "interact.trainable=[head]",
    )
    summary = job.run(config)
    assert len(summary.curve) == config.session.rounds + 1 and not summary.failures
    client = mlflow.MlflowClient(store_uri(config.tracking.uri))
    run = client.get_run(summary.run_id)
    assert run.data.params["model.name"] == "keras" and not client.get_metric_history(
        run.info.run_id, "train_loss"
    )
