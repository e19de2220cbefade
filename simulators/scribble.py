"""Scribble robots: draw "add" strokes in missed regions and "remove" strokes in false regions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

from simulators.interaction import Effort, Interaction


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 3D (26-connected) component of `mask`, or an empty mask."""
    labels, n = ndi.label(mask, structure=np.ones((3,) * mask.ndim, bool))
    if n == 0:
        return np.zeros_like(mask, bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def _stroke_on_slice(region2d: np.ndarray) -> np.ndarray:
    """A connected centreline stroke inside a 2D region, kept away from its border where possible."""
    core = ndi.binary_erosion(region2d, iterations=1)
    if not core.any():
        core = region2d
    skel = skeletonize(core)
    if not skel.any():
        return np.zeros_like(region2d, bool)
    labels, n = ndi.label(skel, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


@dataclass
class ScribbleRobot:
    """Minimal ideal robot: one stroke per polarity, on the worst axial slice of the largest error component."""

    min_region_voxels: int = 10

    def annotate(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        prediction: np.ndarray,
        rng: np.random.Generator,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> Interaction:
        reference = reference.astype(bool)
        prediction = prediction.astype(bool)
        masks = []
        strokes = 0
        for error in (reference & ~prediction, prediction & ~reference):
            out = np.zeros_like(reference)
            region = largest_component(error)
            if region.sum() >= self.min_region_voxels:
                z = int(np.argmax(region.sum(axis=(1, 2))))
                stroke = _stroke_on_slice(region[z])
                out[z] = stroke
                strokes += int(stroke.any())
            masks.append(out)
        add, remove = masks
        voxels = int(add.sum() + remove.sum())
        length = voxels * float(np.mean(spacing[1:]))
        slices = int(np.count_nonzero((add | remove).any(axis=(1, 2))))
        return Interaction(add, remove, Effort(strokes=strokes, voxels=voxels, length_mm=length, slices=slices))
