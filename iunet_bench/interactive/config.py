"""The `interact` config group: one dataclass per method, validated without TensorFlow (before any compute).

`finetune_config_from(mapping, valid_groups)` checks a method's keys (unknown, missing and bad values are
errors that name the key and what is allowed) and returns its config; `make_refiner(mapping, model,
valid_groups)` builds the refiner the job uses for every case.

Methods: `iunet` (layer-subset fine-tuning, paper sections 2.5-2.6), `bifseg` (image-specific fine-tuning of
all layers with the same loss), `paste` (no learning: the scribbles pasted into the previous prediction),
`random_walker` (scikit-image's random walker seeded by the scribbles and the confident prediction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iunet_bench.interactive.weights import WeightConfig
from iunet_bench.models.groups import check_groups

# How the weight map enters the Dice of eq. 3 (`interact.weights.mode`); train/loss.py reads it from here.
WEIGHT_MODES = ("both", "numerator")


@dataclass(frozen=True)
class FinetuneConfig:
    """iunet and bifseg: fine-tune `trainable` layer groups with the eq. 3 loss for `steps` Adam steps."""

    method: str = "iunet"
    trainable: tuple[str, ...] = ("head", "bottleneck")
    steps: int = 20
    lr: float = 1e-4
    lambda_volume: float = 0.1
    weight_mode: str = "both"  # both | numerator (eq. 3 exactly as printed)
    accumulate: bool = True  # keep earlier rounds' scribbles as constraints
    fast: bool = True  # frozen prefix computed once per case, whole round in one compiled function
    weights: WeightConfig = field(default_factory=WeightConfig)


@dataclass(frozen=True)
class PasteConfig:
    """paste: the previous prediction with the scribbles pasted in."""

    method: str = "paste"
    accumulate: bool = True


@dataclass(frozen=True)
class RandomWalkerConfig:
    """random_walker: seeds = the scribbles + the previous prediction, except the class a stroke contradicts
    inside its geodesic band (`weights.threshold`) and a shell of `boundary_voxels` around the prediction's
    boundary (see `classic.random_walker_seeds`)."""

    method: str = "random_walker"
    accumulate: bool = True
    beta: float = 130.0
    boundary_voxels: int = 0
    tol: float = 1e-3
    weights: WeightConfig = field(default_factory=WeightConfig)


_WEIGHT_KEYS = {"weights": {"scribble", "uncertain", "mode"}, "geodesic": {"threshold", "intensity_weight"}}
_FINETUNE = {"method", "steps", "lr", "lambda_volume", "accumulate", "fast", "weights", "geodesic"}
KEYS: dict[str, set[str]] = {
    "iunet": _FINETUNE | {"trainable"},
    "bifseg": _FINETUNE,
    "paste": {"method", "accumulate"},
    "random_walker": {"method", "accumulate", "beta", "boundary_voxels", "tol", "geodesic"},
}
METHODS = tuple(KEYS)


def _check_keys(cfg: Mapping[str, Any], method: str) -> None:
    """Unknown keys (in no method) are errors; keys of other methods are ignored, so that an experiment
    file may set e.g. `interact.steps` whichever method is chosen."""
    allowed = KEYS[method]
    unknown = sorted(set(cfg) - set().union(*KEYS.values()))
    if unknown:
        raise ValueError(
            f"interact: unknown key(s) {[f'interact.{k}' for k in unknown]}; method {method!r} uses "
            f"{sorted(allowed)}"
        )
    if method == "bifseg" and cfg.get("trainable") not in (None, "all", ["all"]):
        raise ValueError(
            f"interact.trainable: method 'bifseg' fine-tunes all layers; got {cfg['trainable']!r} "
            "(use method iunet for a layer subset)"
        )
    missing = sorted(allowed - set(cfg) - {"fast", "accumulate"})
    if missing:
        raise ValueError(f"interact: method {method!r} needs key(s) {[f'interact.{k}' for k in missing]}")
    for group, keys in _WEIGHT_KEYS.items():
        if group not in cfg or group not in allowed:
            continue
        if not isinstance(cfg[group], Mapping):
            raise ValueError(f"interact.{group}: expected a mapping with keys {sorted(keys)}")
        if set(cfg[group]) != keys:
            raise ValueError(
                f"interact.{group}: keys {sorted(cfg[group])} differ from the expected {sorted(keys)}"
            )


def _number(cfg: Mapping[str, Any], key: str, kind=float, minimum: float | None = None, strict=False):
    path = f"interact.{key}"
    value = cfg
    for part in key.split("."):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: {value!r} is not a number")
    if kind is int and value != int(value):
        raise ValueError(f"{path}: {value!r} must be an integer")
    value = kind(value)
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{path}: {value} must be {'>' if strict else '>='} {minimum}")
    return value


def _flag(cfg: Mapping[str, Any], key: str, default: bool) -> bool:
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"interact.{key}: {value!r} must be true or false")
    return value


def _geodesic(cfg: Mapping[str, Any], scribble: float = 3.0, uncertain: float = 0.0) -> WeightConfig:
    return WeightConfig(
        scribble=scribble,
        uncertain=uncertain,
        threshold=_number(cfg, "geodesic.threshold"),
        intensity_weight=_number(cfg, "geodesic.intensity_weight"),
    )


def finetune_config_from(cfg: Mapping[str, Any], valid_groups: list[str]):
    """`interact` mapping -> the method's config, raising ValueError that names the key and allowed values.

    `valid_groups`: the layer groups of the model (`models.groups.valid_groups(unet_config)` before it
    exists, `models.groups.group_names(model)` after).
    """
    method = cfg.get("method")
    if method not in METHODS:
        raise ValueError(f"interact.method: {method!r} is not one of {list(METHODS)}")
    _check_keys(cfg, method)
    accumulate = _flag(cfg, "accumulate", True)
    if method == "paste":
        return PasteConfig(accumulate=accumulate)
    if method == "random_walker":
        return RandomWalkerConfig(
            accumulate=accumulate,
            beta=_number(cfg, "beta", minimum=0.0, strict=True),
            boundary_voxels=_number(cfg, "boundary_voxels", int, minimum=0),
            tol=_number(cfg, "tol", minimum=0.0, strict=True),
            weights=_geodesic(cfg),
        )
    if method == "bifseg":
        trainable = ["all"]
    else:
        trainable = cfg.get("trainable")
        if isinstance(trainable, str):
            trainable = [trainable]
        if trainable is not None and not isinstance(trainable, (list, tuple)):
            raise ValueError(f"interact.trainable: expected a list of layer group names, got {trainable!r}")
        check_groups(list(trainable or []), valid_groups)
    mode = cfg["weights"]["mode"]
    if mode not in WEIGHT_MODES:
        raise ValueError(f"interact.weights.mode: {mode!r} is not one of {list(WEIGHT_MODES)}")
    return FinetuneConfig(
        method=method,
        trainable=tuple(dict.fromkeys(trainable)),
        steps=_number(cfg, "steps", int, minimum=0),
        lr=_number(cfg, "lr", minimum=0.0, strict=True),
        lambda_volume=_number(cfg, "lambda_volume", minimum=0.0),
        weight_mode=mode,
        accumulate=accumulate,
        fast=_flag(cfg, "fast", True),
        weights=_geodesic(
            cfg,
            scribble=_number(cfg, "weights.scribble", minimum=0.0),
            uncertain=_number(cfg, "weights.uncertain", minimum=0.0),
        ),
    )


def make_refiner(cfg: Mapping[str, Any], model, valid_groups: list[str]):
    """The refiner for an `interact` mapping: built once per job, then `start` per case, `refine` per round."""
    return build_refiner(finetune_config_from(cfg, valid_groups), model)


def build_refiner(parsed, model):
    """The refiner for an already validated config (what `finetune_config_from` returned)."""
    if isinstance(parsed, PasteConfig):
        from iunet_bench.interactive.classic import PasteRefiner

        return PasteRefiner(parsed)
    if isinstance(parsed, RandomWalkerConfig):
        from iunet_bench.interactive.classic import RandomWalkerRefiner

        return RandomWalkerRefiner(parsed)
    from iunet_bench.interactive.refiner import IUnetRefiner

    return IUnetRefiner(model, parsed)
