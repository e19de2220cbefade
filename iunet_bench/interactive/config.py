"""Validation of the `interact` config group, without TensorFlow (runs before any compute)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from iunet_bench.interactive.weights import WeightConfig

METHODS = ("iunet",)
WEIGHT_MODES = ("both", "numerator")


def finetune_config_from(cfg: Mapping[str, Any], valid_groups: list[str]):
    """`interact` mapping -> FinetuneConfig, raising ValueError that names the key and the allowed values."""
    from iunet_bench.interactive.refiner import FinetuneConfig

    method = cfg.get("method")
    if method not in METHODS:
        raise ValueError(f"interact.method: {method!r} is not one of {list(METHODS)}")
    trainable = cfg.get("trainable")
    if isinstance(trainable, str):
        trainable = [trainable]
    if not trainable:
        raise ValueError(f"interact.trainable: empty; choose one or more of {valid_groups}")
    unknown = [g for g in trainable if g not in valid_groups]
    if unknown:
        raise ValueError(
            f"interact.trainable: unknown layer group(s) {unknown}; valid for this model: {valid_groups}"
        )
    steps, lr = int(cfg["steps"]), float(cfg["lr"])
    if steps < 0:
        raise ValueError(f"interact.steps: {steps} must be >= 0")
    if lr <= 0:
        raise ValueError(f"interact.lr: {lr} must be > 0")
    w, g = cfg["weights"], cfg["geodesic"]
    if w["mode"] not in WEIGHT_MODES:
        raise ValueError(f"interact.weights.mode: {w['mode']!r} is not one of {list(WEIGHT_MODES)}")
    if float(w["scribble"]) < 0 or float(w["uncertain"]) < 0:
        raise ValueError("interact.weights.scribble and interact.weights.uncertain must be >= 0")
    if float(cfg["lambda_volume"]) < 0:
        raise ValueError(f"interact.lambda_volume: {cfg['lambda_volume']} must be >= 0")
    return FinetuneConfig(
        trainable=tuple(trainable),
        steps=steps,
        lr=lr,
        lambda_volume=float(cfg["lambda_volume"]),
        weight_mode=str(w["mode"]),
        accumulate=bool(cfg.get("accumulate", True)),
        weights=WeightConfig(
            scribble=float(w["scribble"]),
            uncertain=float(w["uncertain"]),
            threshold=float(g["threshold"]),
            intensity_weight=float(g["intensity_weight"]),
        ),
    )


def make_refiner(cfg: Mapping[str, Any], model, valid_groups: list[str]):
    from iunet_bench.interactive.refiner import IUnetRefiner

    return IUnetRefiner(model, finetune_config_from(cfg, valid_groups))
