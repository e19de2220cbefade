"""Region growing from clicks, scribbles and a box: a complete iunet_bench plug-in in plain numpy.

    PYTHONPATH=examples/plugins python -m iunet_bench protocol=cvpr25 interact=plugin \
        interact.target=region_grow:RegionGrow

Each round, `predict`:

1. seeds: every voxel the user said is organ so far: the clicks labelled "add" (their voxel) and every
   "add" voxel painted (scribbles, and the disks the clicks paint); in a round with none (the CVPR 2025
   box alone) the middle third of the 2D box on its middle slice;
2. two intensities: the organ's, the seeds' mean; the background's, the mean of every "remove" voxel
   (the voxels the box rules out are among them), or none yet;
3. candidates: voxels within `tolerance` of the organ's intensity and nearer to it than to the
   background's, never a "remove" voxel, and inside the box when there is one (its z range, and on its
   middle slice the 2D box);
4. the mask: the candidates connected to a seed through 6-neighbours (one-voxel dilations, repeated until
   nothing changes), the seeds included.

More clicks make both means better, and a "remove" click on a leak takes the leak's intensity towards the
background's, so the mask improves from round to round. It is a reference for the contract, not a good
segmenter: a real plug-in would load a network in `__init__` and run it in `predict`.
"""

from __future__ import annotations

import numpy as np


def dilate6(mask: np.ndarray) -> np.ndarray:
    """`mask` grown by one voxel along each axis (6-neighbourhood), in numpy."""
    out = mask.copy()
    for axis in range(mask.ndim):
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        out[tuple(lo)] |= mask[tuple(hi)]
        out[tuple(hi)] |= mask[tuple(lo)]
    return out


def grow(seeds: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """The voxels of `allowed` connected to `seeds` (6-neighbours), and the seeds."""
    region = seeds.copy()
    while True:
        bigger = (dilate6(region) & allowed) | region
        if np.array_equal(bigger, region):
            return region
        region = bigger


class RegionGrow:
    """The plug-in: built once per job as `RegionGrow(**interact.options)`."""

    def __init__(self, tolerance: float = 0.3, radius: int = 1, box_margin: float = 0.25):
        self.tolerance = float(tolerance)  # +interact.options.tolerance=0.2 on the command line
        self.radius = int(radius)
        self.box_margin = float(box_margin)

    def begin(self, image: np.ndarray, spacing: tuple[float, float, float], initial: np.ndarray | None):
        """A new case: the image (float32 z-y-x, the harness's normalised intensities), its spacing (mm),
        the round-0 prediction (None under `interact.initial: none`)."""
        self.image = image

    def predict(self, prompts, previous: np.ndarray) -> np.ndarray:
        """One round: the prompts so far (`iunet_bench.interactive.plugin.Prompts`) in, a 0/1 mask out."""
        image, box = self.image, prompts.box
        seeds = prompts.add.copy()
        negatives = prompts.remove.copy()
        for click in prompts.clicks:
            (seeds if click.label == "add" else negatives)[click.zyx] = True
        seeds &= ~negatives  # a later "remove" on the same voxel wins
        inside = self.column(box, image.shape)
        if not seeds.any() and box is not None:  # the box alone: its middle third on its middle slice
            dy, dx = (box.y1 - box.y0) // 3, (box.x1 - box.x0) // 3
            seeds[box.z_mid, box.y0 + dy : box.y1 - dy, box.x0 + dx : box.x1 - dx] = True
        if not seeds.any():
            return previous  # nothing says where the organ is yet
        organ = float(image[seeds].mean())
        near = np.abs(image - organ) <= self.tolerance
        if negatives.any():
            background = float(image[negatives].mean())
            near &= np.abs(image - organ) < np.abs(image - background)
        barrier = negatives
        for _ in range(self.radius):
            barrier = dilate6(barrier)
        return grow(seeds, near & inside & ~barrier)

    def column(self, box, shape) -> np.ndarray:
        """Where the organ may be: with a box, its z range and its 2D box grown by `box_margin` of its size
        on every side; without one, everywhere."""
        inside = np.zeros(shape, bool)
        if box is None:
            inside[:] = True
            return inside
        my, mx = round((box.y1 - box.y0) * self.box_margin), round((box.x1 - box.x0) * self.box_margin)
        inside[box.z0 : box.z1, max(0, box.y0 - my) : box.y1 + my, max(0, box.x0 - mx) : box.x1 + mx] = True
        return inside

    def end(self) -> None:
        """After each case (optional): let go of the image."""
        self.image = None
