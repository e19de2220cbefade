"""Robot time per round against fine-tuning time per round, measured side by side in one process.

    python benchmarks/robot_speed.py [--grids 16x48x48,24x64x64] [--reps 20] [--rounds 4] [--no-finetune]

For each model grid (default: the CPU config's 16x48x48 and the paper's 24x64x64):

1. robot: every preset in conf/simulator/ annotates realistic wrong predictions of phantom cases
   (`simulators.perturb`: the reference eroded by one voxel, dilated by one, or eroded by two, each
   shifted, with a false and a missed blob), `--reps` times each with a fresh generator; median and
   90th percentile milliseconds per round;
2. fine-tuning: the project's own round (default `interact` config, `make_refiner` on a U-Net built from
   the default `model` config; its weights are untrained, which does not change the time of a round),
   in a real session loop: the default robot annotates the current prediction, the refiner refines it;
   the first round is reported apart (it may include one-time work), the median of the later rounds
   is the round time (none when only the first round ran: no share, no verdict). The robot's time
   inside that loop is reported too (on an untrained network's predictions: large errors, a worst
   case for the robot);
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
import yaml  # noqa: E402

from iunet_bench.data.phantom import PhantomConfig, make_phantoms  # noqa: E402
from iunet_bench.data.preprocess import PreprocessConfig, preprocess  # noqa: E402
from simulators import make_annotator  # noqa: E402
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


def time_robots(volumes, presets: dict[str, dict], reps: int) -> dict[str, dict]:
    results = {}
    cases = robot_cases(volumes)
    for name, cfg in presets.items():
        robot = make_annotator(cfg)
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


def time_finetuning(grid, volume, rounds: int) -> dict:
    """The project's fine-tuning round in a session loop with the default robot (step 2 of the docstring)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"data.preprocess.grid=[{','.join(str(g) for g in grid)}]"])
    from iunet_bench.interactive import make_refiner
    from iunet_bench.models.groups import group_names
    from iunet_bench.models.unet import UNetConfig, build_unet

    m = cfg.model
    model = build_unet(
        tuple(grid),
        UNetConfig(
            base_filters=int(m.base_filters),
            depth=int(m.depth),
            norm=m.norm,
            convs_per_level=int(m.convs_per_level),
            pool_z_levels=tuple(m.pool_z_levels),
        ),
    )
    interact = OmegaConf.to_container(cfg.interact, resolve=True)
    robot = make_annotator(OmegaConf.to_container(cfg.simulator, resolve=True))
    t0 = time.perf_counter()
    refiner = make_refiner(interact, model, group_names(model))
    build_s = time.perf_counter() - t0
    prediction = wrong_predictions(volume.label, 0)[0].astype(np.uint8)
    initial_error = int((prediction.astype(bool) != volume.label.astype(bool)).sum())
    refiner.start(volume, prediction)
    robot_s, refine_s = [], []
    for r in range(rounds + 1):
        t0 = time.perf_counter()
        interaction = robot.annotate(
            volume.image, volume.label, prediction, np.random.default_rng(r), spacing=volume.spacing
        )
        robot_s.append(time.perf_counter() - t0)
        if interaction.is_empty:
            break
        t0 = time.perf_counter()
        prediction = refiner.refine(interaction)
        refine_s.append(time.perf_counter() - t0)
    later = refine_s[1:]  # the first round may include one-time work: never part of the median
    return {
        "compared_against": f"{type(refiner).__name__} round ({interact.get('method')}, "
        f"trainable {interact.get('trainable')}, {interact.get('steps')} steps), default model config",
        "build_seconds": build_s,
        "first_round_s": refine_s[0] if refine_s else float("nan"),
        "round_s_median": statistics.median(later) if later else float("nan"),
        "rounds_timed": len(later),
        "initial_error_voxels": initial_error,
        "reference_voxels": int(volume.label.astype(bool).sum()),
        "robot_in_loop_ms_median": 1e3 * statistics.median(robot_s),
        "robot_in_loop_ms_max": 1e3 * max(robot_s),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grids", default="16x48x48,24x64x64", help="model grids z x y x x, comma separated")
    ap.add_argument("--reps", type=int, default=20, help="robot repetitions per case and prediction")
    ap.add_argument("--cases", type=int, default=3, help="phantom cases")
    ap.add_argument("--rounds", type=int, default=4, help="fine-tuning rounds per grid (after a first one)")
    ap.add_argument("--no-finetune", action="store_true", help="time the robots only")
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "robot_speed.json"))
    args = ap.parse_args()

    grids = [tuple(int(n) for n in g.split("x")) for g in args.grids.split(",")]
    presets = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(PRESETS.glob("*.yaml"))}
    cases = make_phantoms(PhantomConfig(n_cases=args.cases), seed=0)
    report: dict = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "grids": {},
    }
    for grid in grids:
        volumes = [preprocess(c, PreprocessConfig(grid=grid)) for c in cases]
        entry: dict = {"inputs": describe_inputs(volumes), "robots": time_robots(volumes, presets, args.reps)}
        if args.no_finetune:
            entry["finetune"] = {"skipped": "--no-finetune"}
        else:
            try:
                entry["finetune"] = time_finetuning(grid, volumes[0], args.rounds)
            except ImportError as exc:
                entry["finetune"] = {"skipped": f"fine-tuning could not be imported: {exc}"}
        report["grids"]["x".join(map(str, grid))] = entry

    print(
        f"robot ms per round (median / p90 over {args.reps} reps x {args.cases} cases x 3 wrong predictions)"
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
