"""The backend module Keras runs on, and the one interface each backend module fulfils.

    backend = engine.current()
    round_fn = backend.round_function(forward, variables, weights, optimizer, loss, steps)
    losses, probability = round_fn(inputs, target, weight, scribbles)      # numpy out
    step = backend.train_step(model, optimizer, loss)
    loss = step(x, y)                                                      # a float

`forward(inputs, training)` runs the network (or the tail of its frozen-frontier split) on a list of input
tensors; `variables` are the weights that train (in the optimizer's order); `weights` every weight the
forward pass reads; `loss(target, probs, weight, scribbles)` a `keras.ops` function.
"""

from __future__ import annotations

import importlib
from types import ModuleType

BACKENDS = ("tensorflow", "jax", "torch")


def name() -> str:
    import keras

    return keras.backend.backend()


def current() -> ModuleType:
    """`iunet_bench.train.backends.<name>` for the backend Keras was imported with."""
    backend = name()
    if backend not in BACKENDS:
        raise RuntimeError(f"Keras runs on {backend!r}; iunet_bench supports {', '.join(BACKENDS)}")
    return importlib.import_module(f"iunet_bench.train.backends.{backend}")
