"""One benchmark job: data -> baseline -> robot-driven sessions on held-out cases -> MLflow.

`validate(cfg)` checks the whole configuration before any compute; `run(cfg)` does the job and returns
its summary. `__main__` wires these to Hydra.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from iunet_bench import metrics

DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the allowed values."""


def _container(node) -> dict:
    return OmegaConf.to_container(node, resolve=True)


def validate(cfg: DictConfig) -> dict[str, Any]:
    """Check every group before any compute. Returns the parsed pieces the job needs."""
    from iunet_bench.data import build_dataset
    from iunet_bench.interactive import finetune_config_from
    from iunet_bench.models.config import NORMS
    from iunet_bench.models.groups import valid_groups
    from iunet_bench.train.baseline import train_config_from
    from simulators import make_annotator

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    need(cfg.device in DEVICES, f"device: {cfg.device!r} is not one of {list(DEVICES)}")
    need(cfg.precision in PRECISIONS, f"precision: {cfg.precision!r} is not one of {list(PRECISIONS)}")
    s = cfg.session
    need(isinstance(s.rounds, int) and s.rounds >= 0, f"session.rounds: {s.rounds!r} must be an integer >= 0")
    need(
        s.max_cases is None or int(s.max_cases) >= 1,
        f"session.max_cases: {s.max_cases!r} must be null or >= 1",
    )
    need(
        s.target_dsc is None or 0.0 <= float(s.target_dsc) <= 1.0,
        f"session.target_dsc: {s.target_dsc!r} must be null or in [0, 1]",
    )
    m = cfg.model
    need(m.norm in NORMS, f"model.norm: {m.norm!r} is not one of {list(NORMS)}")
    need(int(m.depth) >= 1 and int(m.base_filters) >= 1, "model.depth and model.base_filters must be >= 1")
    grid = list(cfg.data.preprocess.grid)
    factors = [2 ** len([lv for lv in m.pool_z_levels if lv < m.depth]), 2**m.depth, 2**m.depth]
    bad = [
        f"{'zyx'[i]}={n} (needs a multiple of {f})" for i, (n, f) in enumerate(zip(grid, factors)) if n % f
    ]
    need(not bad, f"data.preprocess.grid: {grid} does not fit model.depth={m.depth}: {', '.join(bad)}")
    t = cfg.train
    need(
        int(t.steps) >= 0 and int(t.batch_size) >= 1 and float(t.lr) > 0,
        "train.steps must be >= 0, train.batch_size >= 1 and train.lr > 0",
    )
    try:
        dataset = build_dataset(_container(cfg.data))
        robot = make_annotator(_container(cfg.simulator))
        finetune = finetune_config_from(_container(cfg.interact), valid_groups(int(m.depth)))
        train_cfg = train_config_from(_container(cfg.train))
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from exc
    return {"dataset": dataset, "robot": robot, "finetune": finetune, "train": train_cfg}


def configure_tensorflow(cfg: DictConfig) -> str:
    """Choose the device and precision; returns a description of the device used (logged as a tag)."""
    if cfg.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if cfg.device == "gpu" and not gpus:
        raise ConfigError("device: 'gpu' was asked for but TensorFlow sees no GPU (install with `.[gpu]`)")
    if cfg.precision != "float32" and not gpus:
        raise ConfigError(f"precision: {cfg.precision} needs a GPU; on the CPU use float32")
    # Always set it: a multirun runs its jobs in one process, and a policy must not leak into the next job.
    keras.mixed_precision.set_global_policy(cfg.precision)
    keras.utils.set_random_seed(int(cfg.seed))
    tf.config.experimental.enable_op_determinism()
    if gpus:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return f"gpu:{name}"
    return "cpu"


def show_progress(cfg: DictConfig) -> bool:
    if cfg.progress == "auto":
        return not os.environ.get("CI") and sys.stderr.isatty()
    return bool(cfg.progress)


def output_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return Path(HydraConfig.get().runtime.output_dir)
    path = Path("runs") / "jobs" / time.strftime("%Y-%m-%d_%H-%M-%S")
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_name(cfg: DictConfig) -> str:
    if cfg.tracking.run_name:
        return str(cfg.tracking.run_name)
    trainable = "+".join(cfg.interact.trainable) if cfg.interact.method == "iunet" else ""
    return " ".join(x for x in (cfg.interact.method, trainable, cfg.simulator.get("name") or "") if x)


@dataclass
class Summary:
    run_id: str
    curve: list[float]
    metrics: dict[str, float]
    failures: list[dict] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)


