"""One benchmark job: data -> baseline -> robot-driven sessions on held-out cases -> MLflow.

`validate(cfg)` checks the whole configuration before any compute; `run(cfg)` does the job and returns
its summary. `__main__` wires these to Hydra.
"""

from __future__ import annotations

import contextlib
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


def _check(
    value,
    key: str,
    kind: type,
    minimum: float | None = None,
    maximum: float | None = None,
    nullable: bool = False,
):
    """A typed, bounded config value, or ConfigError naming `key` and what is allowed."""
    if value is None and nullable:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        what = "an integer" if kind is int else "a number"
        if minimum is not None and maximum is not None:
            bounds = f"in [{minimum:g}, {maximum:g}]"
        elif minimum is not None:
            bounds = f">= {minimum:g}"
        else:
            bounds = f"<= {maximum:g}" if maximum is not None else ""
        raise ConfigError(
            f"{key}: {value!r} must be {'null or ' if nullable else ''}{what} {bounds}".rstrip()
        )
    return kind(value)


TRACKING_SCHEMES = (
    "sqlite:///",
    "file:",
    "http://",
    "https://",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
)


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

    _check(cfg.seed, "seed", int, 0)
    need(cfg.device in DEVICES, f"device: {cfg.device!r} is not one of {list(DEVICES)}")
    need(cfg.precision in PRECISIONS, f"precision: {cfg.precision!r} is not one of {list(PRECISIONS)}")
    need(
        cfg.progress in ("auto", True, False),
        f"progress: {cfg.progress!r} is not one of ['auto', true, false]",
    )
    s = cfg.session
    _check(s.rounds, "session.rounds", int, 0)
    _check(s.max_cases, "session.max_cases", int, 1, nullable=True)
    _check(s.target_dsc, "session.target_dsc", float, 0.0, 1.0, nullable=True)
    _check(s.pictures, "session.pictures", int, 0)
    m = cfg.model
    need(m.norm in NORMS, f"model.norm: {m.norm!r} is not one of {list(NORMS)}")
    depth = _check(m.depth, "model.depth", int, 1)
    _check(m.base_filters, "model.base_filters", int, 1)
    _check(m.convs_per_level, "model.convs_per_level", int, 1)
    levels = list(m.pool_z_levels)
    need(
        all(isinstance(lv, int) and 0 <= lv < depth for lv in levels),
        f"model.pool_z_levels: {levels} must be levels in [0, {depth - 1}]",
    )
    grid = list(cfg.data.preprocess.grid)
    factors = [2 ** len(set(levels)), 2**depth, 2**depth]
    bad = [
        f"{'zyx'[i]}={n} (needs a multiple of {f})" for i, (n, f) in enumerate(zip(grid, factors)) if n % f
    ]
    need(not bad, f"data.preprocess.grid: {grid} does not fit model.depth={depth}: {', '.join(bad)}")
    t = cfg.tracking
    need(
        str(t.uri).startswith(TRACKING_SCHEMES),
        f"tracking.uri: {t.uri!r} must start with one of {list(TRACKING_SCHEMES)} (e.g. sqlite:///runs/mlflow.db)",
    )
    need(bool(t.experiment), "tracking.experiment: must be a non-empty name")
    try:
        dataset = build_dataset(_container(cfg.data))
        robot = make_annotator(_container(cfg.simulator))
        finetune = finetune_config_from(_container(cfg.interact), valid_groups(unet_config(cfg)))
        train_cfg = train_config_from(_container(cfg.train))
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, FileNotFoundError) as exc:
        raise ConfigError(str(exc)) from exc
    return {"dataset": dataset, "robot": robot, "finetune": finetune, "train": train_cfg}


def unet_config(cfg: DictConfig):
    """The model's configuration (TF-free), shared by validation and the job."""
    from iunet_bench.models.config import UNetConfig

    m = cfg.model
    return UNetConfig(
        base_filters=int(m.base_filters),
        depth=int(m.depth),
        norm=str(m.norm),
        convs_per_level=int(m.convs_per_level),
        pool_z_levels=tuple(int(v) for v in m.pool_z_levels),
    )


def configure_tensorflow(cfg: DictConfig) -> str:
    """Choose the device and precision; returns a description of the device used (logged as a tag)."""
    if cfg.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # parallel sweep jobs share a GPU: take memory as needed, not all of it at start
        with contextlib.suppress(RuntimeError):  # already initialised by an earlier job of a multirun
            tf.config.experimental.set_memory_growth(gpu, True)
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
    """The whole job. Raises ConfigError before any compute (and before any MLflow run) on bad config."""
    from iunet_bench import tracking

    parsed = validate(cfg)
    device = configure_tensorflow(cfg)  # device/precision errors also come before a run exists
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
            "sweep": tracking.sweep_name(cfg),
            "git_commit": tracking.git_commit(),
            "data_fingerprint": dataset.fingerprint,
            "device": device,
            "held_out_cases": ",".join(test_ids),
            "kind": "job",
        },
    )
    status = "FAILED"
    try:
        tracker.log_params(tracking.flatten(_container(cfg)))
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")
        tracker.log_artifact(out / "config.yaml")
        summary = _run_job(cfg, parsed, tracker, out, train_ids, test_ids, progress)
        summary.run_id = tracker.run_id
        status = "FINISHED" if summary.curve else "FAILED"
        return summary
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from a scheduler (see __main__)
        status = "KILLED"
        raise
    finally:
        tracker.end(status)


