"""Robot time per round against fine-tuning time per round, measured side by side in one process.

    python benchmarks/robot_speed.py [--grids 16x48x48,24x64x64] [--reps 20] [--cases 3] [--rounds 4]
                                     [--no-finetune] [override ...]

On the job's own configuration and setup: the overrides are those of `python -m iunet_bench` (Hydra over
`conf/`), validated by `load_config`; each grid is the override `data.preprocess.grid=[z,y,x]` (after the
others); volumes, robots, model and refiner come from the job's `JobSetup` (`prepare`), never rebuilt here.
For each model grid (default: the CPU config's 16x48x48 and the paper's 24x64x64):

1. robot: every preset in conf/simulator/ (the job's configuration with `simulator=<preset>`, its robot
   `JobSetup.robot`) annotates realistic wrong predictions of the job's cases (`--cases`: held-out cases
   first, then training cases; `simulators.perturb`: the reference eroded by one voxel, dilated by one,
   or eroded by two, each shifted, with a false and a missed blob), `--reps` times each with a fresh
   generator; median and 90th percentile milliseconds per round;
2. fine-tuning: the job's own round (its `interact` config, `build_refiner` as `JobSetup.refiner` builds
   it, on the job's network `JobSetup.build_model()`; its weights are untrained, which does not change
   the time of a round, and no baseline is trained), in the job's session loop (`run_session`, the job's
   robot and seed) on the first case from a wrong prediction; the first round is reported apart (it may
   include one-time work), the median of the later rounds is the round time (none when only the first
   round ran: no share, no verdict). The robot's time inside that loop is reported too (on an untrained
   network's predictions: large errors, a worst case for the robot);
3. the robot's share of a round = robot median / (robot median + fine-tuning median); the target is < 5 %.
   The verdict is PASS only when every grid has a fine-tuning round time and every share is below 5 %,
   FAIL when any share is not, and NO VERDICT otherwise.

If TensorFlow or the interactive room cannot be imported, step 2 is skipped and the output says so:
the script never compares against a stand-in. Writes runs/benchmarks/robot_speed.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from iunet_bench.tasks.config import ConfigError  # noqa: E402
from iunet_bench.tasks.prepare import JobSetup  # noqa: E402
from simulators.perturb import perturb  # noqa: E402

PRESETS = ROOT / "conf" / "simulator"


WRONG = ((1, 0, (0, 2, 2)), (0, 1, (1, -2, 0)), (2, 0, (0, 0, -3)))  # (erode, dilate, shift)


def wrong_predictions(label: np.ndarray, seed: int) -> list[np.ndarray]:
    """Three realistic wrong predictions of a reference label (step 1 of the module docstring)."""
    return [
        perturb(label, erode, dilate, shift, blob_seed=3 * seed + k)
        for k, (erode, dilate, shift) in enumerate(WRONG)
    ]


def robot_cases(volumes) -> list[tuple]:
    return [(v, p) for i, v in enumerate(volumes) for p in wrong_predictions(v.label, i)]


def describe_inputs(volumes) -> dict:
    """Sizes of the timed inputs, so that a degenerate one (an empty or flooded prediction) shows."""
    cases = robot_cases(volumes)
    ref = [int(v.label.astype(bool).sum()) for v, _ in cases]
    err = [int((p != v.label.astype(bool)).sum()) for v, p in cases]
    return {
        "volume_voxels": int(volumes[0].label.size),
        "reference_voxels_median": float(np.median(ref)),
        "error_voxels_median": float(np.median(err)),
        "error_voxels_min": min(err),
        "error_voxels_max": max(err),
    }


def job_config(overrides: list[str]):
    """The job's `JobConfig` for these overrides, as `python -m iunet_bench` composes and validates it."""
    from iunet_bench.tasks.config import compose_config

    return compose_config(overrides, note=sys.stderr)


def time_robots(volumes, robots: dict, reps: int) -> dict[str, dict]:
    results = {}
    cases = robot_cases(volumes)
    for name, robot in robots.items():
        times, strokes = [], []
        for rep in range(reps):
            for v, pred in cases:
                t0 = time.perf_counter()
                it = robot.annotate(v.image, v.label, pred, np.random.default_rng(rep), spacing=v.spacing)
                times.append(time.perf_counter() - t0)
                strokes.append(it.effort.strokes + it.effort.clicks)
        results[name] = {
            "median_ms": 1e3 * statistics.median(times),
            "p90_ms": 1e3 * float(np.percentile(times, 90)),
            "max_ms": 1e3 * max(times),
            "mean_interactions": float(np.mean(strokes)),
            "samples": len(times),
        }
    return results


