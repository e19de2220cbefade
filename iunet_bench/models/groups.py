"""Named layer groups: the vocabulary of `interact.trainable`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

_ORDER = {"head": 0, "bottleneck": 1, "decoder": 2, "encoder": 3, "all": 4}


def _sorted(names) -> list[str]:
    return sorted(names, key=lambda n: (_ORDER.get(n.split(".")[0], 9), n))


def valid_groups(depth: int) -> list[str]:
    """The group names of a U-Net of this depth, known before any model is built (for config validation)."""
    names = {"head", "bottleneck", "decoder", "encoder", "all"}
    names |= {f"{part}.{i}" for part in ("encoder", "decoder") for i in range(depth)}
    return _sorted(names)


def group_names(model: keras.Model) -> list[str]:
    """Every group name valid for this model: head, bottleneck, decoder, decoder.<i>, encoder, encoder.<i>, all."""
    names = {"all"}
    for layer in model.layers:
        if not layer.weights:
            continue
        parts = layer.name.split(".")
        names.add(parts[0])
        if parts[0] in ("encoder", "decoder"):
            names.add(f"{parts[0]}.{parts[1]}")
    return _sorted(names)


def layers_in_groups(model: keras.Model, groups: list[str]) -> list[keras.layers.Layer]:
    """The layers (with weights) that belong to any of `groups`, in model order."""
    valid = group_names(model)
    unknown = [g for g in groups if g not in valid]
    if unknown:
        raise ValueError(
            f"interact.trainable: unknown layer group(s) {unknown}; valid for this model: {valid}"
        )
    if not groups:
        raise ValueError(f"interact.trainable: empty; choose from {valid}")

    def member(name: str) -> bool:
        return any(g == "all" or name == g or name.startswith(g + ".") for g in groups)

    return [layer for layer in model.layers if layer.weights and member(layer.name)]


def trainable_variables(model: keras.Model, groups: list[str]):
    """Trainable variables of the chosen groups; BatchNorm moving statistics are never included."""
    out = []
    for layer in layers_in_groups(model, groups):
        out.extend(v for v in layer.trainable_weights)
    return out
