"""`python -m iunet_bench`'s subcommands: `report ...` and `models summary ...` reach their own command lines;
everything else is Hydra's (the jobs' tests run those)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def python_m(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "iunet_bench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_models_summary_is_a_subcommand():
    proc = python_m("models", "summary", "experiment=smoke", "device=cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "parameters" in proc.stdout and "bottleneck" in proc.stdout


def test_models_without_summary_prints_the_models_usage():
    proc = python_m("models")
    assert proc.returncode == 2 and "summary" in proc.stdout + proc.stderr


def test_report_is_a_subcommand():
    proc = python_m("report", "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--sweep" in proc.stdout and "--parent" in proc.stdout


def test_a_bad_override_is_still_hydras():
    proc = python_m("nosuchkey=1")
    assert proc.returncode != 0 and "nosuchkey" in proc.stderr
