"""Two commits' jobs side by side: seconds per round and the curves (a benchmark, not a test).

    python benchmarks/commits_speed.py OLD NEW [--reps 3] [override ...]

Runs `python -m iunet_bench` exactly as a user would, from a clean export of each commit (`git archive`
into runs/benchmarks/commits/<sha>/src), with the same overrides, its own MLflow store per run (so nothing
is resumed) and one baseline cache per commit (its first run trains the baseline: untimed warm-up). The
repetitions alternate OLD, NEW, NEW, OLD, ... so machine noise hits both alike. Reported: the median of the
rounds' `refine_seconds` (rounds.csv: weight map, fine-tuning and prediction; the robot is timed apart) and
of whole jobs' wall seconds, their ratio NEW/OLD, and whether the two commits' DSC curves are identical
to the last digit (every case, every round).

Example (issue 24's check that the TensorFlow round did not slow down):

    python benchmarks/commits_speed.py 673431b HEAD --reps 3 session.max_cases=2
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def export(rev: str, base: Path) -> tuple[str, Path]:
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short=10", rev], check=True, capture_output=True, text=True
    ).stdout.strip()
    src = base / sha / "src"
    if not (src / "iunet_bench").is_dir():
        src.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", sha], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive.stdout, check=True)
    return sha, src


def run_job(src: Path, out: Path, cache: Path, overrides: list[str]) -> tuple[float, list[dict]]:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "iunet_bench", *overrides, "progress=false",
        f"tracking.uri=sqlite:///{out}/mlflow.db", f"hydra.run.dir={out}/run",
        f"train.cache_dir={cache}/baseline", f"data.cache_dir={cache}/preprocess",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(src)}
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(
            f"{src}: the job failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    with open(out / "run" / "rounds.csv", newline="") as f:
        return wall, list(csv.DictReader(f))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--reps", type=int, default=3, help="timed jobs per commit, interleaved")
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "commits"))
    ap.add_argument("overrides", nargs="*", help="config overrides of both jobs, e.g. session.max_cases=2")
    args = ap.parse_intermixed_args()
    base = Path(args.out).resolve()
    revs = [export(args.old, base), export(args.new, base)]
    print(f"old {revs[0][0]}, new {revs[1][0]}; overrides: {' '.join(args.overrides) or '(none)'}")

    rounds: dict[str, list[float]] = {sha: [] for sha, _ in revs}
    walls: dict[str, list[float]] = {sha: [] for sha, _ in revs}
    curves: dict[str, list[tuple[str, str, str]]] = {}
    for sha, src in revs:  # warm-up: trains (or loads) each commit's baseline, not timed
        _, rows = run_job(src, base / sha / "warmup", base / sha / "cache", args.overrides)
        curves[sha] = [(r["case_id"], r["round"], r["dsc"]) for r in rows]
        print(f"  warm-up {sha}: {len(rows)} rounds")
    for rep in range(args.reps):
        order = revs if rep % 2 == 0 else revs[::-1]
        for sha, src in order:
            wall, rows = run_job(src, base / sha / f"rep{rep}", base / sha / "cache", args.overrides)
            walls[sha].append(wall)
            rounds[sha] += [float(r["refine_seconds"]) for r in rows if int(r["round"]) > 0]
            print(f"  rep {rep} {sha}: job {wall:.1f} s, median round {statistics.median(rounds[sha]):.3f} s")

    (old, _), (new, _) = revs
    med = {sha: statistics.median(v) for sha, v in rounds.items()}
    wmed = {sha: statistics.median(v) for sha, v in walls.items()}
    print(f"\n{'':<12}{'round s (median)':>18}{'job s (median)':>16}{'rounds':>8}")
    for sha in (old, new):
        print(f"{sha:<12}{med[sha]:>18.3f}{wmed[sha]:>16.1f}{len(rounds[sha]):>8}")
    print(f"new/old: round {med[new] / med[old]:.3f}x, job {wmed[new] / wmed[old]:.3f}x")
    same = curves[old] == curves[new]
    print(f"DSC curves identical to the last digit: {same} ({len(curves[old])} case-rounds)")
    if not same:
        diff = [(a, b) for a, b in zip(curves[old], curves[new]) if a != b]
        print(f"  first differences: {diff[:3]}")


if __name__ == "__main__":
    main()
