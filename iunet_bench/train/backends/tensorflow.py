"""TensorFlow: the default backend and the CPU path. Rounds and steps are `tf.function`s traced once."""

from __future__ import annotations

import contextlib

import numpy as np
import tensorflow as tf

from iunet_bench.train.backends.engine import settle


def configure(device: str, threads: int | None, seed: int, precision: str) -> str:
    """Threads, memory growth, precision policy, seeds and op determinism; returns the device used.
    Raises ValueError for a device or precision this machine cannot give."""
    if threads is not None:
        with contextlib.suppress(RuntimeError):  # a joblib worker's later job: TensorFlow is set already
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:  # parallel sweep jobs share a GPU: take memory as needed, not all of it at start
        with contextlib.suppress(RuntimeError):  # already initialised by an earlier job of a multirun
            tf.config.experimental.set_memory_growth(gpu, True)
    gpu = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None
    used = settle(device, gpu, seed, precision, ".[gpu]")
    tf.config.experimental.enable_op_determinism()
    return used


def tensor(array: np.ndarray, dtype=None):
    return tf.constant(array, dtype=dtype)


def _apply(optimizer, variables, loss_of):
    """One Adam step on `variables`: `loss_of()` runs the network with training=False, so BatchNorm uses
    (and never updates) its baseline statistics."""
    with tf.GradientTape() as tape:
        loss = loss_of()
        scaled = optimizer.scale_loss(loss)
    optimizer.apply(tape.gradient(scaled, variables), variables)
    return loss


def round_function(forward, variables, weights, optimizer, loss, steps: int, specs, one_call: bool = True):
    """(inputs, target, weight, scribbles) -> (loss per step, foreground probability), numpy.

    one_call: all `steps` steps and the prediction in one traced function (a loop in the graph); else one
    traced step per Python iteration and a traced prediction (measured faster on the CPU when nothing is
    frozen: the whole network runs every step anyway)."""
    del weights  # TensorFlow reads variables in place
    inputs_spec = [tf.TensorSpec(shape, dtype) for shape, dtype in specs["inputs"]]
    targets = [tf.TensorSpec(shape, tf.float32) for shape in specs["targets"]]

    def step_of(features, target, weight, scribbles):
        return _apply(optimizer, variables, lambda: loss(target, forward(features), weight, scribbles))

    def prediction(features):
        return tf.cast(forward(features), tf.float32)[0, ..., 1]

    if one_call:

        @tf.function(input_signature=[inputs_spec, *targets])
        def run_round(features, target, weight, scribbles):
            losses = tf.TensorArray(tf.float32, size=steps)
            for i in tf.range(steps):
                losses = losses.write(i, step_of(features, target, weight, scribbles))
            return losses.stack(), prediction(features)

        run_round.get_concrete_function()  # trace now, once: not in the first round's time

        def call(features, target, weight, scribbles):
            losses, prob = run_round(features, *(tf.constant(a[None]) for a in (target, weight, scribbles)))
            return losses.numpy(), prob.numpy()

        call.tracing_count = run_round.experimental_get_tracing_count  # 1: one trace for every round
        return call

    step = tf.function(step_of, input_signature=[inputs_spec, *targets])
    predict = tf.function(prediction, input_signature=[inputs_spec])
    step.get_concrete_function()
    predict.get_concrete_function()

    def call(features, target, weight, scribbles):  # losses read back once, after the loop
        batch = [tf.constant(a[None]) for a in (target, weight, scribbles)]
        losses = [step(features, *batch) for _ in range(steps)]
        prob = predict(features)
        return (tf.stack(losses) if losses else tf.zeros((0,), tf.float32)).numpy(), prob.numpy()

    call.tracing_count = lambda: max(
        step.experimental_get_tracing_count(), predict.experimental_get_tracing_count()
    )
    return call


def predict_function(forward, specs):
    """inputs -> foreground probability (numpy), traced once."""
    inputs_spec = [tf.TensorSpec(shape, dtype) for shape, dtype in specs["inputs"]]
    predict = tf.function(lambda f: tf.cast(forward(f), tf.float32)[0, ..., 1], input_signature=[inputs_spec])

    def call(features):
        return predict(features).numpy()

    call.tracing_count = predict.experimental_get_tracing_count
    return call


def features_function(prefix, specs):
    """image -> the frozen prefix's outputs, traced once (run once per case)."""
    fn = tf.function(prefix, input_signature=[tf.TensorSpec(*specs["image"])])
    fn.get_concrete_function()
    return fn


def train_step(model, optimizer, loss):
    """(x, y) numpy batch -> loss (float): one Adam step on every trainable weight, BatchNorm in training
    mode."""
    variables = model.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x, y):
        return _apply(optimizer, variables, lambda: loss(y, model(x, training=True)))

    return lambda x, y: float(step(tf.constant(x), tf.constant(y)))
