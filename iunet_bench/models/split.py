"""Splitting a functional model at its frozen frontier, for fine-tuning a few layers fast.

When only some layers are trained, every layer whose output cannot depend on a trained weight is *frozen
upstream*: for a fixed input image its outputs never change. The *frozen frontier* is the set of tensors
produced by such layers (or the model input) and consumed by a layer that is trained or depends on one.
The model then factors into

    prefix: image -> frontier tensors       (run once per image)
    tail:   frontier tensors -> output      (run at every fine-tuning step)

Both are Keras models that call the original layer objects, so weights live in one place and a change
made through the tail is seen by the whole model.

Skip folding (`fold=True`): a frozen convolution of a concatenation of live and frozen tensors (a U-Net
decoder's first convolution on [upsampled, skip]) is linear in its input channels, so
conv(concat(live, frozen), K) = conv(live, K_live) + conv(frozen, K_frozen) + bias. The frozen half is
computed once per image in the prefix (it replaces the skip tensor in the frontier) and the tail convolves
only the live channels: less work forward and backward, same result up to float summation order.

Example, a U-Net with head + bottleneck trained: the frontier is the last encoder pooling output (input of
the bottleneck) and, per decoder level, the skip connection's share of that level's first convolution; the
tail is bottleneck, decoder and head.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops


def _producer(tensor):
    """(layer, node) that produced a symbolic tensor of a functional model."""
    history = tensor._keras_history
    layer = history.operation
    return layer, layer._inbound_nodes[history.node_index]


def _is_input(layer) -> bool:
    return type(layer).__name__ == "InputLayer"


def _graph(model: keras.Model) -> dict[int, list]:
    """id(layer) -> the tensors it consumes in *this* model's graph (walked back from the outputs).
    Each layer is assumed to be called once in the model (true of the networks in `models`).

    Shared layers also get nodes in other models (the tail built here is one), so a layer's own
    `_inbound_nodes` may mention tensors from elsewhere; the outputs' histories never do.
    """
    inputs: dict[int, list] = {}
    stack = list(model.outputs)
    while stack:
        layer, node = _producer(stack.pop())
        if id(layer) in inputs:
            continue
        consumed = [] if _is_input(layer) else list(node.input_tensors)
        inputs[id(layer)] = consumed
        stack.extend(consumed)
    return inputs


def can_split(model: keras.Model) -> str | None:
    """None when `model` can be split at its frozen frontier (a functional model, each layer called once
    in it, no subclassed model inside as a layer), else why not (one line, for a note)."""
    from keras.src.models.functional import Functional

    if not isinstance(model, Functional) or not getattr(model, "outputs", None):
        return f"model {model.name!r} is not a functional Keras model"
    node_of: dict[int, int] = {}
    stack = list(model.outputs)
    while stack:
        tensor = stack.pop()
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            return f"model {model.name!r}: a tensor of its graph has no Keras history"
        layer = history.operation
        if node_of.setdefault(id(layer), history.node_index) != history.node_index:
            return f"layer {layer.name!r} is called more than once in model {model.name!r}"
        if not _is_input(layer):
            stack.extend(layer._inbound_nodes[history.node_index].input_tensors)
    for layer in model.layers:
        if isinstance(layer, keras.Model) and not isinstance(layer, Functional):
            return f"layer {layer.name!r} of model {model.name!r} is a subclassed model (one opaque layer)"
    return None


def split_or_reason(model: keras.Model, trained: list, fold: bool = True) -> tuple[FrozenSplit | None, str]:
    """(`split_at_frozen_frontier(model, trained, fold)`, "") when the model can be split, else
    (None, why not): the caller falls back to the straightforward path with a one-line note."""
    why = can_split(model)
    if why:
        return None, why
    try:
        return split_at_frozen_frontier(model, trained, fold), ""
    except Exception as exc:  # noqa: BLE001 - any failure of the split means: run the whole network
        return None, f"splitting model {model.name!r} failed ({type(exc).__name__}: {exc})"


def live_layers(model: keras.Model, trained: list) -> list:
    """Layers whose outputs depend on a trained layer (the trained layers included), in model order.

    These are the layers a fine-tuning step must run forward; the others are frozen upstream.
    """
    graph = _graph(model)
    trained_ids = {id(layer) for layer in trained}
    live: set[int] = set()
    for layer in model.layers:  # topological order: parents are decided first
        parents = [id(_producer(t)[0]) for t in graph.get(id(layer), [])]
        if id(layer) in trained_ids or any(p in live for p in parents):
            live.add(id(layer))
    return [layer for layer in model.layers if id(layer) in live]


def backprop_layers(model: keras.Model, trained: list) -> list:
    """Live layers with a live input: the backward pass must carry a gradient through their input (the
    others, fed only by the frontier, need a weight gradient at most). For counting a step's work."""
    graph = _graph(model)
    live_ids = {id(layer) for layer in live_layers(model, trained)}
    return [
        layer
        for layer in model.layers
        if id(layer) in live_ids and any(id(_producer(t)[0]) in live_ids for t in graph.get(id(layer), []))
    ]


