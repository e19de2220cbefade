"""iunet_bench's sweeper (`conf/hydra/sweeper/iunet_bench.yaml`): Hydra's basic sweeper, but a job Hydra
cannot compose fails alone.

Hydra's `BasicSweeper` composes every job of a batch before it launches any (`validate_batch_is_legal`), so
one value Hydra rejects (`-m simulator=scribble_ideal,no_such_robot`: no such option) ends the whole sweep
before its valid jobs run. This one hands its launcher (any: basic, joblib, submitit, Ray) to
`iunet_bench.tasks.sweep.ComposableJobs`, which composes each job, records the ones Hydra rejects as FAILED
jobs of the sweep and launches the others. Hydra loads sweepers from the `hydra_plugins` package only, so
this adapter lives here and the work in `iunet_bench.tasks.sweep`; Hydra imports this module at every start,
so it imports nothing more.
"""

from __future__ import annotations

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper


class JobSweeper(BasicSweeper):
    """`BasicSweeper` (same `params`, `max_batch_size`, cartesian product, job order and numbers) whose
    launcher is handed only the jobs Hydra can compose."""

    def setup(self, *, hydra_context, task_function, config) -> None:
        from iunet_bench.tasks.sweep import ComposableJobs

        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self.launcher = ComposableJobs(self.launcher, hydra_context.config_loader, config)

    def validate_batch_is_legal(self, batch) -> None:
        """Nothing to do here: `ComposableJobs` composes each job, and a job that fails fails alone."""
