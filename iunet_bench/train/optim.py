"""The optimizer of baseline training and of interactive fine-tuning: Adam, loss-scaled under float16."""

from __future__ import annotations


def needs_loss_scaling(model) -> bool:
    """Whether any layer with weights computes in float16 (mixed_float16): decided from the model itself,
    not the global policy, so a float32 job after a mixed one in the same process gets plain Adam."""
    return any(layer.weights and layer.compute_dtype == "float16" for layer in model.layers)


def make_optimizer(lr: float, model):
    """Adam; wrapped in a LossScaleOptimizer when `model` computes in float16 (GPU mixed precision).

    Use it as `optimizer.apply(tape.gradient(optimizer.scale_loss(loss), variables), variables)`: plain Adam
    leaves the loss as it is, the loss-scaling wrapper scales it and unscales the gradients.
    """
    import keras

    opt = keras.optimizers.Adam(lr)
    if needs_loss_scaling(model):
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt
