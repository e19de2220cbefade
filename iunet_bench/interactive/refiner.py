"""The fine-tuning refiners (iunet, bifseg): `start(volume, initial_prediction)`, `refine(interaction)`.

Each round (paper sections 2.5-2.6): target Y' = the previous prediction with the (accumulated) scribbles
pasted in; weight map w (3 on scribbles, 0 in the geodesic band around them, 1 elsewhere); `steps` Adam
steps on the eq. 3 loss (plus `scribble_ce` x the cross-entropy over the scribbled voxels, 0 for the
paper's loss alone) over the chosen layer groups only, with the network in inference mode (BatchNorm
statistics frozen); then the new prediction. With `until_agreement` the steps come in chunks of `steps`
until the network labels that share of the scribbled voxels as scribbled, or `max_steps` is reached.
`bifseg` (`BifsegRefiner`) changes only the loss (BIFSeg's weighted cross-entropy) and its weight map
(uncertainty from the network's own probability). Weights and optimizer state are restored to the baseline at
every `start`, so no case leaks into another; the refiner tunes its own copy of the network, so the
caller's model stays the baseline.

Two paths compute the same thing:

- straightforward (`fast=False`): every step runs the whole network forward and backward from the image,
  one compiled step per Python iteration, then a compiled full prediction;
- fast (`fast=True`, the default, whenever something is frozen: with nothing to compute once per case,
  e.g. `trainable=[all]`, the refiner takes the straightforward path, `self.fast` says which ran): the
  model is split at its frozen frontier (`models.split`): the frozen
  prefix, with the skip connections' share of frozen decoder convolutions, runs once per case at `start`
  (the image never changes within a session), and one compiled function per refiner (built and warmed
  once per trainable subset, fixed shapes, reused across rounds and cases) runs all steps of a round and
  the final prediction on the tail only.
"""

from __future__ import annotations

import sys
import time
from typing import NamedTuple

import numpy as np

from iunet_bench.core import metrics
from iunet_bench.data.case import Volume
from iunet_bench.interactive.base import Refinement, ScribbleMemory
from iunet_bench.interactive.config import BifsegInteract, FinetuneConfig, IUnetInteract
from iunet_bench.interactive.weights import Geodesic, confidence_weight_map, weight_map
from iunet_bench.train import optim
from simulators.interaction import Interaction

__all__ = ["BifsegRefiner", "IUnetRefiner", "RoundInputs", "predict_mask"]


class RoundInputs(NamedTuple):
    """What one round fine-tunes towards, on the volume's grid (float32)."""

    target: np.ndarray  # one-hot Y' (z, y, x, 2): the previous prediction with the scribbles pasted in
    weight: np.ndarray  # the loss's voxel weights (z, y, x): eq. 3's map, or BIFSeg's
    scribbles: np.ndarray  # 1 on the (accumulated) scribbled voxels, else 0 (z, y, x)


def predict_mask(model, image: np.ndarray) -> np.ndarray:
    """Foreground mask (uint8) of one z-y-x image."""
    probs = model(image[None, ..., None], training=False)
    return (np.asarray(probs, np.float32)[0, ..., 1] >= 0.5).astype(np.uint8)


def own_copy(model):
    """A copy of `model` with its own weights, for the refiner to fine-tune: the caller's model stays the
    baseline whatever a case did, so a prediction made with it between cases never sees a case's tuning.

    Every layer of the copy is trainable whatever the caller froze (get_config carries `trainable`): which
    variables train is decided by `interact.trainable` alone, never silently narrowed by a caller's flag.
    """
    import keras

    copy = keras.Model.from_config(model.get_config())  # new layers, same names; never a compile state
    copy.set_weights(model.get_weights())  # before the flags change: same flags, same weight order
    copy.trainable = True
    for layer in copy.layers:
        layer.trainable = True
    return copy