def time_finetuning(setup: JobSetup, volume, rounds: int) -> dict:
    """The job's fine-tuning round in the job's session loop (step 2 of the module docstring)."""
    from iunet_bench.session.loop import run_session

    setup.check()  # what `prepare` checks; configures TensorFlow (device, precision, seed) as a job does
    interact = setup.config.interact
    model = setup.build_model()  # untrained: the time of a round does not depend on the weights
    t0 = time.perf_counter()
    refiner = setup.refiner(interact, model)
    build_s = time.perf_counter() - t0
    prediction = wrong_predictions(volume.label, 0)[0].astype(np.uint8)
    initial_error = int((prediction.astype(bool) != volume.label.astype(bool)).sum())
    records = run_session(volume, prediction, setup.robot, refiner, rounds + 1, setup.config.seed)
    ran = [r for r in records[1:] if not r.stopped]  # the robot's stop ends the session: never timed
    refine_s = [r.refine_seconds for r in ran]
    robot_s = [r.robot_seconds for r in ran]
    later = refine_s[1:]  # the first round may include one-time work: never part of the median
    steps = getattr(interact, "steps", None)
    trainable = getattr(interact, "trainable", None)
    return {
        "compared_against": f"{type(refiner).__name__} round ({interact.method}, "
        f"trainable {list(trainable) if trainable else None}, {steps} steps, "
        f"precision {setup.config.precision}), the job's model config",
        "device": setup.device,
        "build_seconds": build_s,
        "first_round_s": refine_s[0] if refine_s else float("nan"),
        "round_s_median": statistics.median(later) if later else float("nan"),
        "rounds_timed": len(later),
        "initial_error_voxels": initial_error,
        "reference_voxels": int(volume.label.astype(bool).sum()),
        "robot_in_loop_ms_median": 1e3 * statistics.median(robot_s) if robot_s else float("nan"),
        "robot_in_loop_ms_max": 1e3 * max(robot_s) if robot_s else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grids", default="16x48x48,24x64x64", help="model grids z x y x x, comma separated")
    ap.add_argument("--reps", type=int, default=20, help="robot repetitions per case and prediction")
    ap.add_argument(
        "--cases",
        type=int,
        default=3,
        help="cases whose wrong predictions the robots annotate (held-out first)",
    )
    ap.add_argument("--rounds", type=int, default=4, help="fine-tuning rounds per grid (after a first one)")
    ap.add_argument("--no-finetune", action="store_true", help="time the robots only")
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "robot_speed.json"))
    ap.add_argument("overrides", nargs="*", help="config overrides, as for `python -m iunet_bench`")
    args = ap.parse_args()
    os.chdir(ROOT)

    grids = [tuple(int(n) for n in g.split("x")) for g in args.grids.split(",")]
    user = list(args.overrides)
    report: dict = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "overrides": user,
        "grids": {},
    }
    try:
        # The robots do not depend on the grid: one job configuration per preset, its robot as a job builds it.
        robots = {
            p.stem: JobSetup(job_config([*user, f"simulator={p.stem}"])).robot
            for p in sorted(PRESETS.glob("*.yaml"))
        }
        for grid in grids:
            setup = JobSetup(job_config([*user, f"data.preprocess.grid=[{','.join(map(str, grid))}]"]))
            vols = setup.volumes()
            volumes = (vols.test + vols.train)[: args.cases]
            if not volumes:
                sys.exit(f"grid {grid}: no case could be loaded")
            entry: dict = {
                "cases": [v.case_id for v in volumes],
                "inputs": describe_inputs(volumes),
                "robots": time_robots(volumes, robots, args.reps),
            }
            if args.no_finetune:
                entry["finetune"] = {"skipped": "--no-finetune"}
            else:
                try:
                    entry["finetune"] = time_finetuning(setup, volumes[0], args.rounds)
                except ImportError as exc:
                    entry["finetune"] = {"skipped": f"fine-tuning could not be imported: {exc}"}
            report["grids"]["x".join(map(str, grid))] = entry
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)

    print(
        f"robot ms per round (median / p90 over {args.reps} reps x {len(volumes)} cases x 3 wrong "
        "predictions)"
    )
    shares: list[float] = []
    untimed: list[str] = []  # grids without a fine-tuning round time: no share, no verdict for them
    for g, entry in report["grids"].items():
        ft, inputs = entry["finetune"], entry["inputs"]
        round_s = ft.get("round_s_median")
        timed = round_s is not None and math.isfinite(round_s)
        print(
            f"\ngrid {g}: {inputs['volume_voxels']} voxels, reference ~{inputs['reference_voxels_median']:.0f}, "
            f"wrong voxels per prediction {inputs['error_voxels_min']}..{inputs['error_voxels_max']}"
        )
        if "skipped" in ft:
            print(f"  fine-tuning not timed ({ft['skipped']}): no share computed")
        elif not timed:
            print(
                f"  fine-tuning: only the first round ran ({ft['first_round_s']:.3f} s, may include one-time "
                "work): no round time, no share computed"
            )
        else:
            print(
                f"  fine-tuning round: {round_s:.3f} s median of {ft['rounds_timed']} later rounds "
                f"(first round {ft['first_round_s']:.3f} s; {ft['compared_against']})"
            )
        if "robot_in_loop_ms_median" in ft:
            print(
                f"  default robot inside that loop: {ft['robot_in_loop_ms_median']:.1f} ms median, "
                f"{ft['robot_in_loop_ms_max']:.1f} ms max (untrained network's predictions)"
            )
        if not timed:
            untimed.append(g)
        print(f"  {'preset':>18} {'median ms':>10} {'p90 ms':>8} {'interactions':>12} {'share':>8}")
        for name, r in entry["robots"].items():
            share = r["median_ms"] / 1e3 / (r["median_ms"] / 1e3 + round_s) if timed else None
            r["share_of_round"] = share
            if share is not None:
                shares.append(share)
            shown = "-" if share is None else f"{100 * share:.2f} %"
            print(
                f"  {name:>18} {r['median_ms']:10.2f} {r['p90_ms']:8.2f} {r['mean_interactions']:12.1f} {shown:>8}"
            )
    largest = max(shares) if shares else None
    if largest is not None and largest >= 0.05:
        verdict = "FAIL"
    elif untimed:
        verdict = "NO VERDICT"
    else:
        verdict = "PASS"
    shown = "-" if largest is None else f"{100 * largest:.2f} %"
    missing = f" (no fine-tuning round time for {', '.join(untimed)})" if untimed else ""
    print(f"\nlargest robot share of a round: {shown} (target < 5 %): {verdict}{missing}")
    report["largest_share"] = largest
    report["verdict"] = verdict
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")
    print(f"written {out}")


if __name__ == "__main__":
    main()
