"""`python -m iunet_bench [overrides]`: one benchmark job (or a multirun with `+sweep=...`).

Hydra composes `conf/`; the result is validated here, once, into a typed `JobConfig`, and the job below
never sees the raw DictConfig.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow
# A tracking server that goes away midway: fail in about 30 s (4 retries, 2-16 s apart) rather than MLflow's
# minutes of retries; the run continues on the next start (resume). Set these variables to choose otherwise.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")

import hydra
from omegaconf import DictConfig, OmegaConf

from iunet_bench.core.runtime import in_multirun
from iunet_bench.tasks.config import ConfigError, load_config


def _terminate(signum, frame):  # a scheduler's SIGTERM ends the job like Ctrl-C: runs are closed as KILLED
    raise KeyboardInterrupt(f"signal {signum}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from iunet_bench.analysis.results import format_table
    from iunet_bench.tasks.job import run
    from iunet_bench.tasks.sweep import write_job_status

    signal.signal(signal.SIGTERM, _terminate)
    multirun = in_multirun()
    raw = OmegaConf.to_container(cfg, resolve=True)
    try:
        config = load_config(raw, note=sys.stderr)
        if config.task == "observers":
            from iunet_bench.tasks.observers import run as run_observers

            run_id, metrics, text = run_observers(config)
            print(text, f"\nMLflow run {run_id}", sep="\n")
            if multirun:
                write_job_status("FINISHED" if metrics else "FAILED", "" if metrics else "no case finished")
            elif not metrics:
                sys.exit(1)
            return metrics.get("dsc_interactive")
        summary = run(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        if multirun:  # one bad job never stops the other jobs of a sweep
            from iunet_bench.tracking.tracker import record_failed_job

            write_job_status("FAILED", f"configuration error: {exc}")
            record_failed_job(raw, f"configuration error: {exc}")
            return None
        sys.exit(2)
    except Exception as exc:
        if not multirun:
            raise
        traceback.print_exc()  # the job's run is already closed as FAILED; the sweep goes on
        write_job_status("FAILED", f"{type(exc).__name__}: {exc}")
        return None
    if multirun:
        error = "" if summary.curve else "no case finished (see failures.json)"
        write_job_status("FINISHED" if summary.curve else "FAILED", error)
    for f in summary.failures:
        print(f"FAILED case {f['case_id']} ({f['stage']}): {f['error']}", file=sys.stderr)
    print(format_table(summary))
    from iunet_bench.tracking.tracker import experiment_of, ui_hint

    print(ui_hint(config.tracking.uri, experiment_of(config.tracking.uri, summary.run_id), summary.run_id))
    if not summary.curve and not multirun:
        sys.exit(1)
    return summary.metrics.get("dsc_final")


if __name__ == "__main__":
    main()
    from iunet_bench.tasks.sweep import FAILED_JOBS

    if FAILED_JOBS:  # a sweep whose jobs failed exits non-zero, so CI and schedulers see it
        sys.exit(1)
