"""Compare runs read back from MLflow: one page with a table, the tests, and the paper's figures.

    python -m iunet_bench.analysis.report --sweep layers          # the latest `layers` sweep
    python -m iunet_bench.analysis.report --parent <run id>       # one sweep by its parent run
    python -m iunet_bench.analysis.report                         # every job run of the experiment
    python -m iunet_bench.analysis.report --sweep protocols --reference "iunet ..."   # test against a chosen run

Every number comes from the runs' round records (the `records/<case>.json` artifacts a job logs as each
case finishes), through the same functions the job summarises itself with (`iunet_bench.analysis.results`), so a
sweep that is still running or partly failed is reported on what it has, and the page names what is
missing. Per configuration: mean +- sd DSC at rounds 0, 1, 3, 5 and the last, NoI, NoF, AUC, NSD, effort
AUC, seconds per round, user minutes, failed cases. Tests, on the cases both runs finished: two-sided
Wilcoxon signed-rank of per-case final DSC and of per-case AUC against the reference run (`--reference`,
default the best by AUC), Holm-corrected within each metric over the comparisons; a Friedman test across
all runs on their common cases; and the smallest mean difference in final DSC these cases can detect
(alpha 0.05, power 0.8). The Pareto front: the runs no other run beats on seconds per round, user
minutes, final DSC and AUC at once. Runs with `data.classes` also get a table with one row per class
(each class's sessions summarised as a run of their own).

Written under `--out` (default `runs/reports/<sweep>`): `report.md` and `index.html` (the page),
`report.csv`, `curves.png` (mean DSC per round, 95% band), `effort.png` (DSC against estimated user
minutes), `final_box.png` (final DSC per case), `pareto.png`; `report_classes.csv` (the per-class table, if any).

The modules, by job: `runs` (a run and its records, folds pooled, labels), `read` (runs from MLflow),
`compare` (the tests of `analysis.stats` applied to runs), `render` (the table, notes, page and plots),
`cli` (`report(...)` for a sweep, `main(argv)` for the command line), `errors` (`ReportError`).
"""
