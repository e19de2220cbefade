import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CONF = ROOT / "conf"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_cli(*overrides: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m iunet_bench` as a user would, with everything it writes under `cwd`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "iunet_bench", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def composed(*overrides: str):
    """The project's Hydra config composed with overrides, without running anything."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def group(name: str, *overrides: str) -> dict:
    """One config group (e.g. 'simulator', 'data') of the composed config, as a plain dict."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(composed(*overrides)[name], resolve=True)


@pytest.fixture
def compose():
    return composed
