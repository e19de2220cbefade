"""Paper section 2.4 augmentation: random translation (+-3 voxels), rotation (+-10 deg), low Gaussian noise.

numpy/scipy only; one call augments one (image, label) pair with the given generator.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from iunet_bench.train.config import AugmentConfig


def augment(image: np.ndarray, label: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig):
    """Rotate about z (in the axial plane) and translate in 3D, both trilinear; add Gaussian noise."""
    angle = np.deg2rad(rng.uniform(-cfg.rotate_degrees, cfg.rotate_degrees))
    shift = rng.uniform(-cfg.translate_voxels, cfg.translate_voxels, size=3)
    c, s = np.cos(angle), np.sin(angle)
    matrix = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    centre = (np.array(image.shape) - 1) / 2.0
    offset = centre - matrix @ centre - shift
    img = ndi.affine_transform(image, matrix, offset=offset, order=1, mode="nearest")
    lab = (
        ndi.affine_transform(label.astype(np.float32), matrix, offset=offset, order=1, mode="constant") >= 0.5
    )
    sigma = rng.uniform(0.0, cfg.noise_hu) / cfg.hu_per_unit
    img = img + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return img.astype(np.float32), lab.astype(np.uint8)
