"""Named layer groups: the vocabulary of `interact.trainable` (importable without TensorFlow).

Three kinds of name, each meaning "every layer with weights whose name is it or starts with it + '.'":

- blocks: `head`, `bottleneck`, `decoder`, `encoder`, and `all` (every layer);
- levels: `encoder.<i>`, `decoder.<i>` (levels count from the top, 0 = full resolution);
- single layers, as the paper opens "a layer in the deepest section": `bottleneck.conv1`, `decoder.0.up`,
  `encoder.1.bn0`, ... (`<block>.conv<j>` and, with batch norm, `<block>.bn<j>` for j < convs_per_level;
  `decoder.<i>.up`, the transposed convolution).

One function, `groups_of(layer names)`, turns the names of a network's layers with weights into the
vocabulary; `valid_groups(UNetConfig)` feeds it the names `models.unet.build_unet` gives (known before any
model exists, for config validation) and `group_names(model)` the names of a built model's layers, so the
two agree by construction (a test checks them against each other on several configurations).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from iunet_bench.models.config import UNetConfig

if TYPE_CHECKING:
    import keras

BLOCKS = ("head", "bottleneck", "decoder", "encoder", "all")
_LEVEL = re.compile(r"^(encoder|decoder)\.\d+$")


def unet_layer_names(cfg: UNetConfig) -> list[str]:
    """The names of the layers with weights of `build_unet(grid, cfg)`, in model order."""

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


def groups_of(layer_names: list[str]) -> list[str]:
    """The vocabulary for a network whose layers with weights have these names: blocks, then levels,
    then the single layers in model order."""
    blocks, levels = {"all"}, []
    for name in layer_names:
        parts = name.split(".")
        blocks.add(parts[0])
        if parts[0] in ("encoder", "decoder") and len(parts) > 2 and f"{parts[0]}.{parts[1]}" not in levels:
            levels.append(f"{parts[0]}.{parts[1]}")
    ordered_blocks = [b for b in BLOCKS if b in blocks] + sorted(blocks - set(BLOCKS))
    layers = [n for n in dict.fromkeys(layer_names) if n not in blocks]
    return ordered_blocks + sorted(levels) + layers


def valid_groups(model: UNetConfig | int) -> list[str]:
    """The group names of a U-Net with this configuration, known before it is built (config validation).

    An int is taken as the depth of an otherwise default UNetConfig (convs_per_level 2, batch norm): pass
    the job's UNetConfig so that single-layer names match the model that will be built.
    """
    cfg = UNetConfig(depth=model) if isinstance(model, int) else model
    return groups_of(unet_layer_names(cfg))


def group_names(model: keras.Model) -> list[str]:
    """Every group name valid for this built model (same vocabulary as `valid_groups` of its config)."""
    return groups_of([layer.name for layer in model.layers if layer.weights])


def describe(valid: list[str]) -> str:
    """`valid` grouped for an error message: blocks, levels, then the single layers one block per line."""
    blocks = [g for g in valid if g in BLOCKS]
    levels = [g for g in valid if _LEVEL.match(g)]
    by_block: dict[str, list[str]] = {}
    for g in valid:
        if g not in blocks and g not in levels:
            by_block.setdefault(g.rsplit(".", 1)[0] if "." in g else g, []).append(g)
    lines = [f"  blocks: {', '.join(blocks)}"]
    if levels:
        lines.append(f"  levels (0 = full resolution): {', '.join(levels)}")
    if by_block:
        lines.append("  single layers:")
        lines += [f"    {', '.join(names)}" for names in by_block.values()]
    return "\n".join(lines)


def check_groups(groups: list[str], valid: list[str]) -> None:
    """ValueError naming `interact.trainable` if `groups` is empty or holds a name not in `valid`."""
    if not groups:
        raise ValueError(f"interact.trainable: empty; choose one or more of:\n{describe(valid)}")
    unknown = [g for g in groups if g not in valid]
    if unknown:
        raise ValueError(
            f"interact.trainable: unknown layer group(s) {unknown}; valid for this model:\n{describe(valid)}"
        )


def layers_in_groups(model: keras.Model, groups: list[str]) -> list[keras.layers.Layer]:
    """The layers (with weights) that belong to any of `groups`, in model order."""
    check_groups(groups, group_names(model))

    def member(name: str) -> bool:
        return any(g == "all" or name == g or name.startswith(g + ".") for g in groups)

    return [layer for layer in model.layers if layer.weights and member(layer.name)]


def trainable_variables(model: keras.Model, groups: list[str]) -> list:
    """Trainable variables of the chosen groups, in model order; BatchNorm moving statistics never."""
    return [v for layer in layers_in_groups(model, groups) for v in layer.trainable_weights]