def summarise(curves: dict[str, list[float]], records) -> dict[str, float]:
    """Summary metrics of the tracking contract from per-case DSC curves and round records."""
    mean = np.mean(np.array(list(curves.values())), axis=0)
    active = [r.refine_seconds for r in records if r.round > 0 and not r.stopped]
    robot = [r.robot_seconds for r in records if r.round > 0 and not r.stopped]
    return {
        "dsc_baseline": float(mean[0]),
        "dsc_final": float(mean[-1]),
        "dsc_gain": float(mean[-1] - mean[0]),
        "dsc_best": float(mean.max()),
        "noi_85": float(np.mean([metrics.noi(c, 0.85) for c in curves.values()])),
        "noi_90": float(np.mean([metrics.noi(c, 0.90) for c in curves.values()])),
        "dsc_auc": float(np.mean([metrics.auc(c) for c in curves.values()])),
        "round_seconds": float(np.mean(active)) if active else 0.0,
        "robot_seconds": float(np.mean(robot)) if robot else 0.0,
    }


def run(cfg: DictConfig) -> Summary:
    from iunet_bench import tracking

    parsed = validate(cfg)
    dataset = parsed["dataset"]
    progress = show_progress(cfg)
    out = output_dir()
    train_ids, test_ids = dataset.split()
    if cfg.session.max_cases:
        test_ids = test_ids[: int(cfg.session.max_cases)]

    uri, experiment, artifact_root = tracking.tracking_settings(cfg)
    tracker = tracking.Tracker(
        uri,
        experiment,
        artifact_root,
        run_name=run_name(cfg),
        parent_run_id=tracking.parent_run_id_for_job(),
        tags={
            "sweep": str(cfg.tracking.sweep or ""),
            "git_commit": tracking.git_commit(),
            "data_fingerprint": dataset.fingerprint,
            "kind": "job",
        },
    )
    resolved = _container(cfg)
    tracker.log_params(tracking.flatten(resolved))
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
    tracker.log_artifact(out / "config.yaml")
    status = "FAILED"
    try:
        device = configure_tensorflow(cfg)
        tracker.set_tags({"device": device, "held_out_cases": ",".join(test_ids)})
        summary = _run_job(cfg, parsed, tracker, out, train_ids, test_ids, progress)
        summary.run_id = tracker.run_id
        status = "FINISHED" if summary.curve else "FAILED"
        return summary
    finally:
        tracker.end(status)


