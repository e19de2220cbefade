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
# Device files a GPU driver makes on Linux: NVIDIA, WSL 2's GPU, AMD ROCm, and any other GPU's render nodes
GPU_DEVICE_FILES = ("/dev/nvidia*", "/dev/dxg", "/dev/kfd", "/dev/dri")


def no_gpu(backend: str) -> str | None:
    """Why `backend` can see no GPU on this machine, when that is known without importing it (a job that asks
    for a GPU, or mixed precision, where there is none then fails in a second rather than after the
    framework's import); None when only the framework can tell (its `configure` decides)."""
    import glob
    import sys
    from importlib import metadata

    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return ""

    if backend == "tensorflow" and version("tensorflow-cpu") and not version("tensorflow"):
        return "the installed TensorFlow is its CPU-only build, tensorflow-cpu (a GPU needs `.[gpu]`)"
    if backend == "torch" and version("torch").endswith("+cpu"):
        return f"the installed PyTorch is a CPU-only build, {version('torch')} (a GPU needs a CUDA build)"
    if sys.platform.startswith("linux") and not any(glob.glob(p) for p in GPU_DEVICE_FILES):
        return f"this machine has no GPU device ({', '.join(GPU_DEVICE_FILES)})"
    return None


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