def _consumers(graph: dict[int, list]) -> dict[int, int]:
    """id(tensor) -> how many layers of the graph consume it."""
    count: dict[int, int] = {}
    for consumed in graph.values():
        for t in consumed:
            count[id(t)] = count.get(id(t), 0) + 1
    return count


def _channel_slices(concat_inputs: list) -> list[tuple[int, int]]:
    out, start = [], 0
    for t in concat_inputs:
        out.append((start, start + int(t.shape[-1])))
        start += int(t.shape[-1])
    return out


def _pick(slices: list[tuple[int, int]], live: list[bool], flag: bool) -> list[int]:
    """The channel indices of the concatenated inputs whose liveness is `flag`."""
    return [c for (a, b), f in zip(slices, live) if f == flag for c in range(a, b)]


class PartialConv(keras.layers.Layer):
    """The part of a frozen `conv` (Conv3D on a channel concatenation) fed by `channels` of its input.

    call(parts): conv(concat(parts), kernel[..., channels, :]), plus the bias when `with_bias`;
    call(parts, rest): ... + rest, then the conv's activation (the complete output).
    It reads the conv's own kernel and bias: no weights of its own.
    """

    def __init__(self, conv, channels, with_bias: bool, **kwargs):
        super().__init__(dtype=conv.dtype_policy, trainable=False, **kwargs)
        self.conv = conv
        self.channels = np.asarray(channels, np.int32)
        self.with_bias = with_bias

    def call(self, parts, rest=None):
        conv = self.conv
        x = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)
        kernel = ops.cast(ops.take(conv.kernel, self.channels, axis=3), x.dtype)
        y = ops.conv(
            x,
            kernel,
            strides=conv.strides,
            padding=conv.padding,
            dilation_rate=conv.dilation_rate,
            data_format=conv.data_format,
        )
        if self.with_bias and conv.use_bias:
            y = y + ops.cast(conv.bias, y.dtype)
        if rest is not None:
            y = conv.activation(y + rest)
        return y

    def compute_output_shape(self, parts_shape, rest_shape=None):
        return self.conv.compute_output_shape((*parts_shape[0][:-1], len(self.channels)))


def _foldable(layer, graph, live_ids, trained_ids, consumers):
    """For a frozen, live Conv3D fed only by a Concatenate (last axis) of live and frozen tensors, used by
    nothing else: (concat layer, its inputs, live flags). Else None."""
    if type(layer) is not keras.layers.Conv3D or id(layer) in trained_ids or id(layer) not in live_ids:
        return None
    if getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last":
        return None
    consumed = graph.get(id(layer), [])
    if len(consumed) != 1 or consumers.get(id(consumed[0]), 0) != 1:
        return None
    concat, _ = _producer(consumed[0])
    if not isinstance(concat, keras.layers.Concatenate) or concat.axis not in (-1, 4):
        return None
    parts = graph[id(concat)]
    live = [id(_producer(t)[0]) in live_ids for t in parts]
    if all(live) or not any(live):
        return None
    return concat, parts, live


