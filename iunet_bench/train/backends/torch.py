"""PyTorch: every step eager (one autograd pass and one Adam update per Python iteration), the prediction
under `torch.no_grad`.

Keras 3 registers each layer's variables with torch under their paths (`encoder.0.conv0/kernel`), and torch
refuses a parameter name with a dot. The layer names (`interact.trainable`'s dotted vocabulary) stay as
they are on every backend; only the registration key torch sees has its dots replaced
(`_register_without_dots`, applied when this module is imported, before any model is built)."""

from __future__ import annotations

import numpy as np
import torch

from iunet_bench.train.backends.engine import settle


def _key(variable) -> str:
    return variable.path.replace(".", "-")


def _register_without_dots() -> None:
    """Keras' torch layer keys its ParameterDict by variable path; the same three methods, keyed without
    dots. Nothing else in Keras reads those keys (checked against keras 3.15)."""
    from keras.src.backend.torch.layer import TorchLayer

    if getattr(TorchLayer, "_keys_without_dots", False):
        return

    def _track_variables(self):
        self._torch_params = torch.nn.ParameterDict({_key(v): v.value for v in self.variables})

    def _post_track_variable(self, variable):
        if hasattr(self, "_torch_params") and _key(variable) not in self.torch_params:
            self.torch_params[_key(variable)] = variable.value

    def _post_untrack_variable(self, variable):
        if hasattr(self, "_torch_params") and _key(variable) in self.torch_params:
            self.torch_params.pop(_key(variable))

    TorchLayer._track_variables = _track_variables
    TorchLayer._post_track_variable = _post_track_variable
    TorchLayer._post_untrack_variable = _post_untrack_variable
    TorchLayer._keys_without_dots = True


_register_without_dots()


def configure(device: str, threads: int | None, seed: int, precision: str) -> str:
    if threads is not None:
        torch.set_num_threads(threads)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() and device != "cpu" else None
    used = settle(device, gpu, seed, precision, ".[torch]")
    torch.use_deterministic_algorithms(True, warn_only=True)
    return used


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
