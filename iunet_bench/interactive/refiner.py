"""The fine-tuning refiners (iunet, bifseg): `start(volume, initial_prediction)`, `refine(interaction)`.

Each round (paper sections 2.5-2.6): target Y' = the previous prediction with the (accumulated) scribbles
pasted in; weight map w (3 on scribbles, 0 in the geodesic band around them, 1 elsewhere); `steps` Adam
steps on the eq. 3 loss (plus `scribble_ce` x the cross-entropy over the scribbled voxels, 0 for the
paper's loss alone) over the chosen layer groups only, with the network in inference mode (BatchNorm
statistics frozen); then the new prediction. With `until_agreement` the steps come in chunks of `steps`
until the network labels that share of the scribbled voxels as scribbled, or `max_steps` is reached.
One engine (`FineTuner`) runs every fine-tuning method; what differs between methods is an objective it
is given (`interactive.objectives`: iUnet's eq. 3 + scribble term, BIFSeg's weighted cross-entropy with its
uncertainty weight map). What differs between Keras backends is one module each (`train.backends`). Weights and optimizer state are restored to the baseline at
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
from scipy import ndimage as ndi

from iunet_bench.core import metrics
from iunet_bench.data.case import Volume
from iunet_bench.interactive.base import CurrentPrediction, Refinement, ScribbleMemory
from iunet_bench.interactive.config import FinetuneConfig
from iunet_bench.interactive.objectives import Objective, objective_for
from iunet_bench.train import optim
from simulators.interaction import Interaction

__all__ = ["FineTuner", "RoundInputs", "make_refiner", "predict_mask"]


class RoundInputs(NamedTuple):
    """What one round fine-tunes towards, on the volume's grid (float32)."""

    target: np.ndarray  # one-hot Y' (z, y, x, 2): the previous prediction with the scribbles pasted in
    weight: np.ndarray  # the loss's voxel weights (z, y, x): eq. 3's map, or BIFSeg's
    scribbles: np.ndarray  # 1 on the (accumulated) scribbled voxels, else 0 (z, y, x)


def predict_mask(model, image: np.ndarray) -> np.ndarray:
    """Foreground mask (uint8) of one z-y-x image."""
    from keras import ops

    probs = ops.convert_to_numpy(model(image[None, ..., None], training=False))
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


