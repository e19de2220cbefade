"""The report on hand-made runs (its tests against the reference, pooled folds, the page, the command line),
against values worked out independently; the statistics themselves: tests/test_stats.py."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from iunet_bench.analysis.report.compare import (
    comparisons,
    detectable_difference,
    pairwise_tests,
)
from iunet_bench.analysis.report.errors import ReportError
from iunet_bench.analysis.report.render import build_report
from iunet_bench.analysis.report.runs import RunData, pool_folds
from iunet_bench.session.records import RoundRecord


def run(
    name: str, finals, start: float = 0.5, seconds: float = 10.0, round_s: float = 1.0, cases=None
) -> RunData:
    """A run whose every case goes from `start` to its final DSC in one round of `seconds` user time."""
    records = []
    for i, final in enumerate(finals):
        case = (cases or [f"case_{j}" for j in range(len(finals))])[i]
        records += [
            RoundRecord(case, 0, start, 5.0, nsd=start),
            RoundRecord(
                case,
                1,
                float(final),
                2.0,
                refine_seconds=round_s,
                effort={"seconds": seconds},
                nsd=float(final),
            ),
        ]
    return RunData(name, name, {"interact.lr": name}, records)


def test_the_detectable_difference_follows_the_normal_approximation():
    rng = np.random.default_rng(0)
    best = rng.uniform(0.7, 0.9, 10)
    diff = rng.normal(0.0, 0.02, 10)
    runs = [run("best", best), run("other", best - diff)]
    expected = (
        (1.959963984540054 + 0.8416212335729143) * np.std(diff, ddof=1) / math.sqrt(10) / math.sqrt(0.955)
    )
    assert detectable_difference(runs, runs[0]) == pytest.approx(expected, rel=1e-9)


def test_holm_adjusts_each_metric_over_the_comparisons_against_the_reference():
    """Holm by hand: the i-th smallest of m p-values times (m - i), made monotone and capped at 1."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.7, 0.8, 10)
    ref = run("ref", base + 0.05)
    others = [run(f"r{i}", base + rng.normal(0.01 * i, 0.01, 10)) for i in range(3)]
    tests = comparisons([ref, *others], ref)
    raw = sorted((tests[r.run_id]["p_final"], r.run_id) for r in others)
    m, running = len(raw), 0.0
    for i, (p, rid) in enumerate(raw):
        running = max(running, min(1.0, (m - i) * p))
        assert tests[rid]["p_final_holm"] == pytest.approx(running, rel=1e-12)
        assert tests[rid]["n"] == 10


def test_the_page_holds_the_table_the_tests_the_figures_and_what_is_missing(tmp_path):
    rng = np.random.default_rng(2)
    base = rng.uniform(0.7, 0.8, 8)
    runs = [run("best", base + 0.05)] + [run(f"r{i}", base + rng.normal(0, 0.01, 8)) for i in range(3)]
    partial = run("partial", base[:5], cases=[f"case_{j}" for j in range(5)])
    partial.status, partial.expected_cases = "RUNNING", [f"case_{j}" for j in range(8)]
    text = build_report([*runs, partial], tmp_path, missing_jobs=["interact.lr=9"])
    assert "Friedman test across the 5 runs on their 5 common cases" in text and "Holm" in text
    assert "lr=partial: RUNNING, missing cases: case_5, case_6, case_7" in text
    assert "Jobs of the sweep with no run yet: interact.lr=9" in text
    for name in ("index.html", "report.md", "curves.png", "effort.png", "final_box.png", "pareto.png"):
        assert (tmp_path / name).stat().st_size > 0
    with (tmp_path / "report.csv").open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    assert {"DSC r0", "DSC last", "NoI@85", "NoF@90", "NSD last", "p final (Holm)", "Pareto"} <= set(header)
    by_run = {row[0]: dict(zip(header, row)) for row in rows}
    assert by_run["lr=best"]["p final (Holm)"] == "reference"
    assert by_run["lr=partial"]["cases"] == "5/8" and by_run["lr=partial"]["n"] == "5"
    mean, sd = by_run["lr=best"]["DSC last"].split(" ± ")
    assert float(mean) == pytest.approx(np.mean(base + 0.05), abs=1e-3)
    assert float(sd) == pytest.approx(np.std(base + 0.05, ddof=1), abs=1e-3)


def test_a_chosen_reference_is_used_and_an_unknown_one_is_named(tmp_path):
    runs = [run("a", [0.9, 0.8, 0.7]), run("b", [0.6, 0.7, 0.8])]
    text = build_report(runs, tmp_path, reference="b")
    assert "Reference: lr=b (chosen with --reference)" in text
    with pytest.raises(ReportError, match="--reference 'zz'"):
        build_report(runs, tmp_path, reference="zz")


def test_folds_of_one_configuration_are_pooled_by_case_and_models_are_tested_pairwise(tmp_path):
    """A cross-validation: each (model, fold) run holds out other cases; the report compares models on all
    cases at once, and tests every pair of models (Holm over the pairs)."""
    rng = np.random.default_rng(3)
    truth = rng.uniform(0.6, 0.8, 12)
    runs = []
    for model, shift in (("iunet", 0.05), ("cicek", 0.0), ("fcn", -0.05)):
        for fold in range(3):
            cases = [f"case_{j}" for j in range(fold * 4, fold * 4 + 4)]
            r = run(f"{model}-{fold}", truth[fold * 4 : fold * 4 + 4] + shift, cases=cases)
            r.params = {"model.name": model, "data.split.fold": str(fold)}
            runs.append(r)
    pooled = pool_folds(runs)
    assert len(pooled) == 3 and all(len(r.cases) == 12 for r in pooled)
    assert pooled[0].name == "iunet-0 (folds 0,1,2)"
    tests = pairwise_tests(pooled)
    assert len(tests) == 3 and all(n == 12 for _, _, n in tests.values())
    raw = sorted(p for p, _, _ in tests.values())
    assert max(q for _, q, _ in tests.values()) == pytest.approx(
        max(min(1.0, 3 * raw[0]), 2 * raw[1], raw[2])
    )
    text = build_report(runs, tmp_path)
    assert "every pair of runs" in text and "model=iunet" in text and "n=12" in text


