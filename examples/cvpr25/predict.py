"""A stand-in CVPR 2025 challenge submission, plain Python and numpy: reads every `inputs/*.npz` as a
submission does (run in the folder that holds `inputs/` and `outputs/`, `/workspace` in the challenge's
container) and writes `outputs/<same name>.npz` with `segs`, one label per class (1, 2, ... in the order of
`boxes`/`clicks`).

Its "model": intensity region growing. The box round: the voxels of the box's slab (z range, and the 2D
box's rows and columns) whose intensity is near the box's centre voxel. A click round: the previous
prediction, plus what grows from each foreground click, minus what grows from each background click.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TOLERANCE = 60  # grey levels (0..255) a grown voxel may differ from its seed
RADIUS = 4  # voxels: how far a click's region may reach


def grow(imgs: np.ndarray, seed: tuple[int, int, int], allowed: np.ndarray) -> np.ndarray:
    """The 6-connected region of `allowed` voxels within TOLERANCE of the seed's intensity."""
    similar = allowed & (np.abs(imgs.astype(np.int16) - int(imgs[seed])) <= TOLERANCE)
    region = np.zeros(imgs.shape, bool)
    if not similar[seed]:
        return region
    region[seed] = True
    while True:
        grown = region.copy()
        for axis in range(3):
            grown[(slice(None),) * axis + (slice(1, None),)] |= region[
                (slice(None),) * axis + (slice(None, -1),)
            ]
            grown[(slice(None),) * axis + (slice(None, -1),)] |= region[
                (slice(None),) * axis + (slice(1, None),)
            ]
        grown &= similar
        if (grown == region).all():
            return region
        region = grown


def near(shape: tuple[int, int, int], seed: tuple[int, int, int]) -> np.ndarray:
    """The voxels within RADIUS of `seed` (in voxels)."""
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (zz - seed[0]) ** 2 + (yy - seed[1]) ** 2 + (xx - seed[2]) ** 2 <= RADIUS**2


def slab(shape: tuple[int, int, int], box: dict | None) -> np.ndarray:
    """The box's slab: its z range, and its 2D box's rows and columns (everywhere without a box)."""
    if box is None:
        return np.ones(shape, bool)
    allowed = np.zeros(shape, bool)
    rows = slice(box["z_mid_y_min"], box["z_mid_y_max"] + 1)
    cols = slice(box["z_mid_x_min"], box["z_mid_x_max"] + 1)
    allowed[box["z_min"] : box["z_max"] + 1, rows, cols] = True
    return allowed


def box_mask(imgs: np.ndarray, box: dict) -> np.ndarray:
    centre = (
        box["z_mid"],
        (box["z_mid_y_min"] + box["z_mid_y_max"]) // 2,
        (box["z_mid_x_min"] + box["z_mid_x_max"]) // 2,
    )
    return grow(imgs, centre, slab(imgs.shape, box))


def segment(case: dict) -> np.ndarray:
    imgs = case["imgs"]
    assert imgs.dtype == np.uint8 and imgs.ndim == 3, (imgs.dtype, imgs.shape)
    boxes = list(case["boxes"]) if "boxes" in case else []
    clicks = list(case["clicks"]) if "clicks" in case else []
    segs = np.zeros(imgs.shape, np.uint8)
    for index in range(max(len(boxes), len(clicks))):
        label = index + 1
        if "prev_pred" in case:  # a click round: start from the previous prediction
            mask = case["prev_pred"] == label
            allowed = slab(imgs.shape, boxes[index] if boxes else None)
            for z, y, x in clicks[index]["fg"]:  # z-y-x, the arrays' order
                mask |= grow(imgs, (z, y, x), allowed & near(imgs.shape, (z, y, x)))
                mask[z, y, x] = True
            for z, y, x in clicks[index]["bg"]:
                mask &= ~grow(imgs, (z, y, x), mask & near(imgs.shape, (z, y, x)))
                mask[z, y, x] = False
        else:  # the box round
            mask = box_mask(imgs, boxes[index])
        segs[mask] = label
    return segs


def main(folder: Path) -> None:
    (folder / "outputs").mkdir(exist_ok=True)
    for path in sorted((folder / "inputs").glob("*.npz")):
        with np.load(path, allow_pickle=True) as f:
            case = {k: f[k] for k in f.files}
        segs = segment(case)
        np.savez_compressed(folder / "outputs" / path.name, segs=segs)
        print(f"{path.name}: keys {sorted(case)}, {int((segs > 0).sum())} voxels segmented")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path.cwd())
