"""The fine-tuning losses: paper eq. 3-4 (weighted Dice between the target Y' and the new prediction, plus a
volume term), the cross-entropy term on the scribbled voxels beside it (`interact.scribble_ce`), and
BIFSeg's voxel-weighted cross-entropy. One cross-entropy serves both."""

from __future__ import annotations

from keras import ops

from iunet_bench.train.loss import EPS, soft_dice_per_class

# The smallest probability whose log the cross-entropy takes: a normal float32 (1e-38 would be a denormal,
# flushed to 0 by oneDNN: log 0 = -inf, and 0 * -inf = NaN). Below it (a logit gap above 69) the gradient
# is cut; above it, the gradient on the logits is p - y whatever the network's confidence.
TINY = 1e-30


def cross_entropy(target, pred):
    """-log of the probability `pred` gives the target's class, per voxel: (batch, z, y, x).

    target (one-hot), pred (softmax): (batch, z, y, x, classes). Unlike a Dice, whose gradient on the
    logits carries a factor p (1 - p) and so vanishes on voxels the network is confidently wrong about,
    this keeps the gradient p - y there: what lets a scribble flip a voxel the network is sure of."""
    return -ops.log(ops.maximum(ops.sum(target * pred, -1), TINY))


def weighted_cross_entropy(target, pred, weight):
    """sum(w * cross_entropy) / sum(w), per batch item, averaged over the batch (0 where sum(w) = 0).
    weight: (batch, z, y, x). BIFSeg's loss, and (weight = the scribble mask) iunet's scribble term."""
    per_item = ops.sum(weight * cross_entropy(target, pred), (1, 2, 3))
    return ops.mean(per_item / (ops.sum(weight, (1, 2, 3)) + EPS))


def interactive_loss(
    target,
    pred,
    weight,
    lambda_volume: float,
    weight_mode: str = "both",
    scribbles=None,
    scribble_ce: float = 0.0,
):
    """Eq. 3 averaged over classes (eq. 4) and the batch, plus `scribble_ce` x the mean cross-entropy over
    the scribbled voxels (0: eq. 3 alone, the paper's loss).

    target (Y'), pred (the network's new softmax): (batch, z, y, x, classes); weight, scribbles (1 on the
    scribbled voxels, else 0): (batch, z, y, x).
    Per class k: -weighted Dice(Y'_k, P_k) + lambda * ((sum P_k - sum Y'_k) / sum P_k)^2.
    """
    dice = soft_dice_per_class(target, pred, weight, weight_mode)
    volume_pred = ops.sum(pred, (1, 2, 3))
    volume_target = ops.sum(target, (1, 2, 3))
    volume = ops.square((volume_pred - volume_target) / (volume_pred + EPS))
    loss = ops.mean(-dice + lambda_volume * volume)
    if scribble_ce:
        if scribbles is None:
            raise ValueError("interactive_loss: scribble_ce > 0 needs the scribble mask `scribbles`")
        loss = loss + scribble_ce * weighted_cross_entropy(target, pred, scribbles)
    return loss
