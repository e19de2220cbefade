"""Parallel processes against one after another, measured side by side in one run of this script, through
the job's own command line:

1. a sweep: Hydra's basic launcher (jobs one after another) against `hydra/launcher=joblib` (jobs in
   parallel processes, each taking its share of the cores through `threads=auto`);
2. one job: its held-out cases in one process (`session.workers=1`) against worker processes
   (`session.workers=N`, each with cores // N threads).

    python benchmarks/parallel_speed.py [--part sweep|cases|both] [--jobs 4] [--n-jobs 2] [--rounds 5]
                                        [--repeats 1] [override ...]

Every side runs `python -m iunet_bench <overrides>` (default overrides: `experiment=smoke
data.phantom.n_cases=12 data.split.folds=2`: 6 held-out cases), each in a fresh folder with its own MLflow
store and `resume=false`; the baseline and the preprocessed volumes come from one shared cache, warmed first
by a job that is not timed, so every side times sessions only. Prints the wall seconds of each side, their
ratio (sequential / parallel: above 1 means parallel finishes sooner), and whether both sides logged the same
per-case curves (CPU determinism across launchers and processes). Writes runs/benchmarks/parallel_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBSETS = ["[head]", "[bottleneck]", "[head,bottleneck]", "[decoder]", "[all]", "[decoder.0]"]


def cli(args: list[str], cwd: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CI": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "iunet_bench", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: python -m iunet_bench {' '.join(args)}\n{proc.stderr[-3000:]}")
    return seconds


def curves(folder: Path) -> dict:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{folder / 'runs' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], "tags.kind = 'job'")
    out = {}
    for r in runs:
        for key in (k for k in r.data.metrics if k.startswith("dsc/")):
            history = client.get_metric_history(r.info.run_id, key)
            out[(r.data.params["interact.trainable"], key)] = [(m.step, m.value) for m in history]
    return out


def timed(args: list[str], folder: Path) -> float:
    folder.mkdir()
    seconds = cli(args, folder)
    print(f"{folder.name:>10}: {seconds:.1f} s", flush=True)
    return seconds


def largest_difference(a: dict, b: dict) -> float:
    """The largest |DSC difference| between two sides' per-case curves (inf when they hold other curves)."""
    if a.keys() != b.keys():
        return float("inf")
    return max((abs(x[1] - y[1]) for k in a for x, y in zip(a[k], b[k])), default=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["sweep", "cases", "both"], default="both")
    ap.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (layer subsets)")
    ap.add_argument(
        "--n-jobs", type=int, default=2, help="parallel processes (joblib launcher, session.workers)"
    )
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1, help="times each side runs (alternating)")
    ap.add_argument(
        "--sequential",
        nargs="*",
        default=[],
        help="extra overrides of the one-process side only (e.g. threads=1, to tell threads from processes)",
    )
    ap.add_argument(
        "--cache",
        help="use this folder's preprocess/ and baseline/ caches (e.g. runs/cache, where the jobs keep theirs) "
        "instead of fresh ones, so that a big configuration's baseline is not trained again",
    )
    ap.add_argument(
        "overrides", nargs="*", default=["experiment=smoke", "data.phantom.n_cases=12", "data.split.folds=2"]
    )
    a = ap.parse_args()
    result = {"n_jobs": a.n_jobs, "rounds": a.rounds, "overrides": a.overrides, "cores": os.cpu_count()}
    result["machine"] = platform.processor() or platform.machine()
    with tempfile.TemporaryDirectory(prefix="parallel_speed_") as tmp:
        tmp = Path(tmp)
        cache = Path(a.cache).resolve() if a.cache else tmp
        shared = [f"data.cache_dir={cache / 'preprocess'}", f"train.cache_dir={cache / 'baseline'}"]
        job = [*a.overrides, f"session.rounds={a.rounds}", "session.pictures=0", "resume=false", *shared]
        (tmp / "warm").mkdir()
        cli([*job, "session.rounds=0"], tmp / "warm")  # trains and caches the baseline: not timed
        lines = []
        if a.part in ("sweep", "both"):
            sweep = ["-m", *job, "interact.trainable=" + ",".join(SUBSETS[: a.jobs])]
            parallel = ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={a.n_jobs}"]
            basic = [timed(sweep, tmp / f"basic{r}") for r in range(a.repeats)]
            joblib = [timed([*sweep, *parallel], tmp / f"joblib{r}") for r in range(a.repeats)]
            same = curves(tmp / "basic0") == curves(tmp / "joblib0")
            gap = largest_difference(curves(tmp / "basic0"), curves(tmp / "joblib0"))
            ratio = min(basic) / min(joblib)
            result["sweep"] = {
                "jobs": a.jobs,
                "basic_s": basic,
                "joblib_s": joblib,
                "ratio": ratio,
                "same_curves": same,
            }
            lines.append(
                f"sweep of {a.jobs} jobs: basic launcher {min(basic):.1f} s, joblib n_jobs={a.n_jobs} "
                f"{min(joblib):.1f} s: ratio {ratio:.2f}; same per-case curves: {same} (largest DSC difference {gap:.2g})"
            )
        if a.part in ("cases", "both"):
            one = [
                timed([*job, "session.workers=1", *a.sequential], tmp / f"workers1_{r}")
                for r in range(a.repeats)
            ]
            many = [
                timed([*job, f"session.workers={a.n_jobs}"], tmp / f"workers{a.n_jobs}_{r}")
                for r in range(a.repeats)
            ]
            same = curves(tmp / "workers1_0") == curves(tmp / f"workers{a.n_jobs}_0")
            gap = largest_difference(curves(tmp / "workers1_0"), curves(tmp / f"workers{a.n_jobs}_0"))
            ratio = min(one) / min(many)
            result["cases"] = {
                "workers1_s": one,
                f"workers{a.n_jobs}_s": many,
                "ratio": ratio,
                "same_curves": same,
            }
            lines.append(
                f"one job's cases: 1 process {min(one):.1f} s, {a.n_jobs} worker processes {min(many):.1f} s: "
                f"ratio {ratio:.2f}; same per-case curves: {same} (largest DSC difference {gap:.2g})"
            )
    print("\n".join(lines), "(ratio above 1: parallel finishes sooner)")
    out = ROOT / "runs" / "benchmarks" / "parallel_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