def test_the_command_line_turns_a_report_error_into_exit_code_2_and_its_message(
    tmp_path, monkeypatch, capsys
):
    from iunet_bench.analysis.report import cli

    with pytest.raises(ReportError, match="no run has a finished case"):
        build_report([RunData("empty", "empty", {}, [])], tmp_path)

    def no_sweep(*args, **kwargs):
        raise ReportError("report: no sweep named 'zz'")

    monkeypatch.setattr(cli, "report", no_sweep)
    assert cli.main(["--sweep", "zz", "--out", str(tmp_path)]) == 2
    assert "report: no sweep named 'zz'" in capsys.readouterr().err
    monkeypatch.setattr(cli, "report", lambda *args, **kwargs: "| table |")
    assert cli.main(["--out", str(tmp_path)]) == 0 and "| table |" in capsys.readouterr().out
    assert cli.main(["--bogus"]) == 2  # argparse's own exit code, returned


def test_reading_the_runs_back_draws_no_download_bar(tmp_path, capfd):
    """The page is the output: reading each run's records from the store (at a sweep's end, or on the command
    line) prints no MLflow 'Downloading artifacts' bar."""
    from iunet_bench.analysis.report.cli import report
    from iunet_bench.tracking import resume
    from iunet_bench.tracking.tracker import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rng = np.random.default_rng(0)
    for lr in ("a", "b"):
        tracker = Tracker(uri, "bars", str(tmp_path / "art"), tags={"kind": "job", "held_out_cases": "c0,c1"})
        tracker.log_params({"interact.lr": lr})
        for rec in (run(lr, rng.uniform(0.6, 0.9, 2), cases=["c0", "c1"]).records[i : i + 2] for i in (0, 2)):
            resume.save_case(tracker, tmp_path / lr, rec[0].case_id, rec)
        tracker.end()
    capfd.readouterr()
    text = report(uri, "bars", None, None, tmp_path / "page")
    assert "lr=a" in text and "lr=b" in text  # both runs' records were read
    assert "Downloading artifacts" not in capfd.readouterr().err


def test_a_sweep_of_jobs_started_one_by_one_is_reported_by_its_name(tmp_path):
    """Jobs given one `tracking.sweep` name but started separately (no multirun, so no parent run) are that
    sweep's runs; jobs of another name are not, and a name no run carries is an error naming it."""
    from iunet_bench.analysis.report.cli import report
    from iunet_bench.tracking import resume
    from iunet_bench.tracking.tracker import Tracker

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rng = np.random.default_rng(3)
    for lr, sweep in (("a", "by_hand"), ("b", "by_hand"), ("c", "other")):
        tags = {"kind": "job", "sweep": sweep, "held_out_cases": "c0,c1"}
        tracker = Tracker(uri, "hand", str(tmp_path / "art"), tags=tags)
        tracker.log_params({"interact.lr": lr})
        records = run(lr, rng.uniform(0.6, 0.9, 2), cases=["c0", "c1"]).records
        for case in (records[0:2], records[2:4]):
            resume.save_case(tracker, tmp_path / lr, case[0].case_id, case)
        tracker.end()
    text = report(uri, "hand", "by_hand", None, tmp_path / "page")
    assert "lr=a" in text and "lr=b" in text and "lr=c" not in text
    with pytest.raises(ReportError, match="no sweep named 'zz'"):
        report(uri, "hand", "zz", None, tmp_path / "page2")


def test_a_run_is_labelled_by_its_preset_and_by_what_differs_within_that_preset():
    """Three models: the model's name stands for its keys; two widths of one model keep their width."""
    from iunet_bench.analysis.report.runs import label, varying_params

    def params(**kw):
        return RunData(str(kw), "r", {f"model.{k}": str(v) for k, v in kw.items()}, [])

    runs = [
        params(name="iunet", base_filters=16, depth=3),
        params(name="unet3d_cicek", base_filters=16, depth=3),
        params(name="unet3d_cicek", base_filters=32, depth=3),
        params(name="dilated_fcn", filters=16),
    ]
    labels = [label(r, varying_params(runs)) for r in runs]
    assert labels == [
        "model=iunet, base_filters=16",
        "model=unet3d_cicek, base_filters=16",
        "model=unet3d_cicek, base_filters=32",
        "model=dilated_fcn",
    ]
    assert [label(r, varying_params([runs[0], runs[1], runs[3]])) for r in (runs[0], runs[1], runs[3])] == [
        "model=iunet",
        "model=unet3d_cicek",
        "model=dilated_fcn",
    ]
    # a protocol's name stands for its robot and rounds too, though neither is its own preset's key
    protocols = [
        RunData("a", "a", {"protocol.name": "ritm", "simulator.name": "clicks", "session.rounds": "20"}, []),
        RunData("b", "b", {"protocol.name": "cvpr25", "simulator.name": "boxes", "session.rounds": "5"}, []),
    ]
    assert [label(r, varying_params(protocols)) for r in protocols] == ["protocol=ritm", "protocol=cvpr25"]
