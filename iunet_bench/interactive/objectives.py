"""What a fine-tuning method optimises, given to the one engine (`refiner.FineTuner`): its loss (on
`keras.ops`, so every backend runs it), its voxel weight map, and what the weight map needs.

- `IUnetObjective` (interact=iunet): eq. 3 (weighted Dice + lambda x volume term; scribbles weight
  `weights.scribble`, a geodesic band around them weight `weights.band`) plus `scribble_ce` x the
  cross-entropy over the scribbled voxels.
- `BifsegObjective` (interact=bifseg): BIFSeg's voxel-weighted cross-entropy; scribbles weight
  `scribble_weight`, voxels the network itself is unsure of (larger class probability of the previous
  prediction below `confident`) weight 0. Every layer trains, so there is no frozen prefix to split off.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from iunet_bench.data.case import Volume
from iunet_bench.interactive.config import BifsegInteract, FinetuneConfig, IUnetInteract
from iunet_bench.interactive.weights import Geodesic, confidence_weight_map, weight_map
from simulators.interaction import Interaction


class Objective(Protocol):
    fast_allowed: bool  # whether the engine may split off a frozen prefix (False: every layer trains)
    uses_probability: bool  # whether the weight map needs the network's last probability

    def geodesic(self, volume: Volume) -> Geodesic | None: ...

    def weight_map(
        self, volume: Volume, scribbles: Interaction, geodesic, probability: np.ndarray | None
    ) -> np.ndarray: ...

    def loss(self, target, probs, weight, scribbles): ...


class IUnetObjective:
    fast_allowed = True
    uses_probability = False

    def __init__(self, cfg: IUnetInteract):
        self.cfg = cfg

    def geodesic(self, volume: Volume) -> Geodesic | None:
        g = self.cfg.geodesic
        return Geodesic(volume.image, volume.spacing, g.intensity_weight) if g.threshold > 0 else None

    def weight_map(self, volume, scribbles, geodesic, probability):
        c = self.cfg
        return weight_map(volume.image, scribbles.scribbles, volume.spacing, c.weights, c.geodesic, geodesic)

    def loss(self, target, probs, weight, scribbles):
        from iunet_bench.interactive.loss import interactive_loss

        c = self.cfg
        return interactive_loss(
            target, probs, weight, c.lambda_volume, c.weights.mode, scribbles, c.scribble_ce
        )


class BifsegObjective:
    fast_allowed = False
    uses_probability = True

    def __init__(self, cfg: BifsegInteract):
        self.cfg = cfg

    def geodesic(self, volume: Volume) -> None:
        return None  # BIFSeg's uncertainty comes from the network's probability, not from distances

    def weight_map(self, volume, scribbles, geodesic, probability):
        c = self.cfg
        return confidence_weight_map(probability, scribbles.scribbles, c.scribble_weight, c.confident)

    def loss(self, target, probs, weight, scribbles):
        from iunet_bench.interactive.loss import weighted_cross_entropy

        return weighted_cross_entropy(target, probs, weight)


def objective_for(cfg: FinetuneConfig) -> Objective:
    if isinstance(cfg, IUnetInteract):
        return IUnetObjective(cfg)
    if isinstance(cfg, BifsegInteract):
        return BifsegObjective(cfg)
    raise TypeError(f"interact.method {cfg.method!r} has no fine-tuning objective")
