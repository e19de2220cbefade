"""Seconds per baseline training step and per interactive round of each architecture, side by side in one run.

    python benchmarks/model_speed.py [--models iunet,unet3d_cicek,dilated_fcn] [--steps 6] [--rounds 4]
                                     [override ...]

Each model is the job's configuration with `model=<name>` (the overrides are those of `python -m
iunet_bench`, validated by `load_config`), built by the job's `JobSetup`: its volumes, its network
and its baseline training (`JobSetup.baseline` with `train.steps=--steps` into a fresh temporary cache, so
the job's training loop, batch size and augmentation really run) and its refiner and session loop
(`JobSetup.refiner`, `run_session` with the job's robot). The models run one after another in one process, so
the ratios share the machine's state; per model:

1. training: `--steps` steps; the first (tracing, compilation) is reported apart, the median of the others is
   the step time;
2. interaction: `--rounds` rounds on the first held-out case from the untrained network's prediction; the
   first round apart, the median of the later rounds is the round time;
3. the ratio of each model's step and round time to the first model's.

Writes runs/benchmarks/model_speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from iunet_bench.tasks.config import compose_config  # noqa: E402
from iunet_bench.tasks.prepare import JobSetup  # noqa: E402

# the default `interact.trainable` names U-Net groups; the dilated FCN's nearest equivalent (unless overridden)
TRAINABLE = {"dilated_fcn": ["interact.trainable=[head,concat]"]}


def measure(name: str, overrides: list[str], steps: int, rounds: int) -> dict:
    import tempfile

    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.session.loop import run_session

    with tempfile.TemporaryDirectory() as cache:  # a fresh cache: the job's baseline training really runs
        timing = [f"train.steps={steps}", f"train.cache_dir={cache}", "train.checkpoint_every=0"]
        groups = [] if any(o.startswith("interact.trainable") for o in overrides) else TRAINABLE.get(name, [])
        config = compose_config([f"model={name}", *groups, *overrides, *timing])
        setup = JobSetup(config)
        stamps = []
        baseline = setup.baseline(lambda p: stamps.append(time.perf_counter()))
    step_times = [b - a for a, b in zip(stamps, stamps[1:])]
    volume = setup.volumes().test[0]
    records = run_session(
        volume,
        predict_mask(baseline.model, volume.image),
        setup.robot,
        setup.refiner(),
        rounds,
        config.seed,
    )
    active = [r.refine_seconds for r in records[1:] if not r.stopped]
    return {
        "model": name,
        "parameters": int(baseline.model.count_params()),
        "grid": list(config.data.preprocess.grid),
        "step_seconds": statistics.median(step_times) if step_times else float("nan"),
        "round_first_seconds": active[0] if active else float("nan"),
        "round_seconds": statistics.median(active[1:]) if len(active) > 1 else float("nan"),
        "rounds_run": len(active),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="iunet,unet3d_cicek,dilated_fcn")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "overrides", nargs="*", help="overrides of python -m iunet_bench (e.g. experiment=smoke)"
    )
    args = parser.parse_args(argv)
    results = [measure(m, args.overrides, args.steps, args.rounds) for m in args.models.split(",")]
    first = results[0]
    print(f"{'model':<14} {'params':>9} {'s/step':>8} {'x':>6} {'s/round':>8} {'x':>6}")
    for r in results:
        print(
            f"{r['model']:<14} {r['parameters']:>9d} {r['step_seconds']:8.3f} "
            f"{r['step_seconds'] / first['step_seconds']:6.2f} {r['round_seconds']:8.3f} "
            f"{r['round_seconds'] / first['round_seconds']:6.2f}"
        )
    out = ROOT / "runs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "overrides": args.overrides,
        "results": results,
    }
    (out / "model_speed.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"written: {out / 'model_speed.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
