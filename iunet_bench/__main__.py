"""`python -m iunet_bench [overrides]`: one job of the configured task (or a multirun with `+sweep=...`).

Hydra composes `conf/`; the result is validated here, once, into a typed `JobConfig`, and the task it names
(`tasks.registry.TASKS`) never sees the raw DictConfig. Two subcommands have command lines of their own:

    python -m iunet_bench report [--sweep NAME | --parent RUN_ID] ...   # analysis.report
    python -m iunet_bench models summary [OVERRIDES...]               # models.__main__
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import hydra
from omegaconf import DictConfig, OmegaConf

from iunet_bench.core.runtime import in_multirun
from iunet_bench.tasks.config import ConfigError, load_config, resolved
from iunet_bench.tasks.sweep import HYDRA_CONFIG_ERRORS  # also registers the sweep job folders' resolver
from iunet_bench.tracking.client import TrackingError, TrackingLost


def _terminate(signum, frame):  # a scheduler's SIGTERM ends the job like Ctrl-C: runs are closed as KILLED
    raise KeyboardInterrupt(f"signal {signum}")


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from iunet_bench.tasks.registry import TASKS
    from iunet_bench.tasks.sweep import write_job_status

    signal.signal(signal.SIGTERM, _terminate)
    multirun = in_multirun()
    raw = OmegaConf.to_container(cfg, resolve=False)  # what a failed job's record shows if it cannot resolve
    config = None
    try:
        raw = resolved(cfg)
        config = load_config(raw, note=sys.stderr)
        summary = TASKS[config.task](config)  # an `Outcome`
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        if multirun:  # one bad job never stops the other jobs of a sweep
            from iunet_bench.tracking.tracker import record_failed_job

            write_job_status("FAILED", f"configuration error: {exc}", configuration=True)
            record_failed_job(raw, f"configuration error: {exc}")
            return None
        sys.exit(2)
    except TrackingError as exc:  # a lost server, a run another job holds: one message, no traceback
        if isinstance(exc, TrackingLost):
            exc.note(_again(config, multirun))
        print(f"error: {exc}", file=sys.stderr)
        if multirun:
            write_job_status("FAILED", str(exc))
            return None
        sys.exit(1)
    except Exception as exc:
        if not multirun:
            raise
        traceback.print_exc()  # the job's run is already closed as FAILED; the sweep goes on
        write_job_status("FAILED", f"{type(exc).__name__}: {exc}")
        return None
    if multirun:
        write_job_status("FINISHED" if summary.finished else "FAILED", summary.error)
    for line in summary.warnings:
        print(line, file=sys.stderr)
    print(summary.text)
    from iunet_bench.tracking.links import experiment_of, ui_hint

    print(ui_hint(config.tracking.uri, experiment_of(config.tracking.uri, summary.run_id), summary.run_id))
    if not summary.finished and not multirun:
        sys.exit(1)
    return summary.value


def _again(config, multirun: bool) -> str:
    """How to continue a job whose tracking server was lost: the same command, `resume` on."""
    if multirun:
        return (
            "Once the server answers again, the same sweep command continues it (finished jobs are skipped)."
        )
    args = [a for a in sys.argv[1:] if not a.lstrip("+").startswith("resume=")]
    args += [] if config is None or config.resume else ["resume=true"]
    return f"Once the server answers again, this continues the run: python -m iunet_bench {shlex.join(args)}"


def _report(argv: list[str]) -> int | None:
    from iunet_bench.analysis.report.cli import main as report_main

    return report_main(argv)


def cli(argv: list[str]) -> int | None:
    """`report ...` and `models summary ...` go to their own command lines; everything else is Hydra's
    (overrides, `-m`, `--help`). A sweep whose jobs failed exits 1 from its callback (`tasks.sweep`)."""
    if argv[:1] == ["report"]:
        return _report(argv[1:])
    if argv[:1] == ["models"]:
        from iunet_bench.models.__main__ import main as models_main

        return models_main(argv[1:])
    return _hydra_app()


def _hydra_app() -> int | None:
    """`main` through Hydra's command line, its configuration errors exiting 2 as the schema's do.

    Hydra reports whatever it catches (an override it cannot parse, a group option that does not exist, a
    key it cannot override) and exits 1, unless HYDRA_FULL_ERROR=1 hands the error on to its caller: set
    here, so that its configuration errors are told apart (`tasks.sweep.HYDRA_CONFIG_ERRORS`, and the
    schema's ConfigError from the sweep callback). Any other error is reported as Hydra reports it (the
    traceback from the task on), or whole when the user set HYDRA_FULL_ERROR=1."""
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        main()
    except (*HYDRA_CONFIG_ERRORS, ConfigError) as exc:
        if full:
            traceback.print_exc()
        cause = f"\n{exc.__cause__}" if exc.__cause__ is not None and not full else ""
        print(f"configuration error: {exc}{cause}", file=sys.stderr)
        return 2
    except Exception as exc:
        if full:
            raise
        tb = exc.__traceback__  # Hydra's own report: the frames from the task function on
        while tb is not None and tb.tb_frame.f_code.co_name != "run_job":
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb.tb_next if tb is not None else exc.__traceback__)
        print(
            "\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", file=sys.stderr
        )
        return 1
    return None


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