@dataclass
class FrozenSplit:
    """prefix(image) -> frontier (None when the frontier is the input itself); tail(frontier) -> output.

    `features` and `run_tail` take and give the frontier as a list of tensors, whatever input structure
    the underlying Keras models declare.
    """

    prefix: keras.Model | None
    tail: keras.Model
    frontier_names: list[str]

    def features(self, x) -> list:
        """The frontier tensors for a batch of images (computed once per image)."""
        if self.prefix is None:
            return [x]
        out = self.prefix([x], training=False)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def run_tail(self, features: list, training: bool = False):
        inputs = features if isinstance(self.tail.input, list) else features[0]
        return self.tail(inputs, training=training)


def split_at_frozen_frontier(model: keras.Model, trained: list, fold: bool = True) -> FrozenSplit:
    """Factor `model` into a frozen prefix and a tail that holds every trained layer (shared layers).

    fold: also precompute the frozen channels' share of frozen convolutions on concatenations (see the
    module docstring); False keeps the plain frontier.
    """
    graph = _graph(model)
    live_ids = {id(layer) for layer in live_layers(model, trained)}
    trained_ids = {id(layer) for layer in trained}
    consumers = _consumers(graph)
    folds = {}
    if fold:
        for layer in model.layers:
            found = _foldable(layer, graph, live_ids, trained_ids, consumers)
            if found:
                folds[id(layer)] = found
    skipped = {id(concat) for concat, _, _ in folds.values()}

    # What the tail consumes from the frozen side: frontier tensors (unless only a folded concat reads
    # them) and, per folded convolution, its frozen channels' share.
    needed: dict[int, object] = {}
    order = {id(layer): i for i, layer in enumerate(model.layers)}
    for layer in model.layers:
        if id(layer) not in live_ids or id(layer) in skipped:
            continue
        sources = graph.get(id(layer), [])
        if id(layer) in folds:
            _, parts, live = folds[id(layer)]
            sources = [t for t, is_live in zip(parts, live) if is_live]
        for t in sources:
            if id(_producer(t)[0]) not in live_ids:
                needed.setdefault(id(t), t)
    frontier = sorted(
        needed.values(),
        key=lambda t: (order[id(t._keras_history.operation)], t._keras_history.tensor_index),
    )
    if not folds and len(frontier) == 1 and frontier[0] is model.inputs[0] and len(model.inputs) == 1:
        return FrozenSplit(None, model, [model.inputs[0].name])

    cached, names = list(frontier), [t._keras_history.operation.name for t in frontier]
    values = {}
    tail_inputs = []
    for t in frontier:
        values[id(t)] = keras.Input(batch_shape=t.shape, dtype=t.dtype, name=f"{t.name}_cached")
        tail_inputs.append(values[id(t)])
    for layer in model.layers:
        if id(layer) not in live_ids or id(layer) in skipped:
            continue
        node = _producer(layer.output)[1]
        if id(layer) in folds:
            concat, parts, live = folds[id(layer)]
            slices = _channel_slices(parts)
            frozen_parts = [t for t, f in zip(parts, live) if not f]
            share = PartialConv(
                layer, _pick(slices, live, False), with_bias=True, name=f"{layer.name}.frozen_share"
            )(frozen_parts)
            share_input = keras.Input(batch_shape=share.shape, dtype=share.dtype, name=f"{layer.name}_share")
            cached.append(share)
            names.append(f"{layer.name}[{concat.name} frozen channels]")
            tail_inputs.append(share_input)
            live_parts = [values[id(t)] for t, f in zip(parts, live) if f]
            out = PartialConv(
                layer, _pick(slices, live, True), with_bias=False, name=f"{layer.name}.live_share"
            )(live_parts, share_input)
            values[id(layer.output)] = out
            continue
        args, kwargs = node.arguments.fill_in(values)
        outs = layer(*args, **kwargs)
        for original, new in zip(node.outputs, outs if isinstance(outs, (list, tuple)) else [outs]):
            values[id(original)] = new
    prefix = keras.Model(model.inputs, cached, name=f"{model.name}_frozen_prefix")
    tail = keras.Model(tail_inputs, [values[id(t)] for t in model.outputs], name=f"{model.name}_tail")
    return FrozenSplit(prefix, tail, names)
