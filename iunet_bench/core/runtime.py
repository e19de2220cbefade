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


BACKENDS = ("tensorflow", "jax", "torch")


def use_backend(backend: str, device: str = "auto") -> None:
    """Make Keras run on `backend` (the `backend` key): sets KERAS_BACKEND, which Keras reads once, when it
    is first imported; with `device=cpu` also hides the GPUs from that framework. Raises RuntimeError when
    Keras was already imported on another backend in this process (a multirun over backends in one
    process: run it with a launcher that starts a process per job)."""
    import sys

    if backend not in BACKENDS:
        raise ValueError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != backend:
            raise RuntimeError(
                f"backend: {backend!r} was asked for but Keras already runs on {running!r} in this process "
                "(Keras picks its backend once, at its first import; run each backend in its own process)"
            )
        return
    os.environ["KERAS_BACKEND"] = backend
    if device == "cpu":
        if backend == "jax":
            os.environ["JAX_PLATFORMS"] = "cpu"
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1" if backend == "tensorflow" else ""
