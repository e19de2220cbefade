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

from iunet_bench.core.runtime import BACKENDS


def name() -> str:
    import keras

    return keras.backend.backend()


def current() -> ModuleType:
    """`iunet_bench.train.backends.<name>` for the backend Keras was imported with."""
    backend = name()
    if backend not in BACKENDS:
        raise RuntimeError(f"Keras runs on {backend!r}; iunet_bench supports {', '.join(BACKENDS)}")
    return importlib.import_module(f"iunet_bench.train.backends.{backend}")


def settle(device: str, gpu: str | None, seed: int, precision: str, install: str) -> str:
    """What every backend's `configure` shares: refuse a GPU or a mixed precision the machine cannot give
    (ValueError), set the precision policy (always: a multirun's jobs share a process, and a policy must
    not leak into the next job) and the seeds; returns the device (`gpu:<name>` or `cpu`).
    `gpu`: the name of the GPU the backend sees, None for none."""
    import keras

    if device == "gpu" and gpu is None:
        raise ValueError(f"device: 'gpu' was asked for but {name()} sees no GPU (install with `{install}`)")
    if precision != "float32" and gpu is None:
        raise ValueError(f"precision: {precision} needs a GPU; on the CPU use float32")
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(seed)
    return f"gpu:{gpu}" if gpu is not None else "cpu"
