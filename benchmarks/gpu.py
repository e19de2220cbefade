"""Fine-tuning speed on each installed Keras backend, side by side: carry it to a GPU machine.

For every backend (each in its own process: Keras picks its backend once per process) it times, through
the job's own factories (`JobSetup.build_model`, `JobSetup.refiner`, `train.baseline.train`, the job's
robot on a phantom):

- the interactive round (`round_inputs` apart, `run_round` timed: all Adam steps and the prediction) for the
  default layer groups, all layers, and head+bottleneck, on each grid;
- baseline training at the paper's protocol (`conf/experiment/paper.yaml`: 24x64x64, batch 8), seconds per
  step and the 2000 steps it asks for;
- the device's own ceilings: a float32 and a bfloat16 matrix product (TFLOP/s) and a copy (GB/s).

It prints one table with each backend's ratio to the first, and writes the same as JSON (`--out`). It needs
the engine's dependencies alone (Keras, numpy, scipy, scikit-image, pydantic, filelock, the backend): no
MLflow, SimpleITK or Hydra, so that it travels as a few MiB of wheels.

    python benchmarks/gpu.py                                   # every installed backend, defaults below
    python benchmarks/gpu.py --backends jax,torch --grids 24x64x64 --repeats 10 --out runs/gpu.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUBSETS = {
    "default": None,  # the job's own interact.trainable
    "all": ("all",),
    "head+bottleneck": ("head", "bottleneck"),
}


def grid_of(text: str) -> tuple[int, int, int]:
    z, y, x = (int(n) for n in text.lower().split("x"))
    return z, y, x


def merged(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def sync(backend: str) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def ceilings(backend: str, n: int) -> dict:
    """Matrix products (n x n x n, float32 and bfloat16) and a 1 GiB copy, median of 5 after 2 warm-ups."""
    from keras import ops

    def best(fn, flop_or_bytes):
        for _ in range(2):
            fn()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return flop_or_bytes / statistics.median(times)

    def block(x):
        if backend == "jax":
            x.block_until_ready()
        elif backend == "torch":
            sync(backend)
        else:
            _ = x.numpy().flat[0] if hasattr(x, "numpy") else x
        return x

    out = {}
    for dtype in ("float32", "bfloat16"):
        a = ops.ones((n, n), dtype=dtype)
        out[f"matmul_{dtype}_tflops"] = best(lambda a=a: block(ops.matmul(a, a)), 2 * n**3) / 1e12
    big = ops.ones((256, 1024, 1024), dtype="float32")  # 1 GiB
    out["copy_gbps"] = best(lambda: block(big + 0.0), 2 * 4 * 256 * 1024 * 1024) / 1e9  # read + write
    return out


def median_seconds(fn, repeats: int) -> float:
    fn()  # the first call of a shape may compile
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def phantoms(config, n: int) -> list:
    from iunet_bench.data.phantom import phantom_case
    from iunet_bench.data.preprocess import crop_box, preprocess

    cfg = config.data
    return [
        preprocess(case, cfg.preprocess, crop_box(case.label, cfg.preprocess.margin))
        for case in (phantom_case(cfg.phantom, config.seed, i) for i in range(n))
    ]


def child(backend: str, args) -> dict:
    """One backend's numbers, in this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import yaml

    from iunet_bench.core.runtime import use_backend

    use_backend(backend)
    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.tasks.config import load_config
    from iunet_bench.tasks.prepare import JobSetup
    from iunet_bench.train.baseline import train

    out: dict = {"backend": backend, "rounds": []}
    setup = JobSetup(load_config({"backend": backend}))
    out["device"] = setup.device
    out["ceilings"] = ceilings(backend, args.matmul)
    for text in args.grids:
        config = load_config(
            {"backend": backend, "data": {"source": "phantom", "preprocess": {"grid": list(grid_of(text))}}}
        )
        setup = JobSetup(config)
        model = setup.build_model()
        volume = phantoms(config, 1)[0]
        initial = predict_mask(model, volume.image)
        interaction = setup.robot.annotate(
            volume.image, volume.label, initial, np.random.default_rng(config.seed), volume.spacing
        )
        for name, groups in SUBSETS.items():
            update = {"steps": args.steps, "until_agreement": None}
            if groups is not None:
                update["trainable"] = groups
            interact = config.interact.model_copy(update=update)
            refiner = setup.refiner(interact, model)
            refiner.start(volume, initial)
            inputs = refiner.round_inputs(interaction)
            seconds = median_seconds(lambda r=refiner, i=inputs: r.run_round(*i), args.repeats)
            out["rounds"].append(
                {
                    "grid": text,
                    "groups": name,
                    "trainable": list(interact.trainable),
                    "steps": args.steps,
                    "seconds": seconds,
                    "build_seconds": refiner.build_seconds,
                    "frozen_prefix": refiner.fast,
                }
            )
            print(f"[{backend}] round {text} {name}: {seconds * 1e3:.1f} ms", file=sys.stderr, flush=True)
    out["training"] = None
    if args.train_steps < 4:  # too few to time past the compiling steps: rounds and ceilings only
        return out
    paper = yaml.safe_load((ROOT / "conf" / "experiment" / "paper.yaml").read_text(encoding="utf-8"))
    paper = {k: v for k, v in paper.items() if k in ("data", "model", "train")}
    if args.train_grid:  # a quick check on a small grid (the paper's network and batch otherwise)
        paper["data"]["preprocess"]["grid"] = list(grid_of(args.train_grid))
    config = load_config(
        merged(
            paper,
            {
                "backend": backend,
                "model": {"name": "iunet"},
                "data": {"source": "phantom", "split": {"folds": 2}},
            },
        )
    )
    steps_asked = config.train.steps
    cfg = config.train.model_copy(
        update={"steps": args.train_steps, "validation_cases": 0, "early_stop": None, "checkpoint_every": 0}
    )
    model = JobSetup(config).build_model()
    stamps: list[float] = []
    t0 = time.perf_counter()
    train(
        model,
        phantoms(config, cfg.batch_size),
        cfg,
        config.seed,
        lambda progress: stamps.append(time.perf_counter()),
    )
    per_step = statistics.median(b - a for a, b in zip(stamps[2:], stamps[3:]))  # after the compiling steps
    out["training"] = {
        "grid": "x".join(str(n) for n in config.data.preprocess.grid),
        "batch_size": cfg.batch_size,
        "seconds_per_step": per_step,
        "first_step_seconds": stamps[0] - t0,
        "paper_steps": steps_asked,
        "paper_minutes": per_step * steps_asked / 60,
    }
    print(f"[{backend}] training step {per_step * 1e3:.1f} ms", file=sys.stderr, flush=True)
    return out


