import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
CONF = ROOT / "conf"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# One folder of caches shared by the whole test session. An environment variable, not a module global:
# pytest imports this file as `conftest` and test modules import it again as `tests.conftest`.
_SESSION_CACHE = Path(
    os.environ.setdefault("IUNET_BENCH_TEST_CACHES", tempfile.mkdtemp(prefix="iunet_bench_tests_"))
)


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's caches once every test is done: in the process that launched the pytest-xdist
    workers (they inherit the folder through the environment, and must not remove it under each other), or
    in the one process of a run without them."""
    if not hasattr(session.config, "workerinput"):
        shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


def shared_data_cache() -> str:
    """An override pointing `data.cache_dir` at one preprocessing cache for the whole test session: the
    smoke phantoms are generated and preprocessed once (about 10 s a job) instead of in every test's own
    runs/. Safe to share: entries are keyed by content, settings and the data code."""
    return f"data.cache_dir={_SESSION_CACHE / 'preprocess'}"


def shared_train_cache() -> str:
    """An override pointing `train.cache_dir` at one baseline cache for the session, for tests that do not
    assert whether their baseline was trained or loaded (the smoke baseline is then trained once)."""
    return f"train.cache_dir={_SESSION_CACHE / 'baseline'}"


def run_cli(*overrides: str, cwd: Path, timeout: float = 600, pythonpath=()) -> subprocess.CompletedProcess:
    """Run `python -m iunet_bench` as a user would, with everything it writes under `cwd` (but for the
    session's shared preprocessing cache); `pythonpath`: folders put after the repository on PYTHONPATH
    (where a plug-in's module lives)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, (ROOT, *pythonpath))), "CI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "iunet_bench", *overrides, shared_data_cache()],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",  # MLflow prints emoji; the test reads the text, whatever the locale
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