class FineTuner(CurrentPrediction):
    """Fine-tunes `cfg.trainable` layer groups of its own copy of `model` (`self.model`) on one image towards
    `objective` (iunet; bifseg = all groups). The `model` passed in is never changed.

    `probability`: the last foreground probability map; `build_seconds`: one-time cost of compiling the
    round function. `refine` = `round_inputs` (target, weight map, scribbles) + `run_round` (the compiled
    steps and the prediction), both public so that a benchmark times exactly what a round runs.
    """

    def __init__(self, model, cfg: FinetuneConfig, objective: Objective):
        from iunet_bench.models.groups import layers_in_groups, trainable_variables
        from iunet_bench.models.split import split_or_reason
        from iunet_bench.train.backends import engine

        self.cfg, self.objective, self.name = cfg, objective, cfg.method
        self.backend = engine.current()
        self.model = model = own_copy(model)
        groups = list(cfg.trainable)
        self.variables = trainable_variables(model, groups)
        if not self.variables:
            raise ValueError(f"interact.trainable: groups {groups} have no trainable weights")
        self.grid = tuple(int(n) for n in model.inputs[0].shape[1:4])
        self._baseline = [np.array(w) for w in model.get_weights()]
        self.optimizer = optim.make_optimizer(cfg.lr, model)
        self.optimizer.build(self.variables)
        self._opt_initial = [np.array(v) for v in self.optimizer.variables]
        t0 = time.perf_counter()
        # the frozen-frontier split (None: the straightforward path, the whole network every step)
        self.split = None
        if objective.fast_allowed and cfg.fast:  # (bifseg's config has no `fast`: every layer trains)
            split, why = split_or_reason(model, layers_in_groups(model, groups))
            if split is None:  # e.g. your own `keras` model, subclassed or with a layer called twice
                print(f"note: interact.fast: the straightforward path runs: {why}", file=sys.stderr)
            elif split.prefix is not None:
                # (with nothing frozen to compute once per case, e.g. trainable=[all], the one compiled
                # round would only add a loop in the graph, measured slower than the straightforward steps)
                self.split = split
        self.fast = self.split is not None
        self._build()
        self._warm_up()
        self.build_seconds = time.perf_counter() - t0
        # one case's state, set by `start` and each round
        self.volume: Volume | None = None
        self.prediction: np.ndarray | None = None
        self.memory: ScribbleMemory | None = None
        self.probability: np.ndarray | None = None  # the network's last foreground probability
        self.geodesic = None  # the case's geodesic graph for the weight map (objective's)
        self.scribbles: Interaction | None = None  # the case's scribbles so far (the round's target)
        self.latest: Interaction | None = None  # this round's
        self._inputs: list | None = None  # what the compiled round takes: the image, or the prefix's outputs

    def _build(self) -> None:
        """Compile the round (all steps and the prediction), the prediction alone and the prefix, once."""
        from keras import ops

        model, split, backend = self.model, self.split, self.backend
        dtype = model.inputs[0].dtype
        image = ((1, *self.grid, 1), dtype)
        if split is not None:
            inputs = [((1, *t.shape[1:]), t.dtype) for t in split.tail.inputs]
            forward = split.run_tail
            self._features = backend.features_function(split.features, {"image": image})
        else:
            inputs = [image]

            def forward(features):
                return model(features[0], training=False)

            self._features = lambda x: [x]
        specs = {
            "inputs": inputs,
            "image": image,
            "targets": [(1, *self.grid, 2), (1, *self.grid), (1, *self.grid)],
        }
        objective = self.objective

        def loss(target, probs, weight, scribbles):
            return objective.loss(target, ops.cast(probs, "float32"), weight, scribbles)

        self._round = backend.round_function(
            forward,
            self.variables,
            model.weights,
            self.optimizer,
            loss,
            self.cfg.steps,
            specs,
            one_call=self.fast,
        )
        self._predict = backend.predict_function(forward, specs)

    def _image(self, image: np.ndarray):
        return self.backend.tensor(image[None, ..., None], self.model.inputs[0].dtype)

    def _warm_up(self) -> None:
        """Run one round on a blank image, then restore: a traced function is optimised at its first call,
        a one-time cost that belongs to building the refiner, not to the first round of a case."""
        y = np.zeros((*self.grid, 2), np.float32)
        w = np.ones(self.grid, np.float32)
        features = self._features(self._image(np.zeros(self.grid, np.float32)))
        self._round(features, y, w, w)
        self._predict(features)
        self._restore()

    def _restore(self) -> None:
        for w, value in zip(self.model.weights, self._baseline):
            w.assign(value)
        for v, value in zip(self.optimizer.variables, self._opt_initial):
            v.assign(value)

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        """Restore the baseline weights and optimizer state; compute what depends on the image alone (the
        frozen prefix's features, the objective's geodesic graph) once for this case."""
        self._restore()
        if tuple(volume.image.shape) != self.grid:
            raise ValueError(
                f"volume {volume.case_id}: grid {volume.image.shape} is not the model's {self.grid}"
            )
        self.volume = volume
        self.prediction = initial_prediction.astype(np.uint8)
        self.memory = ScribbleMemory(volume.image.shape, self.cfg.accumulate)
        self.scribbles = self.latest = None
        self.geodesic = self.objective.geodesic(volume)
        self._inputs = self._features(self._image(volume.image))
        # the baseline's probability: what an objective that weighs by the network's own uncertainty
        # (BIFSeg) uses in round 1
        self.probability = self._predict(self._inputs) if self.objective.uses_probability else None

    def round_inputs(self, interaction: Interaction) -> RoundInputs:
        """This round's target, weight map and scribble mask; updates the scribble memory.

        Y' = the previous round's prediction with the (accumulated) scribbles pasted in; the weight map and
        the mask are those of the same (accumulated) scribbles."""
        self.latest = interaction
        self.scribbles = scribbles = self.memory.update(interaction)
        target = scribbles.paste(self.prediction).astype(np.float32)
        return RoundInputs(
            np.stack([1 - target, target], -1),
            self.objective.weight_map(self.volume, scribbles, self.geodesic, self.probability),
            scribbles.scribbles.astype(np.float32),
        )

    def run_round(
        self, target: np.ndarray, weight: np.ndarray, scribbles: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`cfg.steps` Adam steps towards `target` under `weight` (`round_inputs`), then the prediction:
        (loss per step, foreground probability). Changes the weights (and the state `start` restores)."""
        return self._round(self._inputs, target, weight, scribbles)

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
        if cfg.local_mm is not None:  # outside the trust region the previous prediction stays
            strokes = self.scribbles.add | self.scribbles.remove
            near = ndi.distance_transform_edt(~strokes, sampling=self.volume.spacing) <= cfg.local_mm
            network = np.where(near, network, self.prediction).astype(np.uint8)
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


def make_refiner(model, cfg: FinetuneConfig) -> FineTuner:
    """The fine-tuning refiner of a validated `iunet` or `bifseg` config."""
    return FineTuner(model, cfg, objective_for(cfg))
