"""A sweep's wall time with jobs one after another (Hydra's basic launcher) against jobs in parallel
processes (`hydra/launcher=joblib`, each job taking its share of the cores through `threads=auto`),
measured side by side in one run of this script, through the job's own command line.

    python benchmarks/sweep_speed.py [--jobs 4] [--n-jobs 2] [--rounds 5] [--repeats 1] [override ...]

Both sides run the same multirun, `python -m iunet_bench -m <overrides> interact.trainable=<one per job>`
(default overrides: `experiment=smoke`), each in a fresh folder with its own MLflow store, `resume=false`;
the baseline and the preprocessed volumes come from one shared cache, warmed first by a job that is not
timed, so both sides time the sweep's sessions only. Prints the wall seconds of each side, their ratio
(basic / joblib: above 1 means the parallel launcher finishes sooner), and whether both sides logged the
same per-case curves (CPU determinism across launchers). Writes runs/benchmarks/sweep_speed.json.
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
        for key in (k for k in r.data.metrics if k.startswith("dsc.")):
            history = client.get_metric_history(r.info.run_id, key)
            out[(r.data.params["interact.trainable"], key)] = [(m.step, m.value) for m in history]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (layer subsets)")
    ap.add_argument("--n-jobs", type=int, default=2, help="parallel processes of the joblib launcher")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=1, help="times each side runs (alternating)")
    ap.add_argument("overrides", nargs="*", default=["experiment=smoke"])
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep_speed_") as tmp:
        tmp = Path(tmp)
        shared = [f"data.cache_dir={tmp / 'pre'}", f"train.cache_dir={tmp / 'baseline'}"]
        job = [*a.overrides, f"session.rounds={a.rounds}", "session.pictures=0", "resume=false", *shared]
        (tmp / "warm").mkdir()
        cli([*job, "session.rounds=0"], tmp / "warm")  # trains and caches the baseline: not timed
        sweep = ["-m", *job, "interact.trainable=" + ",".join(SUBSETS[: a.jobs])]
        sides = {"basic": [], "joblib": []}
        for rep in range(a.repeats):
            for side in ("basic", "joblib"):
                folder = tmp / f"{side}{rep}"
                folder.mkdir()
                extra = (
                    [] if side == "basic" else ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={a.n_jobs}"]
                )
                sides[side].append(cli([*sweep, *extra], folder))
                print(f"{side:>6}: {sides[side][-1]:.1f} s", flush=True)
        same = curves(tmp / "basic0") == curves(tmp / "joblib0")
    basic, parallel = min(sides["basic"]), min(sides["joblib"])
    result = {
        "jobs": a.jobs,
        "n_jobs": a.n_jobs,
        "rounds": a.rounds,
        "overrides": a.overrides,
        "cores": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "basic_seconds": sides["basic"],
        "joblib_seconds": sides["joblib"],
        "ratio_basic_over_joblib": basic / parallel,
        "same_curves": same,
    }
    print(
        f"{a.jobs} jobs: basic launcher {basic:.1f} s, joblib n_jobs={a.n_jobs} {parallel:.1f} s: "
        f"ratio {basic / parallel:.2f} (above 1: parallel is faster); same per-case curves: {same}"
    )
    out = ROOT / "runs" / "benchmarks" / "sweep_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
