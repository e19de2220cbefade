"""JAX: the GPU path. A round is one jitted function (`lax.scan` over the Adam steps, then the prediction)
on pure values: the weights enter through `keras.StatelessScope`, the optimizer through `stateless_apply`,
and the results are written back to the Keras variables once per round. Slow on a CPU (XLA's 3D
convolutions there): TensorFlow stays the CPU engine."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from iunet_bench.train.backends.engine import settle


def configure(device: str, threads: int | None, seed: int, precision: str) -> str:
    del threads  # XLA sizes its own thread pools; there is no per-process knob after start-up
    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    return settle(device, gpus[0].device_kind if gpus else None, seed, precision, ".[jax-gpu]")


def tensor(array: np.ndarray, dtype=None):
    return jnp.asarray(array, dtype=dtype)


def _stateless(forward, weights):
    """forward, with the values of `weights` given as an argument instead of read from the variables."""
    import keras

    def run(values, features, training=False):
        with keras.StatelessScope(state_mapping=list(zip(weights, values))) as scope:
            out = forward(features, training)
        updated = [scope.get_current_value(w) for w in weights] if training else None
        return out, updated

    return run


def _step(run, loss, optimizer, index, training):
    """One Adam step as a pure function of (all weight values, optimizer state)."""

    def step(values, opt_state, features, target, weight, scribbles):
        def objective(trained):
            full = list(values)
            for i, v in zip(index, trained):
                full[i] = v
            probs, updated = run(full, features, training)
            value = loss(target, probs, weight, scribbles)
            return optimizer.scale_loss(value), (value, updated)

        trained = [values[i] for i in index]
        grads, (value, updated) = jax.grad(objective, has_aux=True)(trained)
        trained, opt_state = optimizer.stateless_apply(opt_state, grads, trained)
        values = list(updated) if updated is not None else list(values)  # BatchNorm statistics (training)
        for i, v in zip(index, trained):
            values[i] = v
        return values, opt_state, value

    return step


def _index(variables, weights) -> list[int]:
    position = {id(w): i for i, w in enumerate(weights)}
    missing = [v.path for v in variables if id(v) not in position]
    if missing:
        raise ValueError(f"trained variables not read by the forward pass: {missing}")
    return [position[id(v)] for v in variables]


def round_function(forward, variables, weights, optimizer, loss, steps: int, specs, one_call: bool = True):
    """(inputs, target, weight, scribbles) -> (loss per step, foreground probability), numpy: one jitted
    call per round whatever `one_call` says (on a GPU one dispatch per step would dominate)."""
    del specs, one_call
    weights = list(weights)
    run = _stateless(lambda f, training: forward(f), weights)
    step = _step(run, loss, optimizer, _index(variables, weights), training=False)

    @jax.jit
    def run_round(values, opt_state, features, target, weight, scribbles):
        def body(carry, _):
            values, opt_state = carry
            values, opt_state, value = step(values, opt_state, features, target, weight, scribbles)
            return (values, opt_state), value

        (values, opt_state), losses = jax.lax.scan(body, (values, opt_state), None, length=steps)
        probs, _ = run(values, features)
        return values, opt_state, losses, probs.astype(jnp.float32)[0, ..., 1]

    def call(features, target, weight, scribbles):
        values, opt_state, losses, prob = run_round(
            [w.value for w in weights],
            [v.value for v in optimizer.variables],
            list(features),
            *(jnp.asarray(a[None]) for a in (target, weight, scribbles)),
        )
        for w, v in zip(weights, values):
            w.assign(v)
        for w, v in zip(optimizer.variables, opt_state):
            w.assign(v)
        return np.asarray(losses, np.float32), np.asarray(prob)

    return call


def predict_function(forward, specs):
    del specs
    fn = jax.jit(lambda f: forward(f).astype(jnp.float32)[0, ..., 1])
    return lambda features: np.asarray(fn(list(features)))


def features_function(prefix, specs):
    del specs
    return prefix  # once per case: eager is enough


def train_step(model, optimizer, loss):
    """(x, y) numpy batch -> loss (float): one jitted Adam step on every trainable weight, BatchNorm in
    training mode (its moving statistics are written back with the weights)."""
    weights = list(model.weights)
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    run = _stateless(lambda f, training: model(f[0], training=training), weights)
    step = jax.jit(
        _step(run, lambda y, p, w, s: loss(y, p), optimizer, _index(model.trainable_variables, weights), True)
    )

    def call(x, y):
        values, opt_state, value = step(
            [w.value for w in weights],
            [v.value for v in optimizer.variables],
            [jnp.asarray(x)],
            y,
            None,
            None,
        )
        for w, v in zip(weights, values):
            w.assign(v)
        for w, v in zip(optimizer.variables, opt_state):
            w.assign(v)
        return float(value)

    return call
