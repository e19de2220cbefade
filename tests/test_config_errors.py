"""Configuration errors as a user meets them on the command line: every problem in one message, exit 2
whether the schema or Hydra itself refuses a value, and nothing created (no MLflow store, no cache folder)
before every check, the machine's included, has passed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from iunet_bench.core.runtime import no_gpu
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
