"""Where a job runs: inside a Hydra run or multirun, or called directly (tests, benchmarks, notebooks)."""

from __future__ import annotations

import os
import time
from pathlib import Path


def cores() -> int:
    """CPU cores this process may use (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def in_multirun() -> bool:
    """Whether this job is one of a Hydra multirun (`-m` or a `+sweep=...`)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_dir() -> Path | None:
    """The multirun's folder (shared by its jobs), or None outside a multirun."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().sweep.dir) if in_multirun() else None


def job_overrides() -> str:
    """This multirun job's overrides as one string (how a sweep's report finds which planned jobs have a
    run), "" outside a multirun."""
    from hydra.core.hydra_config import HydraConfig

    return " ".join(str(o) for o in HydraConfig.get().overrides.task) if in_multirun() else ""


def output_dir() -> Path:
    """The job's folder: Hydra's for this job, else a new `runs/jobs/<time>` folder."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    path = Path("runs") / "jobs" / time.strftime("%Y-%m-%d_%H-%M-%S")
    path.mkdir(parents=True, exist_ok=True)
    return path
