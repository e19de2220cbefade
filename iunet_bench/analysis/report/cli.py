"""Compare runs read back from MLflow: one page with a table, the tests, and the paper's figures.

    python -m iunet_bench.analysis.report --sweep layers          # the latest `layers` sweep
    python -m iunet_bench.analysis.report --parent <run id>       # one sweep by its parent run
    python -m iunet_bench.analysis.report                         # every job run of the experiment
    python -m iunet_bench.analysis.report --sweep protocols --reference "iunet ..."   # test against a chosen run

What the page holds: the package's docstring (`iunet_bench.analysis.report`). `report(...)` is the library's
entry (a sweep writes its own page with it); `main(argv)` is the command line and returns its exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.analysis.report.read import missing_jobs, read_run, select_runs
from iunet_bench.analysis.report.render import build_report


def report(
    uri: str, experiment: str, sweep: str | None, parent: str | None, out: Path, reference: str | None = None
) -> str:
    """Read the runs of a sweep (`parent` run id, or the latest parent of `sweep`; every job run of
    `experiment` when neither is given) from the MLflow store at `uri`, write the page under `out` and return
    it as markdown. Raises `ReportError` when there is nothing to report on."""
    import mlflow

    from iunet_bench.tracking.client import Client, Limits
    from iunet_bench.tracking.tracker import store_uri

    # the page is the output: no MLflow download bar for each run's records (at a sweep's end, or here)
    client = Client(mlflow.MlflowClient(store_uri(uri)), uri, Limits(progress=False))
    found, parent_run = select_runs(client, experiment, sweep, parent)
    runs = [read_run(client, r) for r in found]
    return build_report(runs, out, reference, missing_jobs(client, parent_run))


def main(argv: list[str] | None = None) -> int:
    """The command line (`python -m iunet_bench.analysis.report`): write the page and print it; return the
    exit code (2, with the message on stderr, when there is nothing to report on as asked)."""
    parser = argparse.ArgumentParser(
        prog="python -m iunet_bench.analysis.report", description=__doc__.splitlines()[0]
    )
    from iunet_bench.tracking.tracker import TrackingConfig

    defaults = TrackingConfig()  # the job's own defaults: the report reads where jobs write
    parser.add_argument("--uri", default=defaults.uri, help="MLflow tracking URI")
    parser.add_argument("--experiment", default=defaults.experiment)
    parser.add_argument("--sweep", help="sweep name (tag `sweep`): its latest parent run")
    parser.add_argument("--parent", help="parent run id of a sweep")
    parser.add_argument(
        "--reference", help="run id (or its prefix, or its name) the others are tested against"
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for the page, its table and plots")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad option (2): argparse has printed why
        return int(exc.code or 0)
    out = args.out or Path("runs") / "reports" / (args.sweep or args.parent or "all")
    try:
        print(report(args.uri, args.experiment, args.sweep, args.parent, out, args.reference))
    except ReportError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"\nwritten: {out / 'index.html'} (and report.md, report.csv, curves.png, effort.png, final_box.png, pareto.png)"
    )
    return 0