class IUnetRefiner:
    """Fine-tunes `cfg.trainable` layer groups of its own copy of `model` (`self.model`) on one image
    (iunet; bifseg = all groups). The `model` passed in is never changed.

    `probability`: the last foreground probability map; `build_seconds`: one-time cost of compiling the
    round function. `refine` = `round_inputs` (target, weight map, scribbles) + `run_round` (the compiled
    steps and the prediction), both public so that a benchmark times exactly what a round runs.
    """

    def __init__(self, model, cfg: FinetuneConfig):
        import tensorflow as tf

        from iunet_bench.models.groups import layers_in_groups, trainable_variables
        from iunet_bench.models.split import FrozenSplit, split_or_reason

        self.cfg = cfg
        self.name = cfg.method
        self.model = own_copy(model)
        self.fast = self._fast_requested()
        model = self.model
        groups = list(cfg.trainable)
        self.variables = trainable_variables(model, groups)
        if not self.variables:
            raise ValueError(f"interact.trainable: groups {groups} have no trainable weights")
        self.grid = tuple(int(n) for n in model.inputs[0].shape[1:4])
        self._baseline = [w.numpy() for w in model.weights]
        self.optimizer = optim.make_optimizer(cfg.lr, model)
        self.optimizer.build(self.variables)
        self._opt_initial = [v.numpy() for v in self.optimizer.variables]
        self._image_spec = tf.TensorSpec((1, *self.grid, 1), model.inputs[0].dtype)
        self._targets = [  # RoundInputs, batched
            tf.TensorSpec((1, *self.grid, 2), tf.float32),
            tf.TensorSpec((1, *self.grid), tf.float32),
            tf.TensorSpec((1, *self.grid), tf.float32),
        ]
        t0 = time.perf_counter()
        if self.fast:
            self.split, why = split_or_reason(model, layers_in_groups(model, groups))
            if self.split is None:  # e.g. your own `keras` model, subclassed or with a layer called twice
                print(f"note: interact.fast: the straightforward path runs: {why}", file=sys.stderr)
                self.fast = False
            else:
                # Nothing frozen to compute once per case (e.g. trainable=[all]): the one compiled round
                # would only add a loop in the graph, which measured slower than the straightforward steps.
                self.fast = self.split.prefix is not None
        if self.fast:
            self._build_fast()
        else:
            self.split = FrozenSplit(None, model, [model.inputs[0].name])
            self._build_straightforward()
        self._warm_up()
        self.build_seconds = time.perf_counter() - t0
        self.probability: np.ndarray | None = None
        self.geodesic: Geodesic | None = None
        self.scribbles: Interaction | None = None  # the case's scribbles so far (the round's target)
        self.latest: Interaction | None = None  # this round's

    def _warm_up(self) -> None:
        """Run one round on a blank image, then restore: TensorFlow optimises a traced graph at its first
        call, a one-time cost that belongs to building the refiner, not to the first round of a case."""
        import tensorflow as tf

        x = tf.zeros((1, *self.grid, 1), self.model.inputs[0].dtype)
        y = tf.zeros((1, *self.grid, 2), tf.float32)
        w = tf.ones((1, *self.grid), tf.float32)
        if self.fast:
            self._round(self._prefix(x), y, w, w)
        else:
            self._step(x, y, w, w)
            self._predict(x)
        self._restore()

    def _restore(self) -> None:
        for w, value in zip(self.model.weights, self._baseline):
            w.assign(value)
        for v, value in zip(self.optimizer.variables, self._opt_initial):
            v.assign(value)

    def _loss(self, target, probs, weight, scribbles):
        import tensorflow as tf

        from iunet_bench.interactive.loss import interactive_loss

        c = self.cfg
        p = tf.cast(probs, tf.float32)
        return interactive_loss(target, p, weight, c.lambda_volume, c.weights.mode, scribbles, c.scribble_ce)

    def _train_step(self, forward, target, weight, scribbles):
        """One Adam step on the chosen variables. `forward()` runs the network with training=False, so
        BatchNorm uses (and never updates) its baseline statistics."""
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = self._loss(target, forward(), weight, scribbles)
            scaled = self.optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, self.variables)
        self.optimizer.apply(grads, self.variables)
        return loss

    def _build_straightforward(self) -> None:
        import tensorflow as tf

        model = self.model

        @tf.function(input_signature=[self._image_spec, *self._targets])
        def step(x, target, weight, scribbles):
            return self._train_step(lambda: model(x, training=False), target, weight, scribbles)

        @tf.function(input_signature=[self._image_spec])
        def predict(x):
            return tf.cast(model(x, training=False), tf.float32)[0, ..., 1]

        step.get_concrete_function()  # trace now, once: not in the first round's time
        predict.get_concrete_function()
        self._step, self._predict = step, predict

    def _build_fast(self) -> None:
        import tensorflow as tf

        split, steps = self.split, self.cfg.steps
        specs = [tf.TensorSpec((1, *t.shape[1:]), t.dtype) for t in split.tail.inputs]
        self._prefix = tf.function(split.features, input_signature=[self._image_spec])
        self._prefix.get_concrete_function()

        @tf.function(input_signature=[specs, *self._targets])
        def run_round(features, target, weight, scribbles):
            losses = tf.TensorArray(tf.float32, size=steps)
            for i in tf.range(steps):
                loss = self._train_step(lambda: split.run_tail(features), target, weight, scribbles)
                losses = losses.write(i, loss)
            probs = tf.cast(split.run_tail(features), tf.float32)
            return losses.stack(), probs[0, ..., 1]

        run_round.get_concrete_function()  # trace now, once: not in the first round's time
        self._round = run_round

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        """Restore the baseline weights and optimizer state; compute what depends on the image alone (the
        frozen prefix's features, the geodesic graph of the weight map) once for this case."""
        import tensorflow as tf

        self._restore()
        if tuple(volume.image.shape) != self.grid:
            raise ValueError(
                f"volume {volume.case_id}: grid {volume.image.shape} is not the model's {self.grid}"
            )
        self.volume = volume
        self.prediction = initial_prediction.astype(np.uint8)
        self.memory = ScribbleMemory(volume.image.shape, self.cfg.accumulate)
        self.probability = None
        self.geodesic = self._geodesic(volume)
        x = tf.constant(volume.image[None, ..., None], dtype=self.model.inputs[0].dtype)
        self._inputs = self._prefix(x) if self.fast else x

    def round_inputs(self, interaction: Interaction) -> RoundInputs:
        """This round's target, weight map and scribble mask; updates the scribble memory.

        Y' = the previous round's prediction with the (accumulated) scribbles pasted in; the weight map and
        the mask are those of the same (accumulated) scribbles."""
        self.latest = interaction
        self.scribbles = scribbles = self.memory.update(interaction)
        target = scribbles.paste(self.prediction).astype(np.float32)
        return RoundInputs(
            np.stack([1 - target, target], -1),
            self._weight_map(scribbles),
            scribbles.scribbles.astype(np.float32),
        )

    def _fast_requested(self) -> bool:
        return self.cfg.fast

    def _geodesic(self, volume: Volume) -> Geodesic | None:
        g = self.cfg.geodesic
        return Geodesic(volume.image, volume.spacing, g.intensity_weight) if g.threshold > 0 else None

    def _weight_map(self, scribbles: Interaction) -> np.ndarray:
        v = self.volume
        return weight_map(
            v.image, scribbles.scribbles, v.spacing, self.cfg.weights, self.cfg.geodesic, self.geodesic
        )

    def run_round(
        self, target: np.ndarray, weight: np.ndarray, scribbles: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`cfg.steps` Adam steps towards `target` under `weight` (`round_inputs`), then the prediction:
        (loss per step, foreground probability). Changes the weights (and the state `start` restores)."""
        import tensorflow as tf

        batch = [tf.constant(a[None]) for a in (target, weight, scribbles)]
        if self.fast:
            losses, prob = self._round(self._inputs, *batch)
        else:  # one compiled step per Python iteration; losses read back once, after the loop
            steps = [self._step(self._inputs, *batch) for _ in range(self.cfg.steps)]
            prob = self._predict(self._inputs)
            losses = tf.stack(steps) if steps else tf.zeros((0,), tf.float32)
        return losses.numpy(), prob.numpy()

    def refine(self, interaction: Interaction) -> Refinement:
        """One round: `steps` steps (or chunks of them until the scribbles are honoured, see
        `until_agreement`), then the network's prediction, with the scribbles pasted over it only when
        `paste_scribbles` asks (the `network` field then keeps the network's own output)."""
        cfg = self.cfg
        inputs = self.round_inputs(interaction)
        losses, prob = self.run_round(*inputs)
        if cfg.until_agreement is not None:
            while (
                len(losses) + cfg.steps <= cfg.max_steps
                and np.isfinite(losses[-1])
                and self.agreement(prob >= 0.5) < cfg.until_agreement
            ):
                more, prob = self.run_round(*inputs)
                losses = np.concatenate([losses, more])
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:  # NaN weights predict background everywhere: never pass that off as a segmentation
            raise FloatingPointError(
                f"interact: fine-tuning diverged (loss {losses[bad[0]]} at step {bad[0] + 1} of this round); "
                f"try a smaller interact.lr (now {cfg.lr:g})"
            )
        self.probability = prob
        network = (prob >= 0.5).astype(np.uint8)
        self.prediction = self.scribbles.paste(network).astype(np.uint8) if cfg.paste_scribbles else network
        return Refinement(
            self.prediction,
            tuple(float(v) for v in losses),
            network=network if cfg.paste_scribbles else None,
        )

    def agreement(self, prediction: np.ndarray) -> float:
        """The smaller of two shares that `prediction` labels as scribbled: of this round's scribbled
        voxels (what the session's `agreement` and `rounds_honoured` report) and of the case's scribbled
        voxels so far (those in this round's target). The stopping rule needs both: old scribbles honoured
        do not excuse a new one ignored, nor the reverse."""
        shares = [
            metrics.scribble_agreement(prediction, s.add, s.remove) for s in (self.latest, self.scribbles)
        ]
        shares = [v for v in shares if not np.isnan(v)]
        return min(shares) if shares else 1.0


class BifsegRefiner(IUnetRefiner):
    """BIFSeg's image-specific fine-tuning (see `BifsegInteract`): every layer, weighted cross-entropy,
    scribbles weight `scribble_weight`, voxels the network itself is unsure of (larger class probability
    of the previous prediction below `confident`) weight 0."""

    cfg: BifsegInteract

    def _fast_requested(self) -> bool:
        return False  # every layer trains: there is no frozen prefix to compute once

    def _geodesic(self, volume: Volume) -> None:
        return None  # BIFSeg's uncertainty comes from the network's probability, not from distances

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        super().start(volume, initial_prediction)
        self.probability = self._predict(self._inputs).numpy()  # the baseline's: round 1's uncertainty

    def _weight_map(self, scribbles: Interaction) -> np.ndarray:
        cfg = self.cfg
        return confidence_weight_map(
            self.probability, scribbles.scribbles, cfg.scribble_weight, cfg.confident
        )

    def _loss(self, target, probs, weight, scribbles):
        import tensorflow as tf

        from iunet_bench.interactive.loss import weighted_cross_entropy

        return weighted_cross_entropy(target, tf.cast(probs, tf.float32), weight)


def make_refiner(model, cfg: FinetuneConfig) -> IUnetRefiner:
    """The fine-tuning refiner of a validated `iunet` or `bifseg` config."""
    if isinstance(cfg, IUnetInteract):
        return IUnetRefiner(model, cfg)
    return BifsegRefiner(model, cfg)
