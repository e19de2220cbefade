"""The names behind the layer groups, from plain values: the layers with weights a built-in network will
have, and the `interact.trainable` vocabulary made of them (`models.groups` has the whole story).

Imports neither the model schemas nor TensorFlow: `models.config` asks it for a schema's vocabulary and
`models.groups` builds on it, so neither of those two imports the other back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

BLOCKS = ("head", "bottleneck", "decoder", "encoder", "concat", "block", "all")
_LEVELLED = ("encoder", "decoder", "block")


def unet_layer_names(cfg) -> list[str]:
    """The names of the layers with weights of `build_unet(grid, cfg)` (or `build_cicek`), in model order."""

    def block(prefix: str) -> list[str]:
        names = []
        for j in range(cfg.convs_per_level):
            names.append(f"{prefix}.conv{j}")
            if cfg.norm == "batch":
                names.append(f"{prefix}.bn{j}")
        return names

    names = [n for level in range(cfg.depth) for n in block(f"encoder.{level}")]
    names += block("bottleneck")
    for level in reversed(range(cfg.depth)):
        names += [f"decoder.{level}.up", *block(f"decoder.{level}")]
    return [*names, "head"]


def dilated_layer_names(cfg) -> list[str]:
    """The names of the layers with weights of `build_dilated_fcn(grid, cfg)`, in model order."""
    names = []
    for i, convs in enumerate(cfg.convs_per_block):
        for j in range(convs):
            names.append(f"block.{i}.conv{j}")
            if cfg.norm == "batch":
                names.append(f"block.{i}.bn{j}")
    names += [f"concat.{i}" for i in range(len(cfg.dilations))]
    return [*names, "concat.fuse", "head"]


def byo_groups(groups: Mapping[str, Sequence[str]]) -> list[str]:
    """The vocabulary of a `keras` model with these `model.groups`: their names, then `all`."""
    return [*(g for g in groups if g != "all"), "all"]


def groups_of(layer_names: list[str]) -> list[str]:
    """The vocabulary for a network whose layers with weights have these names: blocks, then levels,
    then the single layers in model order."""
    blocks, levels = {"all"}, []
    for name in layer_names:
        parts = name.split(".")
        blocks.add(parts[0])
        if parts[0] in _LEVELLED and len(parts) > 2 and f"{parts[0]}.{parts[1]}" not in levels:
            levels.append(f"{parts[0]}.{parts[1]}")
    ordered_blocks = [b for b in BLOCKS if b in blocks] + sorted(blocks - set(BLOCKS))
    layers = [n for n in dict.fromkeys(layer_names) if n not in blocks]
    return ordered_blocks + sorted(levels) + layers
