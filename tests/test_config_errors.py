"""Configuration errors as a user meets them on the command line: every problem in one message, exit 2
whether the schema or Hydra itself refuses a value, and nothing created (no MLflow store, no cache folder)
before every check, the machine's included, has passed; a sweep's job folders short and flat whatever its
overrides, and a value Hydra rejects in a sweep failing that job alone."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from iunet_bench.core.runtime import no_gpu
from iunet_bench.tasks.sweep import gist, job_folder
from tests.conftest import ROOT, run_cli


def created(cwd: Path) -> list[str]:
    """What a failed job left in its working folder (its Hydra folder is set elsewhere)."""
    return sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))


def run_failing(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """A job in `tmp_path/cwd` (default tracking store `runs/mlflow.db` there) that must fail before any
    compute, with its Hydra folder outside it, so that anything else it writes is visible."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    return run_cli(
        "experiment=smoke", "progress=false", f"hydra.run.dir={tmp_path / 'hydra'}", *overrides, cwd=cwd
    )


def test_every_problem_is_reported_at_once_rules_across_groups_included(tmp_path):
    proc = run_failing(
        tmp_path, "session.rounds=-1", "interact.lr=0", "+foo=1", "data.preprocess.grid=[7,24,24]"
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = proc.stderr[proc.stderr.index("configuration error:") :]
    problems = [line.strip().split(":")[0] for line in message.splitlines()[1:] if line.startswith("  ")]
    assert problems == ["session.rounds", "interact.lr", "foo", "data.preprocess.grid"], message
    assert "z=7 (needs a multiple of 2)" in message
    assert created(tmp_path / "cwd") == []


GPU_MISSING = no_gpu("tensorflow")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        pytest.param(
            "precision=mixed_float16",
            "precision",
            marks=pytest.mark.skipif(GPU_MISSING is None, reason="this machine may have a GPU"),
        ),
        pytest.param(
            "device=gpu",
            "device",
            marks=pytest.mark.skipif(GPU_MISSING is None, reason="this machine may have a GPU"),
        ),
        ("train.cache_dir={file}/cache", "train.cache_dir"),
        ("data.split.folds=100", "data.split.folds"),
    ],
)
def test_checks_of_the_machine_fail_before_anything_is_created(tmp_path, override, key):
    """The device, the precision, the cache folders and the data's split are checked before the tracking
    store is opened; the GPU checks without TensorFlow's import where the machine has none."""
    (tmp_path / "file").write_text("a file, not a folder")
    proc = run_failing(tmp_path, override.format(file=tmp_path / "file"))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"configuration error: {key}: " in proc.stderr and "Traceback" not in proc.stderr
    if key in ("device", "precision"):
        assert GPU_MISSING in proc.stderr  # said by the check that needs no TensorFlow
    assert created(tmp_path / "cwd") == [], "no MLflow store, artifact or cache folder before the checks pass"


@pytest.mark.skipif(GPU_MISSING is None, reason="this machine may have a GPU")
def test_a_missing_gpu_is_known_without_importing_tensorflow():
    code = (
        "import sys\n"
        "from iunet_bench.tasks.config import JobConfig\n"
        "from iunet_bench.tasks.prepare import require_gpu\n"
        "from iunet_bench.core.schema import ConfigError\n"
        "for c in (JobConfig(device='gpu'), JobConfig(precision='mixed_bfloat16')):\n"
        "    try:\n"
        "        require_gpu(c)\n"
        "    except ConfigError as e:\n"
        "        print(e)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("device: 'gpu' was asked for") and lines[1].startswith(
        "precision: mixed_bfloat16"
    )
    assert lines[-1] == "False False", proc.stdout + proc.stderr


