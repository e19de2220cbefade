"""Named layer groups: the vocabulary of `interact.trainable` (importable without TensorFlow).

Three kinds of name, each meaning "every layer with weights whose name is it or starts with it + '.'":

- blocks: `head`, `bottleneck`, `decoder`, `encoder`, and `all` (every layer);
- levels: `encoder.<i>`, `decoder.<i>` (levels count from the top, 0 = full resolution);
- single layers, as the paper opens "a layer in the deepest section": `bottleneck.conv1`, `decoder.0.up`,
  `encoder.1.bn0`, ... (`<block>.conv<j>` and, with batch norm, `<block>.bn<j>` for j < convs_per_level;
  `decoder.<i>.up`, the transposed convolution).

One function, `groups_of(layer names)` (in `models.names`, with the built-in networks' layer names, so that
`models.config` needs no import of this module), turns the names of a network's layers with weights into the
vocabulary; `valid_groups(UNetConfig)` feeds it the names `models.unet.build_unet` gives (known before any
model exists, for config validation) and `group_names(model)` the names of a built model's layers, so the
two agree by construction (a test checks them against each other on several configurations).

The other architectures (`model.name`) speak the same language:

- `unet3d_cicek`: exactly the U-Net names above (two convolutions per level);
- `dilated_fcn`: blocks `block` (every dilated block), `concat` (the 1x1x1 compressions `concat.<i>` of
  each block's output and the fusion `concat.fuse` of their concatenation), `head`, `all`; levels
  `block.<i>` (block i, dilation `model.dilations[i]`); single layers `block.<i>.conv<j>`,
  `block.<i>.bn<j>`, `concat.<i>`, `concat.fuse`;
- `keras` (your own model): the keys of `model.groups`, each the layers whose name matches one of its
  regular expressions (re.search), and `all`. The built model carries them in a weightless identity layer
  `byo.groups` at its output (so they survive `get_config`/`from_config` copies); `group_names` and
  `layers_in_groups` read them from there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from iunet_bench.models.config import CicekConfig, DilatedFCNConfig, KerasModelConfig, UNetConfig
from iunet_bench.models.names import (
    BLOCKS,
    byo_groups,
    dilated_layer_names,
    groups_of,
    unet_layer_names,
)

if TYPE_CHECKING:
    import keras

_LEVEL = re.compile(r"^(encoder|decoder|block)\.\d+$")
BYO_GROUPS_LAYER = "byo.groups"  # the weightless layer that carries a `keras` model's groups


def layer_names(cfg) -> list[str]:
    """The names of the layers with weights of the network `cfg` builds (not for `keras`: unknown
    before its file is loaded)."""
    if isinstance(cfg, (UNetConfig, CicekConfig)):
        return unet_layer_names(cfg)
    if isinstance(cfg, DilatedFCNConfig):
        return dilated_layer_names(cfg)
    raise TypeError(f"no layer names known before building for {type(cfg).__name__}")


def valid_groups(model) -> list[str]:
    """The group names of the network of this `model` config, known before it is built (validation).

    An int is taken as the depth of an otherwise default UNetConfig (convs_per_level 2, batch norm): pass
    the job's model config so that single-layer names match the model that will be built.
    """
    cfg = UNetConfig(depth=model) if isinstance(model, int) else model
    if isinstance(cfg, KerasModelConfig):
        return byo_groups(cfg.groups)
    return groups_of(layer_names(cfg))


def _byo_patterns(model: keras.Model) -> dict[str, tuple[str, ...]] | None:
    """The `model.groups` a `keras` (bring your own) model carries, else None."""
    for layer in reversed(model.layers):
        if layer.name == BYO_GROUPS_LAYER:
            return {g: tuple(p) for g, p in layer.groups.items()}
    return None


def group_names(model: keras.Model) -> list[str]:
    """Every group name valid for this built model (same vocabulary as `valid_groups` of its config)."""
    patterns = _byo_patterns(model)
    if patterns is not None:
        return byo_groups(patterns)
    return groups_of([layer.name for layer in model.layers if layer.weights])


def byo_members(layer_names: Sequence[str], patterns: Sequence[str]) -> list[str]:
    """The names among `layer_names` that one of the regular expressions `patterns` finds (re.search)."""
    compiled = [re.compile(p) for p in patterns]
    return [n for n in layer_names if any(c.search(n) for c in compiled)]


def describe(valid: list[str]) -> str:
    """`valid` grouped for an error message: blocks, levels, then the single layers one block per line."""
    blocks = [g for g in valid if g in BLOCKS or "." not in g]  # `keras` groups are blocks too
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
    patterns = _byo_patterns(model)
    if patterns is not None:
        names = [layer.name for layer in model.layers if layer.weights]
        chosen = (
            set(names) if "all" in groups else {n for g in groups for n in byo_members(names, patterns[g])}
        )
        return [layer for layer in model.layers if layer.weights and layer.name in chosen]

    def member(name: str) -> bool:
        return any(g == "all" or name == g or name.startswith(g + ".") for g in groups)

    return [layer for layer in model.layers if layer.weights and member(layer.name)]


def trainable_variables(model: keras.Model, groups: list[str]) -> list:
    """Trainable variables of the chosen groups, in model order; BatchNorm moving statistics never."""
    return [v for layer in layers_in_groups(model, groups) for v in layer.trainable_weights]
