"""Every task `python -m iunet_bench task=NAME` runs, by name: `__main__` validates the configuration, looks
its task up in `TASKS`, runs it and prints its `Outcome`.

| task | runs | schema of its own |
| --- | --- | --- |
| `interactive` | `tasks.job.run`: the benchmark job | (the job's) |
| `cv` | `tasks.job.run` on round 0 only | `tasks.cv`: two values fixed before validation |
| `observers` | `tasks.observers.run`: the paper's second experiment | `tasks.observers_config` (`observers.*`) |

A new task is one entry here, its name in `JobConfig.task` (a test keeps the two equal), and its schema
composed into `JobConfig` (`tasks.config`). The run functions are imported when called: looking a task up
imports no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iunet_bench.tasks.config import JobConfig


@dataclass(frozen=True)
class Outcome:
    """What a task's run leaves for `__main__` to say and return."""

    text: str  # its result table, on stdout
    run_id: str  # its MLflow run
    finished: bool  # a case finished; else the command exits 1 (in a sweep: the job's status is FAILED)
    value: float | None  # returned to Hydra (a sweeper's objective)
    error: str = ""  # why not finished: the sweep job's status file
    warnings: tuple[str, ...] = ()  # on stderr, before the result (failed cases)


def run_job(config: JobConfig) -> Outcome:
    """`task=interactive` and `task=cv`: the job, its summary table and its failed cases."""
    from iunet_bench.analysis.classes import format_classes
    from iunet_bench.analysis.results import format_table
    from iunet_bench.tasks.job import run

    summary = run(config)
    return Outcome(
        text="\n".join(t for t in (format_table(summary), format_classes(summary.classes)) if t),
        run_id=summary.run_id,
        finished=bool(summary.curve),
        value=summary.metrics.get("dsc_final"),
        error="" if summary.curve else "no case finished (see failures.json)",
        warnings=tuple(f"FAILED case {f['case_id']} ({f['stage']}): {f['error']}" for f in summary.failures),
    )


def run_observers(config: JobConfig) -> Outcome:
    """`task=observers`: the observers' table (its failed cases are said as they happen)."""
    from iunet_bench.tasks.observers import run

    run_id, metrics, text = run(config)
    return Outcome(
        text=text,
        run_id=run_id,
        finished=bool(metrics),
        value=metrics.get("dsc_interactive"),
        error="" if metrics else "no case finished",
    )


TASKS: dict[str, Callable[[JobConfig], Outcome]] = {
    "interactive": run_job,
    "cv": run_job,  # with `tasks.cv.fixed_values`, set by `load_config`
    "observers": run_observers,
}
