"""In-process jobs on the smoke configuration: determinism and failure isolation."""

import mlflow
import numpy as np
import pytest

from iunet_bench import benchmark

pytestmark = pytest.mark.slow


@pytest.fixture
def smoke_cfg(compose, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ (store, caches, job folders) lands in the temporary folder
    monkeypatch.setenv("CI", "1")
    return compose("experiment=smoke")


def test_same_seed_gives_the_same_curves_and_another_seed_does_not(smoke_cfg, compose):
    first = benchmark.run(smoke_cfg)
    second = benchmark.run(smoke_cfg)
    assert first.run_id != second.run_id
    assert first.curve == second.curve  # bit-identical, not merely close
    other = benchmark.run(compose("experiment=smoke", "seed=1"))
    assert other.curve != first.curve


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
    summary = benchmark.run(smoke_cfg)
    assert len(summary.failures) == 1
    assert summary.failures[0]["stage"] == "session"
    assert "robot lost its pen" in summary.failures[0]["error"]
    client = mlflow.MlflowClient(str(smoke_cfg.tracking.uri))
    run = client.get_run(summary.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["failed_cases"] == "1"
    held_out = run.data.tags["held_out_cases"].split(",")
    logged = {k.split(".", 1)[1] for k in run.data.metrics if k.startswith("dsc.")}
    assert len(logged) == len(held_out) - 1
    assert summary.failures[0]["case_id"] not in logged
    assert np.all(np.isfinite(summary.curve))
    assert "failures.json" in {a.path for a in client.list_artifacts(summary.run_id)}
