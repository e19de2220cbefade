"""What a configured network costs, group by group: layers, parameters, multiply-adds per volume.

    python -m iunet_bench.models summary [OVERRIDES...]      # e.g. model=unet3d_cicek data.preprocess.grid=[24,64,64]

(Without an `interact` override the configuration is composed with `interact=paste`: nothing is
fine-tuned here, so the default `interact.trainable` must not refuse a model without its groups.)

How multiply-adds (MACs) are counted, for one volume (batch 1) on the configured grid:

- Conv3D: output voxels x kernel volume x input channels x output channels (/ groups); dilation and
  padding change nothing (padded taps are counted: the hardware computes them);
- Conv3DTranspose: input voxels x kernel volume x input channels x output channels (each input voxel
  scatters one kernel; for stride = kernel, as in the U-Nets, that is output voxels x in x out);
- Dense: positions x input x output features;
- everything else (batch norm, activations, pooling, concatenation, softmax, bias additions): 0, being
  element-wise and small beside the convolutions; a nested model's layers are not looked into (n/a).

FLOPs are about 2 x MACs. Parameters are every weight (`layer.count_params()`: BatchNorm's moving
statistics included), so the disjoint blocks add up to `model.count_params()`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["GroupCost", "LayerCost", "ModelSummary", "layer_macs", "summarize"]


@dataclass
class LayerCost:
    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int | None  # None: not counted (a nested model)


@dataclass
class GroupCost:
    name: str
    layers: list[str]
    params: int
    macs: int | None


@dataclass
class ModelSummary:
    model_name: str
    grid: tuple[int, ...]
    layers: list[LayerCost]  # the layers with weights, in model order
    groups: list[GroupCost]  # every `interact.trainable` name, in vocabulary order
    partition: list[GroupCost] = field(default_factory=list)  # disjoint groups covering every layer
    total_params: int = 0
    total_macs: int | None = 0


def _nodes(model) -> dict[int, object]:
    """id(layer) -> its node in `model`'s graph (a layer shared with another model has several)."""
    from iunet_bench.models.split import _producer

    out, stack = {}, list(model.outputs)
    while stack:
        layer, node = _producer(stack.pop())
        if id(layer) in out:
            continue
        out[id(layer)] = node
        stack.extend(node.input_tensors)
    return out


def layer_macs(layer, input_shape, output_shape) -> int | None:
    """Multiply-adds of one call of `layer` on batch 1 (see the module docstring for what is counted)."""
    import keras

    def voxels(shape):
        return math.prod(int(d) for d in shape[1:-1])

    if isinstance(layer, keras.Model):
        return None
    if isinstance(layer, keras.layers.Conv3DTranspose):
        kernel = math.prod(layer.kernel_size)
        return voxels(input_shape) * kernel * int(input_shape[-1]) * layer.filters
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)):
        kernel = math.prod(layer.kernel_size)
        groups = getattr(layer, "groups", 1) or 1
        return voxels(output_shape) * kernel * int(input_shape[-1]) * layer.filters // groups
    if isinstance(layer, keras.layers.Dense):
        positions = math.prod(int(d) for d in input_shape[1:-1]) if len(input_shape) > 2 else 1
        return positions * int(input_shape[-1]) * layer.units
    return 0


def _sum(values):
    values = list(values)
    return None if any(v is None for v in values) else sum(values)


def summarize(model, grid=None) -> ModelSummary:
    """The cost of `model` (built, functional) by layer and by group."""
    from iunet_bench.models.groups import BLOCKS, group_names, layers_in_groups

    nodes = _nodes(model)
    costs: dict[str, LayerCost] = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        node = nodes.get(id(layer))
        if node is None:
            continue
        inputs = [t.shape for t in node.input_tensors]
        output = node.output_tensors[0].shape
        costs[layer.name] = LayerCost(
            layer.name,
            type(layer).__name__,
            tuple(output[1:]),
            int(layer.count_params()),
            layer_macs(layer, inputs[0], output) if inputs else 0,
        )

    def group(name: str, members: list[str]) -> GroupCost:
        return GroupCost(
            name,
            members,
            sum(costs[n].params for n in members),
            _sum(costs[n].macs for n in members),
        )

    vocabulary = group_names(model)
    groups = [group(g, [layer.name for layer in layers_in_groups(model, [g])]) for g in vocabulary]
    by_name = {g.name: g for g in groups}
    top = [g for g in vocabulary if g != "all" and (g in BLOCKS or "." not in g)]
    seen: set[str] = set()
    partition = []
    disjoint = True
    for name in top:
        members = by_name[name].layers
        disjoint &= not (set(members) & seen)
        seen |= set(members)
        partition.append(by_name[name])
    rest = [n for n in costs if n not in seen]
    if rest:
        partition.append(group("(in no group)", rest))
    if not disjoint:  # `keras` groups may overlap: one row per layer instead
        partition = [group(n, [n]) for n in costs]
    grid = tuple(int(n) for n in (grid or model.inputs[0].shape[1:4]))
    return ModelSummary(
        model.name,
        grid,
        list(costs.values()),
        groups,
        partition,
        sum(c.params for c in costs.values()),
        _sum(c.macs for c in costs.values()),
    )


def _num(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"


def _giga(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1e9:.3f}"


def format_summary(s: ModelSummary) -> str:
    """The summary as text: groups (name, layers, parameters, GMACs), then the layers."""
    lines = [
        f"model {s.model_name} on grid {list(s.grid)} (z, y, x): {_num(s.total_params)} parameters, "
        f"{_giga(s.total_macs)} G multiply-adds per volume (FLOPs ~ 2x)",
        "",
        f"{'group':<24} {'layers':>6} {'parameters':>14} {'GMAC/volume':>12}  members",
    ]
    for g in s.groups:
        members = (
            ", ".join(g.layers) if len(g.layers) <= 6 else f"{', '.join(g.layers[:5])}, ... {g.layers[-1]}"
        )
        lines.append(f"{g.name:<24} {len(g.layers):>6} {_num(g.params):>14} {_giga(g.macs):>12}  {members}")
    lines += ["", "disjoint blocks (they add up to the total):"]
    for g in s.partition:
        lines.append(f"  {g.name:<22} {len(g.layers):>6} {_num(g.params):>14} {_giga(g.macs):>12}")
    lines += ["", f"{'layer':<24} {'type':<20} {'output (z, y, x, c)':<22} {'parameters':>12} {'MACs':>16}"]
    for c in s.layers:
        lines.append(
            f"{c.name:<24} {c.kind:<20} {str(list(c.output_shape)):<22} {_num(c.params):>12} {_num(c.macs):>16}"
        )
    return "\n".join(lines)


USAGE = (
    "usage: python -m iunet_bench.models summary [OVERRIDES...]   (Hydra overrides, e.g. model=dilated_fcn)"
)