def test_a_gpu_is_said_missing_only_when_that_is_certain(monkeypatch):
    """`no_gpu` reads the machine's device files and the installed builds, never the framework: it refuses
    only a CPU-only build or a Linux machine without any GPU device file, and leaves every other case to the
    framework's own check (a GPU machine, or a platform whose GPUs have no such files)."""
    import glob
    from importlib import metadata

    installed: dict[str, str] = {}
    devices: list[str] = []

    def version(name):
        if name not in installed:
            raise metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(metadata, "version", version)
    monkeypatch.setattr(
        glob, "glob", lambda pattern: [d for d in devices if d.startswith(pattern.rstrip("*"))]
    )
    monkeypatch.setattr(sys, "platform", "linux")
    devices[:] = ["/dev/nvidia0"]
    installed.update({"tensorflow": "2.21.0", "torch": "2.13.0", "jax": "0.10.2"})
    assert [no_gpu(b) for b in ("tensorflow", "jax", "torch")] == [None, None, None]  # a GPU machine
    installed.update({"tensorflow-cpu": "2.21.0", "torch": "2.13.0+cpu"})
    del installed["tensorflow"]
    assert "tensorflow-cpu" in no_gpu("tensorflow") and "2.13.0+cpu" in no_gpu("torch")
    assert no_gpu("jax") is None  # JAX's GPU plugins are not guessed at: JAX itself decides
    devices[:] = []  # no GPU device file at all
    assert "no GPU device" in no_gpu("jax")
    monkeypatch.setattr(sys, "platform", "darwin")  # Apple's GPUs have no device file: TensorFlow decides
    installed.update({"tensorflow": "2.21.0"})
    del installed["tensorflow-cpu"]
    assert no_gpu("tensorflow") is None


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ("simulator=no_such_robot", "Could not find 'simulator/no_such_robot'"),  # no such group option
        ("session.rounds=[", "no viable alternative"),  # an override Hydra cannot parse
        ("nosuchkey=1", "Could not override 'nosuchkey'"),  # a key Hydra cannot override
        ("seed=${nope}", "Interpolation key 'nope' not found"),  # an interpolation that does not resolve
    ],
)
def test_configuration_errors_hydra_finds_exit_2_like_the_schemas(tmp_path, override, said):
    proc = run_failing(tmp_path, override)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "configuration error: " in proc.stderr and said in proc.stderr
    assert "Traceback" not in proc.stderr
    assert created(tmp_path / "cwd") == []


def test_job_folder_names_are_short_stable_and_flat():
    long = " ".join(f"key{i}=/some/long/path/value/{i}" * 3 for i in range(16))
    name = job_folder(3, long)
    assert re.fullmatch(r"3_[0-9a-f]{8}", name)
    assert job_folder(3, long) == name and job_folder(4, long) == "4_" + name[2:]  # the same overrides
    assert job_folder(3, long + "x") != name


def test_a_sweep_with_many_long_overrides_runs_its_jobs_in_short_flat_folders(tmp_path):
    """Job folders were named after every override: past 255 characters the sweep died before any job
    (`File name too long`), and a path value nested folders. Both jobs here fail on their configuration
    (no compute), each in its own folder, counted by the sweep; the overrides are in the job's
    `.hydra/overrides.yaml` and its run's `job_overrides` tag."""
    sweep = tmp_path / "sweep"
    name = "x" * 200
    overrides = [
        "session.rounds=-1",  # the schema refuses it: each job fails at once
        "seed=1,2",
        f"tracking.run_name={name}",
        f"train.cache_dir={tmp_path / 'a' / 'path' / 'value'}",
        "interact.trainable=[head,bottleneck]",
        "session.pictures=0",
    ]
    proc = run_cli(
        "-m", "experiment=smoke", "progress=false", f"hydra.sweep.dir={sweep}", *overrides, cwd=tmp_path
    )
    assert "File name too long" not in proc.stderr
    assert proc.returncode == 2, proc.stderr[-3000:]  # its jobs failed on their configuration
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name not in ("jobs", "report"))
    assert len(folders) == 2 and all(re.fullmatch(r"[01]_[0-9a-f]{8}", f) for f in folders), folders
    for num, folder in enumerate(folders):
        written = yaml.safe_load((sweep / folder / ".hydra" / "overrides.yaml").read_text())
        assert f"seed={num + 1}" in written and f"tracking.run_name={name}" in written
        assert not (sweep / folder / "a").exists()  # nothing nested
        status = json.loads((sweep / "jobs" / f"{num}.json").read_text())
        assert status["status"] == "FAILED" and status["configuration"] is True
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("iunet_bench").experiment_id])
    jobs = sorted(
        (r for r in runs if r.data.tags.get("kind") == "job"), key=lambda r: r.data.tags["job_overrides"]
    )
    assert [r.info.status for r in jobs] == ["FAILED", "FAILED"]
    assert all(f"tracking.run_name={name}" in r.data.tags["job_overrides"] for r in jobs)
    parent = next(r for r in runs if r.data.tags.get("kind") == "sweep")
    assert parent.data.tags["failed_jobs"] == "2"


def test_a_failed_jobs_line_shows_its_first_problem():
    several = "configuration error: \n  seed: 'x': Input should be a valid integer\n  data.seed: 'x': Input should be"
    assert gist(several) == "configuration error: seed: 'x': Input should be a valid integer (+1 more)"
    assert gist("configuration error: session.rounds: -1: Input should be >= 0") == (
        "configuration error: session.rounds: -1: Input should be >= 0"
    )
    assert gist(
        "In 'config': Could not find 'simulator/x'\n\nAvailable options in 'simulator':\n\tclick"
    ) == ("In 'config': Could not find 'simulator/x'")
    assert gist("") == ""
