"""`python -m iunet_bench.analysis.report`: the command line of `cli.main`."""

from iunet_bench.analysis.report.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
