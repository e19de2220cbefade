"""PyTorch: every step eager (one autograd pass and one Adam update per Python iteration), the prediction
under `torch.no_grad`. Keras layer names must not contain dots on this backend (a torch `ParameterDict`
key): the models name their layers with the backend-neutral separator of `models.groups`."""

from __future__ import annotations

import os

import numpy as np
import torch


def configure(device: str, threads: int | None, seed: int, precision: str) -> str:
    import keras

    if threads is not None:
        torch.set_num_threads(threads)
    gpu = torch.cuda.is_available() and device != "cpu"
    if device == "gpu" and not gpu:
        raise ValueError("device: 'gpu' was asked for but PyTorch sees no GPU")
    if precision != "float32" and not gpu:
        raise ValueError(f"precision: {precision} needs a GPU; on the CPU use float32")
    keras.mixed_precision.set_global_policy(precision)
    keras.utils.set_random_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return f"gpu:{torch.cuda.get_device_name(0)}" if gpu else "cpu"


def hide_gpus() -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


def tensor(array: np.ndarray, dtype=None):
    from keras import ops

    return ops.convert_to_tensor(array, dtype=dtype)


def _apply(optimizer, variables, loss_of):
    loss = loss_of()
    grads = torch.autograd.grad(optimizer.scale_loss(loss), [v.value for v in variables])
    with torch.no_grad():
        optimizer.apply(list(grads), variables)
    return loss.detach()


def round_function(forward, variables, weights, optimizer, loss, steps: int, specs, one_call: bool = True):
    del weights, specs, one_call

    def call(features, target, weight, scribbles):
        batch = [tensor(a[None]) for a in (target, weight, scribbles)]
        losses = [
            _apply(optimizer, variables, lambda: loss(batch[0], forward(features), *batch[1:]))
            for _ in range(steps)
        ]
        with torch.no_grad():
            prob = forward(features)[0, ..., 1].float()
        out = torch.stack(losses).float().cpu().numpy() if losses else np.zeros((0,), np.float32)
        return out, prob.cpu().numpy()

    return call


def predict_function(forward, specs):
    del specs

    def call(features):
        with torch.no_grad():
            return forward(features)[0, ..., 1].float().cpu().numpy()

    return call


def features_function(prefix, specs):
    del specs

    def call(x):
        with torch.no_grad():
            return prefix(x)

    return call


def train_step(model, optimizer, loss):
    variables = model.trainable_variables

    def call(x, y):
        xt, yt = tensor(x), tensor(y)
        return float(_apply(optimizer, variables, lambda: loss(yt, model(xt, training=True))))

    return call
