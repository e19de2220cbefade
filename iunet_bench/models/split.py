"""Splitting a functional model at its frozen frontier, for fine-tuning a few layers fast.

When only some layers are trained, every layer whose output cannot depend on a trained weight is *frozen
upstream*: for a fixed input image its outputs never change. The *frozen frontier* is the set of tensors
produced by such layers (or the model input) and consumed by a layer that is trained or depends on one.
The model then factors into

    prefix: image -> frontier tensors       (run once per image)
    tail:   frontier tensors -> output      (run at every fine-tuning step)

Both are Keras models built on the original graph, so they share the original layer objects: weights
live in one place and a change made through the tail is seen by the whole model.

Example, a U-Net with head + bottleneck trained: the frontier is the last encoder pooling output (input of
the bottleneck) and every skip connection; the tail is bottleneck, decoder and head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


def _producer(tensor):
    """(layer, node) that produced a symbolic tensor of a functional model."""
    history = tensor._keras_history
    layer = history.operation
    return layer, layer._inbound_nodes[history.node_index]


def _is_input(layer) -> bool:
    return type(layer).__name__ == "InputLayer"


def _graph(model: keras.Model) -> dict[int, list]:
    """id(layer) -> the tensors it consumes in *this* model's graph (walked back from the outputs).

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


def frozen_frontier(model: keras.Model, trained: list) -> list:
    """The symbolic tensors at the frozen frontier, ordered by the model's layer order (then output index)."""
    graph = _graph(model)
    live_ids = {id(layer) for layer in live_layers(model, trained)}
    if not live_ids:
        raise ValueError("frozen_frontier: no trained layer influences the model output")
    found: dict[int, object] = {}
    order = {id(layer): i for i, layer in enumerate(model.layers)}
    for layer in model.layers:
        if id(layer) not in live_ids:
            continue
        for t in graph.get(id(layer), []):
            if id(_producer(t)[0]) not in live_ids:
                found.setdefault(id(t), t)
    return sorted(
        found.values(),
        key=lambda t: (order[id(t._keras_history.operation)], t._keras_history.tensor_index),
    )


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


def split_at_frozen_frontier(model: keras.Model, trained: list) -> FrozenSplit:
    """Factor `model` into a frozen prefix and a tail that contains every trained layer (shared layers)."""
    import keras

    frontier = frozen_frontier(model, trained)
    names = [t._keras_history.operation.name for t in frontier]
    inputs = list(model.inputs)
    if len(frontier) == len(inputs) and all(f is i for f, i in zip(frontier, inputs)):
        return FrozenSplit(None, model, names)
    prefix = keras.Model(inputs, frontier, name=f"{model.name}_frozen_prefix")
    tail = keras.Model(frontier, model.outputs, name=f"{model.name}_tail")
    return FrozenSplit(prefix, tail, names)