class _Failures:
    """Failed cases, written to `failures.json` and the `failed_cases` tag as each one happens."""

    def __init__(self, tracker, out: Path):
        self.tracker, self.path, self.items = tracker, out / "failures.json", []

    def add(self, case_id: str, stage: str, error: str, trace: str = "") -> None:
        self.items.append({"case_id": case_id, "stage": stage, "error": error, "traceback": trace})
        self.path.write_text(json.dumps(self.items, indent=2), encoding="utf-8")
        with contextlib.suppress(Exception):  # tracking trouble must not hide the case's own error
            self.tracker.log_artifact(self.path)
            self.tracker.set_tags({"failed_cases": str(len(self.items))})


def _run_job(cfg, parsed, tracker, out: Path, train_ids, test_ids, progress: bool) -> Summary:
    from tqdm.auto import tqdm

    from iunet_bench.interactive import build_refiner
    from iunet_bench.interactive.refiner import predict_mask
    from iunet_bench.models.unet import build_unet
    from iunet_bench.report import plot_curves
    from iunet_bench.session import run_session
    from iunet_bench.tracking import metric_key
    from iunet_bench.train.baseline import load_or_train
    from simulators.render import save_round_png

    dataset, robot = parsed["dataset"], parsed["robot"]
    failures = _Failures(tracker, out)
    tracker.set_tags({"failed_cases": "0"})
    train_vols, bad = dataset.volumes(train_ids)
    test_vols, bad_test = dataset.volumes(test_ids)
    for f in bad + bad_test:
        failures.add(f.case_id, "load", f.error)
    if not train_vols or not test_vols:
        missing = "training" if not train_vols else "held-out"
        tracker.set_tags({"error": f"no {missing} case could be loaded (see failures.json)"})
        return Summary("", [], {}, failures.items)

    model_cfg = _container(cfg.model)
    unet_cfg = unet_config(cfg)
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
        precision=str(cfg.precision),
    )
    bar.close()
    tracker.set_tags({"baseline_key": info["key"], "baseline_cached": str(info["hit"])})
    if info["losses"]:
        tracker.log_metrics(("train_loss", v, i) for i, v in enumerate(info["losses"]))

    # Round 0 of every case comes from the baseline itself (refiners fine-tune their own copy).
    initial_predictions = {v.case_id: predict_mask(model, v.image) for v in test_vols}
    refiner = build_refiner(parsed["finetune"], model)  # validated before any compute
    curves: dict[str, list[float]] = {}
    records_all = []
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
            records = run_session(
                volume,
                initial_predictions[volume.case_id],
                robot,
                refiner,
                rounds,
                int(cfg.seed),
                target,
                on_round,
            )
        except Exception as exc:  # one bad case never loses the rest of the job
            failures.add(volume.case_id, "session", f"{type(exc).__name__}: {exc}", traceback.format_exc())
            continue
        curves[volume.case_id] = [r.dsc for r in records]
        records_all += records
        key = metric_key(volume.case_id)
        tracker.log_metrics(
            [(f"dsc.{key}", r.dsc, r.round) for r in records]
            + [(f"hd95.{key}", r.hd95, r.round) for r in records]
        )
        try:  # the curve is logged; a trouble with its files must not discard it
            mask = dataset.write_mask(
                volume, latest["prediction"], out / "masks" / f"{volume.case_id}.nii.gz"
            )
            tracker.log_artifact(mask, "masks")
            if pictures is not None:
                tracker.log_artifacts(pictures, f"pictures/{volume.case_id}")
        except Exception as exc:
            failures.add(volume.case_id, "artifacts", f"{type(exc).__name__}: {exc}", traceback.format_exc())

    _write_rounds_csv(out / "rounds.csv", records_all)
    tracker.log_artifact(out / "rounds.csv")
    if not curves:
        return Summary("", [], {}, failures.items)
    mean = np.mean(np.array(list(curves.values())), axis=0)
    rows = [("dsc", v, r) for r, v in enumerate(mean)]
    hd = [[r.hd95 for r in records_all if r.round == k] for k in range(rounds + 1)]
    rows += [("hd95", float(np.mean(h)), k) for k, h in enumerate(hd)]
    effort = _cumulative_effort(records_all, list(curves), rounds)
    rows += [(f"effort_{name}", v, k) for name, series in effort.items() for k, v in enumerate(series)]
    rows += [("loss", v, i) for i, v in enumerate(_mean_loss_curve(records_all, list(curves)))]
    summary = summarise(curves, records_all)
    rows += [(k, v, 0) for k, v in summary.items()]
    tracker.log_metrics(rows)
    plot_curves(
        out / "curves.png", {f"mean of {len(curves)} cases": list(mean)}, background=curves, ylim=(0, 1)
    )
    tracker.log_artifact(out / "curves.png")
    per_round = [
        float(np.mean([r.refine_seconds for r in records_all if r.round == k and not r.stopped] or [0.0]))
        for k in range(rounds + 1)
    ]
    return Summary("", [float(v) for v in mean], summary, failures.items, per_round)


def _mean_loss_curve(records, case_ids) -> list[float]:
    """Mean fine-tuning loss per step over cases; a case that stopped early counts only while it ran."""
    per_case = [[v for r in records if r.case_id == cid for v in r.losses] for cid in case_ids]
    n = max((len(x) for x in per_case), default=0)
    if n == 0:
        return []
    padded = np.full((len(per_case), n), np.nan)
    for i, x in enumerate(per_case):
        padded[i, : len(x)] = x
    return [float(v) for v in np.nanmean(padded, axis=0)]


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
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


def format_table(summary: Summary) -> str:
    if not summary.curve:
        return "no case finished: see the failures above"
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
