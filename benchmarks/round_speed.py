"""Round speed of the interactive engine, measured side by side in one process (a benchmark, not a test).

    python benchmarks/round_speed.py [--reps 5] [--cases 1] [--rounds R] [--train-steps N] [override ...]

On the job's own configuration and setup: the overrides are those of `python -m iunet_bench` (Hydra over
`conf/`; `--cases N`, `--rounds R`, `--train-steps N` are `session.max_cases=N`, `session.rounds=R`,
`train.steps=N`), validated by `load_config` and built by `prepare` exactly as a job builds them: the same
held-out volumes, the same baseline (one cache, keyed with the precision), the same robot, and refiners
from `JobSetup.refiner`. Every variant below is the job's `interact` config with only `trainable` and
`fast` changed (`model_copy`; in 1., `until_agreement` off too), so nothing else can differ from the job; `interact.method` must be `iunet`.
The timed case is the first held-out case, its interaction the job's robot's in round 1.

1. seconds per round (weight map + `steps` fine-tuning steps + prediction; the stopping rule off, so
   every column runs the same steps) for the job's own `trainable`, head+bottleneck, head only and all
   layers:
   - `fast`: the engine as the job runs it (`refine`: frozen prefix once per case at `start`, one
     compiled round function);
   - `straight`: the same engine's straightforward path (whole network every step, a Python loop);
     both engines' one-time build and warm-up, and `fast`'s prefix once per case, are outside the round
     and reported separately;
   - `naive` (warm): a plain Keras reference (`NaiveKeras`): `layer.trainable`, `compile` with the same
     loss, `fit` for the same number of steps on the one volume, `predict`; compiled, and traced by one
     warm-up round, outside the timer (weights and optimizer variables restored every repetition), so it
     is charged what a round costs once Keras is warm, like the engine;
   - `naive incl. compile`: the same with `compile` inside every round, so fit and predict are traced
     again: what a naive user's round really costs, and what "x naive" meant before it was made fair.
   (`fit` runs trainable BatchNorm layers in training mode; the engine keeps every BatchNorm frozen.
   Speed is what these columns are for.) All are interleaved repetition by repetition, so machine noise
   hits them alike; medians reported.
2. achieved GFLOP/s of the compiled round (`run_round` of the refiner, timed apart from `round_inputs`;
   convolution FLOPs counted from the layer shapes: forward, the
   input gradients the backward pass needs, the weight gradients of the trained layers) against a large
   float32 matrix multiply measured in the same process (the roof of this machine);
3. the geodesic weight map's share of a round (scikit-image MCP as used, from the per-case `Geodesic` the
   refiner builds at `start`, against building it every call; scikit-fmm timed for comparison);
4. the DSC curves of `fast` and `straight` (the job's `interact`, either path) through the job's session
   loop (`cases.run_case`, as the job runs a case: its robot, seed, rounds, `session.target_dsc` and
   protocol) on the held-out cases, and their largest difference;
5. whole rounds, stopping rule included, of the job's `interact` against each `--against` configuration
   (overrides of the same job, e.g. `--against interact=iunet_paper`): seconds and Adam steps per round,
   final DSC, the in-run floor and the rounds that honour the scribbles, through the job's case runner with
   its in-run floor, the configurations interleaved case by case.

Writes runs/benchmarks/round_speed.json.
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

import numpy as np  # noqa: E402

SUBSETS = {"head+bottleneck": ("head", "bottleneck"), "head": ("head",), "all": ("all",)}


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def conv_flops(layer) -> float:
    """Forward FLOPs (2 per multiply-add) of a convolution at its model shape: Conv3D, Conv3DTranspose, or
    the split's PartialConv (the share of a convolution over some of its input channels); else 0."""
    import keras

    from iunet_bench.models.split import PartialConv

    partial = isinstance(layer, PartialConv)
    conv = layer.conv if partial else layer
    if not isinstance(conv, keras.layers.Conv3D):  # Conv3DTranspose subclasses Conv3D
        return 0.0
    kernel = int(np.prod(conv.kernel.shape))
    if partial:
        kernel = kernel // int(conv.kernel.shape[3]) * len(layer.channels)
    if isinstance(conv, keras.layers.Conv3DTranspose):
        voxels = int(np.prod(conv.input.shape[1:4]))
    else:
        voxels = int(np.prod(layer.output.shape[1:4]))
    return 2.0 * voxels * kernel


def step_flops(net, trained) -> tuple[float, float]:
    """(FLOPs of one fine-tuning step, FLOPs of one forward pass) of `net` (the tail the engine runs),
    convolutions only: forward, input gradients where the backward pass must go on, weight gradients of
    the trained layers."""
    from iunet_bench.models.split import backprop_layers, live_layers

    live = live_layers(net, trained)
    through = {id(layer) for layer in backprop_layers(net, trained)}
    trained_ids = {id(layer) for layer in trained}
    forward = sum(conv_flops(layer) for layer in live)
    backward = sum(
        conv_flops(layer) * ((id(layer) in through) + (id(layer) in trained_ids)) for layer in live
    )
    return forward + backward, forward


def matmul_roof(n: int = 2048, reps: int = 5) -> float:
    """GFLOP/s of an n x n float32 matrix multiply (best of `reps`)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    b = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    mm = tf.function(lambda: tf.reduce_sum(tf.linalg.matmul(a, b)))
    mm()
    best = min(timed(lambda: float(mm()))[0] for _ in range(reps))
    return 2.0 * n**3 / best / 1e9


class NaiveKeras:
    """The plain Keras way on its own copy of the network: `layer.trainable` on the chosen groups, `compile`
    with Adam and the eq. 3 loss, `fit` for `steps` steps on the one volume (one epoch of `steps` batches
    from a repeated dataset), `predict`. The weight map is computed from scratch every round, as a user of
    `weight_map` would. `fit` runs trainable BatchNorm layers in training mode; the engine keeps every
    BatchNorm frozen: speed is what this reference is for.

    Two ways to time it:
    - `warm` (fair to Keras): `compile` once and one warm-up round, outside the timer; per repetition the
      weights and optimizer variables are restored, then `round` (fit + predict, already traced) is timed;
    - `cold` (what a naive user's round costs): `compile` inside the timer every round, so `fit` and
      `predict` trace their functions again.
    """

    def __init__(self, model, fcfg):
        from iunet_bench.interactive.refiner import own_copy
        from iunet_bench.models.groups import layers_in_groups

        self.model, self.fcfg = own_copy(model), fcfg
        trained = {id(layer) for layer in layers_in_groups(self.model, list(fcfg.trainable))}
        for layer in self.model.layers:
            if layer.weights:
                layer.trainable = id(layer) in trained
        self.baseline = [w.numpy() for w in self.model.weights]
        self.optimizer_initial = None

    def compile(self) -> None:
        import keras
        import tensorflow as tf

        from iunet_bench.interactive.loss import interactive_loss

        f = self.fcfg

        def loss(y_true, y_pred):  # y_true packs the engine's RoundInputs: target, weight map, scribbles
            return interactive_loss(
                y_true[..., :2],
                tf.cast(y_pred, tf.float32),
                y_true[..., 2],
                f.lambda_volume,
                f.weights.mode,
                y_true[..., 3],
                f.scribble_ce,
            )

        self.model.compile(optimizer=keras.optimizers.Adam(f.lr), loss=loss)

    def warm_up(self, volume, prediction, interaction) -> None:
        """Compile once, build the optimizer, run one round (tracing fit and predict), snapshot."""
        self.compile()
        self.model.optimizer.build(self.model.trainable_variables)
        self.optimizer_initial = [v.numpy() for v in self.model.optimizer.variables]
        self.round(volume, prediction, interaction)
        self.reset()

    def reset(self) -> None:
        for w, value in zip(self.model.weights, self.baseline):
            w.assign(value)
        if self.optimizer_initial is not None:
            for v, value in zip(self.model.optimizer.variables, self.optimizer_initial):
                v.assign(value)

    def round(self, volume, prediction, interaction) -> np.ndarray:
        import tensorflow as tf

        from iunet_bench.interactive.weights import weight_map

        f = self.fcfg
        target = interaction.paste(prediction).astype(np.float32)
        w = weight_map(volume.image, interaction.scribbles, volume.spacing, f.weights, f.geodesic)
        x = volume.image[None, ..., None]
        y = np.stack([1 - target, target, w, interaction.scribbles.astype(np.float32)], -1)[None]
        if f.steps:
            data = tf.data.Dataset.from_tensors((x, y)).repeat()
            self.model.fit(data, steps_per_epoch=f.steps, epochs=1, verbose=0, shuffle=False)
        return (self.model.predict(x, verbose=0)[0, ..., 1] >= 0.5).astype(np.uint8)

    def cold_round(self, volume, prediction, interaction) -> np.ndarray:
        """compile + round: call `reset` first (outside the timer)."""
        self.compile()
        return self.round(volume, prediction, interaction)


def geodesic_times(volume, seeds, fcfg, geodesic, reps: int) -> dict:
    """Median seconds of the MCP geodesic distance (used): built per call (`geodesic_distance`) and from
    the per-case `Geodesic` the refiner keeps (`geodesic`: cost map and path graph built once at `start`;
    None when the refiner needs none, then one is built here the same way); the same for the whole weight
    map (`fcfg.weights`, `fcfg.geodesic`); the one-time build; and scikit-fmm's travel time (alternative)."""
    from iunet_bench.interactive.weights import Geodesic, geodesic_distance, weight_map

    band = fcfg.geodesic
    intensity_weight = band.intensity_weight
    cached = geodesic if geodesic is not None else Geodesic(volume.image, volume.spacing, intensity_weight)
    median = lambda fn, *a: statistics.median(timed(fn, *a)[0] for _ in range(reps))  # noqa: E731
    out = {
        "mcp_s": median(geodesic_distance, volume.image, seeds, volume.spacing, intensity_weight),
        "mcp_cached_s": median(cached.distance, seeds),
        "build_once_per_case_s": median(Geodesic, volume.image, volume.spacing, intensity_weight),
        "weight_map_s": median(weight_map, volume.image, seeds, volume.spacing, fcfg.weights, band),
        "weight_map_cached_s": median(
            weight_map, volume.image, seeds, volume.spacing, fcfg.weights, band, cached
        ),
    }
    try:
        import skfmm
    except ImportError:
        return out
    grads = np.gradient(volume.image.astype(np.float32), *volume.spacing)
    speed = 1.0 / (1.0 + intensity_weight * np.sqrt(sum(g * g for g in grads)))
    phi = np.where(seeds, -1.0, 1.0)
    out["fmm_s"] = statistics.median(
        timed(skfmm.travel_time, phi, speed, np.asarray(volume.spacing))[0] for _ in range(reps)
    )
    return out


def job_config(overrides: list[str]):
    """The job's `JobConfig` for these overrides, as `python -m iunet_bench` composes and validates it."""
    from iunet_bench.tasks.config import compose_config

    return compose_config(overrides, note=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions per subset")
    ap.add_argument(
        "--cases", type=int, default=None, help="held-out cases for the DSC-curve comparison (default 1)"
    )
    ap.add_argument("--rounds", type=int, default=None, help="session rounds (default: session.rounds)")
    ap.add_argument("--train-steps", type=int, default=None, help="baseline steps (default: train.steps)")
    ap.add_argument(
        "--against",
        action="append",
        default=[],
        metavar="OVERRIDES",
        help="whole rounds of the job against the job with these space-separated overrides (repeatable), "
        "e.g. --against interact=iunet_paper",
    )
    ap.add_argument("--out", default=str(ROOT / "runs" / "benchmarks" / "round_speed.json"))
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. data.preprocess.grid=[8,24,24]")
    args = ap.parse_args()
    os.chdir(ROOT)

    from iunet_bench.interactive.config import IUnetInteract
    from iunet_bench.tasks.config import ConfigError
    from iunet_bench.tasks.prepare import prepare

    # One case unless the overrides or --cases say otherwise (later overrides win in Hydra).
    overrides = ["session.max_cases=1", *args.overrides]
    flags = {"session.max_cases": args.cases, "session.rounds": args.rounds, "train.steps": args.train_steps}
    overrides += [f"{key}={value}" for key, value in flags.items() if value is not None]
    try:
        config = job_config(overrides)
        against = {spec: job_config([*overrides, *spec.split()]).interact for spec in args.against}
        if not isinstance(config.interact, IUnetInteract):
            raise ConfigError(
                [
                    f"interact.method: {config.interact.method}; round_speed times iunet's layer subsets: use iunet"
                ]
            )
        setup = prepare(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)

    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # `naive incl. compile` retraces on purpose: no warnings about it

    from iunet_bench.core.rng import derive_rng
    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.interactive.weights import weight_map
    from iunet_bench.models.groups import layers_in_groups
    from iunet_bench.tasks.cases import run_case

    volumes = setup.volumes()
    for f in volumes.failures:
        print(f"FAILED case {f.case_id} (load): {f.error}", file=sys.stderr)
    if not volumes.train or not volumes.test:
        sys.exit("no training or no held-out case could be loaded")
    grid = tuple(config.data.preprocess.grid)
    print(
        f"device {setup.device}; precision {config.precision}; grid {grid}; "
        f"baseline: training or loading ({config.train.steps} steps) ..."
    )
    baseline = setup.baseline()
    model = baseline.model
    print(f"baseline {'loaded from' if baseline.hit else 'trained into'} {baseline.path}")
    job_interact, robot = config.interact, setup.robot

    volume = volumes.test[0]
    initial = predict_mask(model, volume.image)
    interaction = robot.annotate(
        volume.image,
        volume.label,
        initial,
        derive_rng(config.seed, volume.case_id, 1),  # the job's robot generator of round 1
        spacing=volume.spacing,
    )

    refiners: dict = {}  # one refiner per distinct interact config (built once, as a job builds its one)

    def refiner_for(interact):
        if interact not in refiners:
            refiners[interact] = setup.refiner(interact)
        return refiners[interact]

    # Every engine and reference works on its own copy of the network: `model` stays the baseline.
    # The job's own subset first (the default's: head, bottleneck and decoder.0), then the fixed ones.
    subsets = {"+".join(job_interact.trainable): tuple(job_interact.trainable)}
    subsets.update({n: g for n, g in SUBSETS.items() if g not in subsets.values()})
    engines = {}
    for name, groups in subsets.items():
        # Exactly `steps` steps in every column (the naive reference has no stopping rule).
        spec = job_interact.model_copy(update={"trainable": groups, "until_agreement": None})
        engines[name] = {
            "fast": refiner_for(spec.model_copy(update={"fast": True})),
            "straight": refiner_for(spec.model_copy(update={"fast": False})),
            "naive": NaiveKeras(model, spec),
            "naive_cold": NaiveKeras(model, spec),
        }

    roofs = [matmul_roof()]  # measured again at every repetition: the best is the roof
    results = {}
    kinds = ("naive", "naive_cold", "straight", "fast")
    for name, groups in subsets.items():
        e = engines[name]
        fast, naive, cold = e["fast"], e["naive"], e["naive_cold"]
        naive_setup, _ = timed(naive.warm_up, volume, initial, interaction)  # compile + first round: untimed
        times = {k: [] for k in (*kinds, "fast_compute", "start", "weight_map")}
        for _ in range(args.reps):
            naive.reset()
            times["naive"].append(timed(naive.round, volume, initial, interaction)[0])
            cold.reset()
            times["naive_cold"].append(timed(cold.cold_round, volume, initial, interaction)[0])
            for kind in ("fast", "straight"):
                engine = e[kind]
                t_start, _ = timed(engine.start, volume, initial)
                if kind == "fast":
                    times["start"].append(t_start)
                times[kind].append(timed(engine.refine, interaction)[0])
            fast.start(volume, initial)
            times["weight_map"].append(  # as the engine computes it: the case's Geodesic built at start
                timed(
                    weight_map,
                    volume.image,
                    interaction.scribbles,
                    volume.spacing,
                    fast.cfg.weights,
                    fast.cfg.geodesic,
                    fast.geodesic,
                )[0]
            )
            inputs = fast.round_inputs(interaction)
            times["fast_compute"].append(timed(fast.run_round, *inputs)[0])
            roofs.append(matmul_roof(reps=2))
        med = {k: statistics.median(v) for k, v in times.items()}
        flops, forward = step_flops(fast.split.tail, layers_in_groups(fast.model, list(groups)))
        round_flops = job_interact.steps * flops + forward
        best_compute = min(times["fast_compute"])
        results[name] = {
            "seconds_per_round": {k: med[k] for k in kinds},
            "speedup_vs_naive_warm": med["naive"] / med["fast"],
            "speedup_vs_naive_incl_compile": med["naive_cold"] / med["fast"],
            "speedup_vs_straight": med["straight"] / med["fast"],
            "naive_compile_and_first_round_seconds": naive_setup,
            "start_seconds_once_per_case": med["start"],
            "build_seconds_once_per_job": fast.build_seconds,
            "frozen_frontier": fast.split.frontier_names,
            "step_gflop": flops / 1e9,
            "round_compute_seconds": {"median": med["fast_compute"], "best": best_compute},
            "achieved_gflops": {
                "median": round_flops / med["fast_compute"] / 1e9,
                "best": round_flops / best_compute / 1e9,
            },
            "weight_map_seconds": med["weight_map"],
            "weight_map_share_of_fast_round": med["weight_map"] / med["fast"],
            "samples": times,
        }
    roof = max(roofs)
    for r in results.values():
        r["achieved_share_of_roof"] = r["achieved_gflops"]["best"] / roof

    geo_refiner = refiner_for(job_interact)
    geo_refiner.start(volume, initial)  # the per-case Geodesic, as the job's refiner builds it
    geo = geodesic_times(volume, interaction.scribbles, job_interact, geo_refiner.geodesic, args.reps)

    def session_of(refiner, floor, v):
        """One case's records through the job's own case runner (robot, seed, rounds, stopping target,
        protocol), from the baseline's prediction."""
        result = run_case(setup, refiner, floor, v, predict_mask(model, v.image), None)
        if result.records is None:
            sys.exit(f"case {v.case_id} failed: {result.error}")
        return result.records

    # DSC curves of the fast and straightforward paths through the job's session loop.
    rounds = config.session.rounds
    curves = {}
    for kind in ("fast", "straight"):
        engine = refiner_for(job_interact.model_copy(update={"fast": kind == "fast"}))
        curves[kind] = {}
        for v in volumes.test:
            records = session_of(engine, None, v)
            curves[kind][v.case_id] = {
                "dsc": [r.dsc for r in records],
                "round_seconds": [r.refine_seconds for r in records[1:] if not r.stopped],
            }
    dsc_diff = max(
        float(np.max(np.abs(np.subtract(curves["fast"][c]["dsc"], curves["straight"][c]["dsc"]))))
        for c in curves["fast"]
    )

    # Whole rounds (stopping rule included): the job's interact against each --against, case by case.
    from iunet_bench.analysis import results as job_results

    configs = {"job": job_interact, **against}
    whole = {name: [] for name in configs}
    floor = setup.floor()
    for v in volumes.test:
        for name, interact in configs.items():
            whole[name] += session_of(refiner_for(interact), floor, v)
    rounds_table = {}
    for name, records in whole.items():
        m = job_results.summarise(records, config.protocol)
        rounds_table[name] = {
            "interact": configs[name].model_dump(mode="json"),
            **{
                k: m[k]
                for k in (
                    "round_seconds",
                    "fine_tune_steps_mean",
                    "dsc_baseline",
                    "dsc_final",
                    "floor_dsc_final",
                    "dsc_gain_over_floor",
                    "dsc_auc_over_floor",
                    "rounds_honoured",
                )
            },
        }

    report = {
        "machine": {
            "device": setup.device,
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "load_average_at_end": os.getloadavg(),
        },
        "config": {
            "grid": list(grid),
            "precision": config.precision,
            "model": config.model.model_dump(mode="json"),
            "interact": job_interact.model_dump(mode="json"),
            "baseline_key": baseline.key,
            "baseline_cached": baseline.hit,
            "reps": args.reps,
            "overrides": overrides,
            "job": config.params(),
        },
        "matmul_roof_gflops": {"best": roof, "samples": roofs},
        "subsets": results,
        "geodesic": {**geo, "weights_map_uses": "mcp"},
        "session": {
            "trainable": list(job_interact.trainable),
            "rounds": rounds,
            "curves": curves,
            "max_abs_dsc_difference_fast_vs_straight": dsc_diff,
        },
        "whole_rounds": rounds_table,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float), encoding="utf-8")

    print(
        f"\nseconds per round on {grid}, {job_interact.steps} steps, median of {args.reps} interleaved repetitions:"
    )
    print(
        "naive (warm) = Keras fit+predict, compiled and traced once beforehand; naive incl. compile = "
        "compile+fit+predict every round (what a plain Keras user pays)"
    )
    ws = max(16, *(len(n) for n in results))
    head = ("subset", "naive", "naive+compile", "straight", "fast", "x naive", "x naive+comp", "x straight")
    print(
        f"{head[0]:>{ws}}  {head[1]:>7}  {head[2]:>13}  {head[3]:>8}  {head[4]:>7}  "
        f"{head[5]:>7}  {head[6]:>12}  {head[7]:>10}"
    )
    for name, r in results.items():
        s = r["seconds_per_round"]
        print(
            f"{name:>{ws}}  {s['naive']:7.3f}  {s['naive_cold']:13.3f}  {s['straight']:8.3f}  {s['fast']:7.3f}  "
            f"{r['speedup_vs_naive_warm']:7.1f}  {r['speedup_vs_naive_incl_compile']:12.1f}  "
            f"{r['speedup_vs_straight']:10.1f}"
        )
    print(f"\nmatmul roof (2048^3 float32, best of {len(roofs)} spread over the run): {roof:.1f} GFLOP/s")
    for name, r in results.items():
        g = r["achieved_gflops"]
        print(
            f"{name:>{ws}}: {r['step_gflop']:.3f} GFLOP per step, {g['best']:.1f} GFLOP/s in the best round "
            f"({100 * r['achieved_share_of_roof']:.0f}% of the roof), {g['median']:.1f} median; "
            f"weight map {r['weight_map_seconds']:.3f} s = {100 * r['weight_map_share_of_fast_round']:.0f}% "
            f"of the fast round; prefix once per case {r['start_seconds_once_per_case']:.3f} s; "
            f"naive compile + first round {r['naive_compile_and_first_round_seconds']:.2f} s"
        )
    fmm = f", scikit-fmm {geo['fmm_s']:.3f} s" if "fmm_s" in geo else ""
    print(
        f"geodesic distance: MCP built per call {geo['mcp_s']:.4f} s, from the per-case Geodesic "
        f"{geo['mcp_cached_s']:.4f} s (built once per case in {geo['build_once_per_case_s']:.4f} s){fmm}; "
        f"weight map {geo['weight_map_s']:.4f} s -> {geo['weight_map_cached_s']:.4f} s cached "
        f"(saves {1e3 * (geo['weight_map_s'] - geo['weight_map_cached_s']):.1f} ms a round; "
        "the random walker computes two distances a round)"
    )
    for kind, by_case in curves.items():
        for c, d in by_case.items():
            print(f"DSC {kind:>8} {c}: " + " ".join(f"{x:.4f}" for x in d["dsc"]))
    print(f"max |DSC fast - straight| = {dsc_diff:.2e}")
    print(
        f"\nwhole rounds (stopping rule included) on {len(volumes.test)} held-out case(s) x {rounds} rounds, "
        "configurations interleaved case by case:"
    )
    job_s = rounds_table["job"]["round_seconds"]
    width = max(len(name) for name in rounds_table)
    print(
        f"{'configuration':>{width}}  {'s/round':>7}  {'x job':>6}  {'steps':>5}  {'DSC r0 -> last':>14}  "
        f"{'floor':>5}  {'honoured':>8}"
    )
    for name, r in rounds_table.items():
        print(
            f"{name:>{width}}  {r['round_seconds']:7.2f}  {r['round_seconds'] / job_s:6.2f}  "
            f"{r['fine_tune_steps_mean']:5.0f}  {r['dsc_baseline']:.3f} -> {r['dsc_final']:.3f}  "
            f"{r['floor_dsc_final']:.3f}  {r['rounds_honoured']:8.0%}"
        )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
