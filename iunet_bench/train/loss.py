"""Soft Dice (paper eq. 1-2), optionally voxel-weighted (the Dice part of eq. 3). One implementation for both."""

from __future__ import annotations

from keras import ops

EPS = 1e-6


def soft_dice_per_class(target, pred, weight=None, weight_mode: str = "both"):
    """Soft Dice per (batch item, class): 2 sum(w y p) / (sum(w' y) + sum(w' p)).

    target, pred: (batch, z, y, x, classes). weight: (batch, z, y, x) or None (all ones).
    weight_mode: "both" weights numerator and denominator (a weight of 0 removes a voxel from the loss);
    "numerator" weights only the overlap term, exactly as eq. 3 is printed in the paper.
    """
    axes = (1, 2, 3)
    if weight is None:
        inter = ops.sum(target * pred, axes)
        denom = ops.sum(target, axes) + ops.sum(pred, axes)
    else:
        w = weight[..., None]
        inter = ops.sum(w * target * pred, axes)
        if weight_mode == "both":
            denom = ops.sum(w * target, axes) + ops.sum(w * pred, axes)
        elif weight_mode == "numerator":
            denom = ops.sum(target, axes) + ops.sum(pred, axes)
        else:
            raise ValueError(f"weight_mode {weight_mode!r} is not 'both' or 'numerator'")
    return 2.0 * inter / (denom + EPS)


def soft_dice_loss(target, pred):
    """Eq. 1-2: minus the soft Dice, averaged over classes (and the batch)."""
    return -ops.mean(soft_dice_per_class(target, pred))
