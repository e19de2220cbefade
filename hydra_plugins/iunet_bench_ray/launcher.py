"""The Ray launcher: `ray.init(**hydra.launcher.ray.init)`, one `ray.remote(**hydra.launcher.ray.remote)` task
per job, every job's result gathered before the sweep goes on."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)


def _run_job(hydra_context, sweep_config, task_function, singleton_state, cwd: str) -> JobReturn:
    """In a Ray worker: the job in the launching process's folder (a disk the nodes share, as the sweep
    folder must be), with Hydra's state as the launching process set it."""
    import ray

    if not os.path.isdir(cwd):
        raise FileNotFoundError(
            f"the sweep was launched from {cwd}, which this Ray node ({ray.util.get_node_ip_address()}) "
            "does not have: launch sweeps from a folder on a disk every node shares"
        )
    os.chdir(cwd)
    setup_globals()
    Singleton.set_state(singleton_state)
    with open_dict(sweep_config):
        sweep_config.hydra.job.id = ray.get_runtime_context().get_task_id()
    HydraConfig.instance().set_config(sweep_config)
    return run_job(
        hydra_context=hydra_context,
        task_function=task_function,
        config=sweep_config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )


class RayLauncher(Launcher):
    def __init__(self, ray: DictConfig) -> None:
        self.ray_cfg = ray
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray

        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Ray launcher: {len(job_overrides)} jobs, sweep folder {self.config.hydra.sweep.dir}")
        if not ray.is_initialized():
            ray.init(**OmegaConf.to_container(self.ray_cfg.init, resolve=True))
        task = ray.remote(**OmegaConf.to_container(self.ray_cfg.remote, resolve=True))(_run_job)
        jobs: list[tuple[list[str], DictConfig, Any]] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.num = idx
            ref = task.remote(
                self.hydra_context, sweep_config, self.task_function, Singleton.get_state(), os.getcwd()
            )
            jobs.append((list(overrides), sweep_config, ref))
        return [_result(ray, *job) for job in jobs]


def _result(ray, overrides: list[str], sweep_config: DictConfig, ref) -> JobReturn:
    """The job's own JobReturn; a job whose task died (its worker or node lost, after Ray's retries) comes
    back FAILED with Ray's error, after the other jobs, which are all waited for."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:
        return JobReturn(
            overrides=overrides, hydra_cfg=sweep_config, status=JobStatus.FAILED, _return_value=exc
        )
