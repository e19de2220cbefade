"""Comparison refiners that do not learn (numpy/scipy/scikit-image only), same interface as the iUnet refiner.

- `PasteRefiner`: the previous prediction with the scribbles pasted in: the floor every method must beat.
- `RandomWalkerRefiner`: scikit-image's random walker (Grady 2006) seeded by the scribbles and by the
  part of the previous prediction the user did not contradict: every predicted voxel except, near an "add"
  stroke, the background inside its geodesic band (the band that gets weight 0 in the iUnet loss), and
  near a "remove" stroke, the foreground inside its band; optionally also a shell of `boundary_voxels`
  around the prediction's boundary. Only the unseeded voxels are decided by the walker.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from iunet_bench.data.case import Volume
from iunet_bench.interactive.base import CurrentPrediction, Refinement, ScribbleMemory
from iunet_bench.interactive.config import PasteInteract, RandomWalkerInteract
from iunet_bench.interactive.weights import Geodesic, uncertain_band
from simulators.interaction import Interaction

BACKGROUND, FOREGROUND = 1, 2  # random-walker labels; 0 = unseeded


class PasteRefiner(CurrentPrediction):
    name = "paste"

    def __init__(self, cfg: PasteInteract | None = None):
        self.cfg = cfg or PasteInteract()

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        self.prediction = initial_prediction.astype(np.uint8)
        self.memory = ScribbleMemory(volume.image.shape, self.cfg.accumulate)

    def refine(self, interaction: Interaction) -> Refinement:
        self.prediction = self.memory.update(interaction).paste(self.prediction).astype(np.uint8)
        return Refinement(self.prediction)


def random_walker_seeds(
    image: np.ndarray,
    prediction: np.ndarray,
    scribbles: Interaction,
    spacing,
    cfg: RandomWalkerInteract,
    geodesic: Geodesic | None = None,
) -> np.ndarray:
    """Labels for the walker: FOREGROUND/BACKGROUND on seeds, 0 where the walker decides.

    Seeds: the scribbles, and the previous prediction's voxels except (a) those within `boundary_voxels`
    of its boundary and (b) those of the class a scribble contradicts inside that scribble's geodesic band
    (background near an "add" stroke, foreground near a "remove" stroke). geodesic: the image's
    `Geodesic`, built once per case (None: built here).
    """
    pred = prediction.astype(bool)
    fg, bg = pred.copy(), ~pred
    if cfg.boundary_voxels > 0:
        fg &= ndi.distance_transform_edt(pred) > cfg.boundary_voxels
        bg &= ndi.distance_transform_edt(~pred) > cfg.boundary_voxels
    if geodesic is None and cfg.geodesic.threshold > 0:
        geodesic = Geodesic(image, spacing, cfg.geodesic.intensity_weight)
    bg &= ~uncertain_band(image, scribbles.add, spacing, cfg.geodesic, geodesic)
    fg &= ~uncertain_band(image, scribbles.remove, spacing, cfg.geodesic, geodesic)
    labels = np.zeros(image.shape, np.uint8)
    labels[fg] = FOREGROUND
    labels[bg] = BACKGROUND
    labels[scribbles.add] = FOREGROUND
    labels[scribbles.remove] = BACKGROUND
    return labels


class RandomWalkerRefiner(CurrentPrediction):
    name = "random_walker"

    def __init__(self, cfg: RandomWalkerInteract | None = None):
        self.cfg = cfg or RandomWalkerInteract()

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        self.volume = volume
        self.prediction = initial_prediction.astype(np.uint8)
        self.memory = ScribbleMemory(volume.image.shape, self.cfg.accumulate)
        g = self.cfg.geodesic
        self.geodesic = (
            Geodesic(volume.image, volume.spacing, g.intensity_weight) if g.threshold > 0 else None
        )

    def refine(self, interaction: Interaction) -> Refinement:
        from skimage.segmentation import random_walker

        v = self.volume
        labels = random_walker_seeds(
            v.image, self.prediction, self.memory.update(interaction), v.spacing, self.cfg, self.geodesic
        )
        present = set(np.unique(labels)) - {0}
        if (labels > 0).all() or len(present) < 2:  # nothing to decide, or only one class seeded
            out = labels if (labels > 0).all() else np.full(labels.shape, max(present, default=BACKGROUND))
        else:
            out = random_walker(
                v.image.astype(np.float64),
                labels,
                beta=self.cfg.beta,
                mode="cg_j",
                tol=self.cfg.tol,
                spacing=np.asarray(v.spacing, float),
            )
        self.prediction = (out == FOREGROUND).astype(np.uint8)
        return Refinement(self.prediction)