def table(results: list[dict]) -> str:
    first = results[0]
    lines = ["| what | " + " | ".join(f"{r['backend']} ({r['device']})" for r in results) + " |"]
    lines.append("|---" * (len(results) + 1) + "|")

    def row(label, values, unit, scale=1.0, ratio=True):
        cells = []
        for r, v in zip(results, values):
            cell = f"{v * scale:.3g} {unit}" if v is not None else "-"
            if ratio and v is not None and values[0] is not None and r is not first:
                cell += f" ({v / values[0]:.2f}x)"
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    for i, rnd in enumerate(first["rounds"]):
        label = f"round {rnd['grid']}, {rnd['groups']}, {rnd['steps']} steps"
        row(label, [r["rounds"][i]["seconds"] for r in results], "ms", 1e3)
    trained = [r["training"] or {} for r in results]
    grid = trained[0].get("grid", "")
    batch = trained[0].get("batch_size", "")
    row(f"training step, {grid} batch {batch}", [t.get("seconds_per_step") for t in trained], "ms", 1e3)
    row("2000-step baseline", [t.get("paper_minutes") for t in trained], "min")
    for key, unit in (("matmul_float32_tflops", "TFLOP/s"), ("matmul_bfloat16_tflops", "TFLOP/s")):
        row(key.replace("_tflops", ""), [r["ceilings"][key] for r in results], unit, ratio=False)
    row("copy", [r["ceilings"]["copy_gbps"] for r in results], "GB/s", ratio=False)
    return "\n".join(lines)


def installed() -> list[str]:
    names = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
    return [b for b, module in names.items() if importlib.util.find_spec(module) is not None]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default=",".join(installed()), help="comma-separated; default: installed")
    ap.add_argument("--grids", default="16x48x48,24x64x64", help="z x y x x, comma-separated")
    ap.add_argument("--steps", type=int, default=27, help="Adam steps per timed round")
    ap.add_argument("--repeats", type=int, default=10, help="timed rounds (median)")
    ap.add_argument("--train-steps", type=int, default=30, help="training steps timed (median after 3)")
    ap.add_argument("--train-grid", help="train on this grid instead of the paper's (a quick check)")
    ap.add_argument("--matmul", type=int, default=8192, help="n of the n x n x n matrix product")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.grids = args.grids.split(",")
    if args.child:
        print(json.dumps(child(args.child, args)))
        return 0
    results = []
    for backend in args.backends.split(","):
        cmd = [sys.executable, __file__, "--child", backend, "--grids", ",".join(args.grids)]
        for key in ("steps", "repeats", "train_steps", "matmul", "train_grid"):
            if getattr(args, key) is not None:
                cmd += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        progress = [line for line in done.stderr.splitlines() if line.startswith(f"[{backend}]")]
        sys.stderr.write("\n".join(progress) + "\n" + (done.stderr[-4000:] if done.returncode else ""))
        if done.returncode:
            print(f"{backend}: failed (exit {done.returncode}); see above", file=sys.stderr)
            continue
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if not results:
        return 1
    text = table(results)
    print(f"{time.strftime('%Y-%m-%d')}, {results[0]['device']}\n{text}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
