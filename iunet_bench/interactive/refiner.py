"""Refiners: `start(volume, initial_prediction)`, `refine(interaction) -> prediction`.

The iUnet refiner fine-tunes the chosen layer groups of the baseline network on one image with the
eq. 3 loss, restoring the baseline weights at every `start` so that no case leaks into another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from iunet_bench.data.case import Volume
from iunet_bench.interactive.weights import WeightConfig, weight_map
from simulators.interaction import Interaction


@dataclass(frozen=True)
class FinetuneConfig:
    trainable: tuple[str, ...] = ("head", "bottleneck")
    steps: int = 20
    lr: float = 1e-4
    lambda_volume: float = 0.1
    weight_mode: str = "both"  # both | numerator (eq. 3 exactly as printed)
    accumulate: bool = True  # keep earlier rounds' scribbles as constraints
    weights: WeightConfig = field(default_factory=WeightConfig)


def predict_mask(model, image: np.ndarray) -> np.ndarray:
    """Foreground mask (uint8) of one z-y-x image."""
    probs = model(image[None, ..., None], training=False)
    return (np.asarray(probs)[0, ..., 1] >= 0.5).astype(np.uint8)


class IUnetRefiner:
    """Paper sections 2.5-2.6: layer-subset fine-tuning with the weighted loss, one image at a time."""

    name = "iunet"

    def __init__(self, model, cfg: FinetuneConfig):
        import keras
        import tensorflow as tf

        from iunet_bench.interactive.loss import interactive_loss
        from iunet_bench.models.groups import trainable_variables

        self.model, self.cfg = model, cfg
        self.variables = trainable_variables(model, list(cfg.trainable))
        self._baseline = [w.numpy() for w in model.weights]
        self.optimizer = keras.optimizers.Adam(cfg.lr)
        self.optimizer.build(self.variables)
        self._opt_initial = [v.numpy() for v in self.optimizer.variables]
        variables, optimizer = self.variables, self.optimizer

        @tf.function
        def step(x, target, weight):
            with tf.GradientTape() as tape:
                p = tf.cast(model(x, training=False), tf.float32)  # BatchNorm statistics stay frozen
                loss = interactive_loss(target, p, weight, cfg.lambda_volume, cfg.weight_mode)
            grads = tape.gradient(loss, variables)
            optimizer.apply_gradients(zip(grads, variables))
            return loss

        self._step = step
        self.losses: list[float] = []

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        for w, value in zip(self.model.weights, self._baseline):
            w.assign(value)
        for v, value in zip(self.optimizer.variables, self._opt_initial):
            v.assign(value)
        self.volume = volume
        self.prediction = initial_prediction.astype(np.uint8)
        self.add = np.zeros(volume.image.shape, bool)
        self.remove = np.zeros(volume.image.shape, bool)

    def refine(self, interaction: Interaction) -> np.ndarray:
        import tensorflow as tf

        if self.cfg.accumulate:
            self.add = (self.add | interaction.add) & ~interaction.remove
            self.remove = (self.remove | interaction.remove) & ~interaction.add
        else:
            self.add, self.remove = interaction.add.copy(), interaction.remove.copy()
        scribbles = Interaction(self.add, self.remove)
        target = scribbles.paste(self.prediction).astype(np.float32)
        w = weight_map(self.volume.image, scribbles.scribbles, self.volume.spacing, self.cfg.weights)
        x = tf.constant(self.volume.image[None, ..., None])
        y = tf.constant(np.stack([1 - target, target], -1)[None])
        wt = tf.constant(w[None])
        self.losses = [float(self._step(x, y, wt)) for _ in range(self.cfg.steps)]
        self.prediction = predict_mask(self.model, self.volume.image)
        return self.prediction