def _run_job(cfg, parsed, tracker, out: Path, train_ids, test_ids, progress: bool) -> Summary:
    from tqdm.auto import tqdm

    from iunet_bench.interactive import make_refiner
    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.models.config import UNetConfig
    from iunet_bench.models.groups import group_names
    from iunet_bench.models.unet import build_unet
    from iunet_bench.session import run_session
    from iunet_bench.tracking import metric_key
    from iunet_bench.train.baseline import load_or_train
    from simulators.render import save_round_png

    dataset, robot = parsed["dataset"], parsed["robot"]
    failures: list[dict] = []
    train_vols, bad = dataset.volumes(train_ids)
    failures += [{"case_id": f.case_id, "stage": "load", "error": f.error} for f in bad]
    test_vols, bad = dataset.volumes(test_ids)
    failures += [{"case_id": f.case_id, "stage": "load", "error": f.error} for f in bad]

    model_cfg = _container(cfg.model)
    unet_cfg = UNetConfig(
        base_filters=int(model_cfg["base_filters"]),
        depth=int(model_cfg["depth"]),
        norm=model_cfg["norm"],
        convs_per_level=int(model_cfg["convs_per_level"]),
        pool_z_levels=tuple(model_cfg["pool_z_levels"]),
    )
    grid = tuple(int(g) for g in cfg.data.preprocess.grid)
    bar = tqdm(total=parsed["train"].steps, desc="baseline training", disable=not progress, leave=False)

    def on_step(i: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.3f}")

    model, info = load_or_train(
        lambda: build_unet(grid, unet_cfg),
        train_vols,
        model_cfg,
        parsed["train"],
        int(cfg.seed),
        Path(cfg.train.cache_dir),
        on_step,
    )
    bar.close()
    tracker.set_tags({"baseline_key": info["key"], "baseline_cached": str(info["hit"])})
    if info["losses"]:
        tracker.log_metrics(("train_loss", v, i) for i, v in enumerate(info["losses"]))

    # Round 0 of every case comes from the baseline itself (refiners fine-tune their own copy).
    initial_predictions = {v.case_id: predict_mask(model, v.image) for v in test_vols}
    refiner = make_refiner(_container(cfg.interact), model, group_names(model))
    curves: dict[str, list[float]] = {}
    records_all = []
    losses_by_case: list[list[float]] = []
    rounds = int(cfg.session.rounds)
    target = None if cfg.session.target_dsc is None else float(cfg.session.target_dsc)
    cases_bar = tqdm(test_vols, desc="cases", disable=not progress)
    for index, volume in enumerate(cases_bar):
        cases_bar.set_postfix(case=volume.case_id)
        latest = {}
        pictures = out / "pictures" / volume.case_id if index < int(cfg.session.pictures) else None

        def on_round(record, prediction, interaction, volume=volume, latest=latest, pictures=pictures):
            latest["prediction"] = prediction
            if pictures is not None:
                pictures.mkdir(parents=True, exist_ok=True)
                save_round_png(
                    pictures / f"round_{record.round:02d}.png",
                    volume.image,
                    volume.label,
                    prediction,
                    interaction,
                    title=f"{volume.case_id} round {record.round}: DSC {record.dsc:.3f}",
                )

        try:
            initial = initial_predictions[volume.case_id]
            records = run_session(volume, initial, robot, refiner, rounds, int(cfg.seed), target, on_round)
            mask_path = dataset.write_mask(
                volume, latest["prediction"], out / "masks" / f"{volume.case_id}.nii.gz"
            )
            tracker.log_artifact(mask_path, "masks")
            if pictures is not None:
                tracker.log_artifacts(pictures, f"pictures/{volume.case_id}")
        except Exception as exc:  # one bad case never loses the rest of the job
            failures.append(
                {
                    "case_id": volume.case_id,
                    "stage": "session",
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
            )
            continue
        curve = [r.dsc for r in records]
        curves[volume.case_id] = curve
        records_all += records
        losses_by_case.append([v for r in records for v in r.losses])
        key = metric_key(volume.case_id)
        tracker.log_metrics(
            [(f"dsc.{key}", r.dsc, r.round) for r in records]
            + [(f"hd95.{key}", r.hd95, r.round) for r in records if np.isfinite(r.hd95)]
        )

    _write_rounds_csv(out / "rounds.csv", records_all)
    if failures:
        (out / "failures.json").write_text(json.dumps(failures, indent=2), encoding="utf-8")
        tracker.log_artifact(out / "failures.json")
    tracker.set_tags({"failed_cases": str(len(failures))})
    if not curves:
        return Summary("", [], {}, failures)
    mean = np.mean(np.array(list(curves.values())), axis=0)
    rows = [("dsc", v, r) for r, v in enumerate(mean)]
    hd = [[r.hd95 for r in records_all if r.round == k and np.isfinite(r.hd95)] for k in range(rounds + 1)]
    rows += [("hd95", float(np.mean(h)), k) for k, h in enumerate(hd) if h]
    effort = _cumulative_effort(records_all, list(curves), rounds)
    rows += [(f"effort_{name}", v, k) for name, series in effort.items() for k, v in enumerate(series)]
    n = min((len(x) for x in losses_by_case if x), default=0)
    if n:
        loss_mean = np.mean([x[:n] for x in losses_by_case if x], axis=0)
        rows += [("loss", float(v), i) for i, v in enumerate(loss_mean)]
    summary = summarise(curves, records_all)
    rows += [(k, v, 0) for k, v in summary.items()]
    tracker.log_metrics(rows)
    _plot_curves(out / "curves.png", curves, mean)
    tracker.log_artifact(out / "rounds.csv")
    tracker.log_artifact(out / "curves.png")
    per_round = [
        float(np.mean([r.refine_seconds for r in records_all if r.round == k and not r.stopped] or [0.0]))
        for k in range(rounds + 1)
    ]
    return Summary("", [float(v) for v in mean], summary, failures, per_round)


def _cumulative_effort(records, case_ids, rounds: int) -> dict[str, list[float]]:
    """Mean over cases of the effort spent up to and including each round (round 0 = none)."""
    names = sorted({k for r in records for k in r.effort})
    out = {}
    for name in names:
        per_case = []
        for cid in case_ids:
            series = np.zeros(rounds + 1)
            for r in records:
                if r.case_id == cid and r.round > 0:
                    series[r.round] = r.effort.get(name, 0.0)
            per_case.append(np.cumsum(series))
        out[name] = [float(v) for v in np.mean(per_case, axis=0)]
    return out


def _write_rounds_csv(path: Path, records) -> None:
    import csv

    rows = [r.row() for r in records]
    keys = sorted({k for row in rows for k in row}, key=lambda k: (k not in ("case_id", "round", "dsc"), k))
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def _plot_curves(path: Path, curves: dict[str, list[float]], mean) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for c in curves.values():
        ax.plot(range(len(c)), c, color="0.75", lw=1)
    ax.plot(range(len(mean)), mean, color="C0", lw=2.5, label=f"mean of {len(curves)} cases")
    ax.set_xlabel("round (0 = baseline)")
    ax.set_ylabel("DSC")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def format_table(summary: Summary) -> str:
    lines = [f"{'round':>5}  {'DSC':>6}  {'gain':>7}  {'seconds':>7}"]
    base = summary.curve[0]
    for r, v in enumerate(summary.curve):
        secs = f"{summary.round_seconds[r]:7.2f}" if r and r < len(summary.round_seconds) else f"{'':>7}"
        lines.append(f"{r:5d}  {v:6.3f}  {v - base:+7.3f}  {secs}")
    m = summary.metrics
    lines.append(
        f"DSC {m['dsc_baseline']:.3f} -> {m['dsc_final']:.3f} (gain {m['dsc_gain']:+.3f}), "
        f"NoI@85 {m['noi_85']:.1f}, NoI@90 {m['noi_90']:.1f}, {m['round_seconds']:.2f} s per round"
    )
    return "\n".join(lines)
