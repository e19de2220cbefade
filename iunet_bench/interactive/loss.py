"""Paper eq. 3-4: weighted Dice between the target Y' and the new prediction, plus a volume term."""

from __future__ import annotations

import tensorflow as tf

from iunet_bench.train.loss import EPS, soft_dice_per_class


def interactive_loss(target, pred, weight, lambda_volume: float, weight_mode: str = "both"):
    """Eq. 3 averaged over classes (eq. 4) and the batch.

    target (Y'), pred (the network's new softmax): (batch, z, y, x, classes); weight: (batch, z, y, x).
    Per class k: -weighted Dice(Y'_k, P_k) + lambda * ((sum P_k - sum Y'_k) / sum P_k)^2.
    """
    dice = soft_dice_per_class(target, pred, weight, weight_mode)
    volume_pred = tf.reduce_sum(pred, (1, 2, 3))
    volume_target = tf.reduce_sum(target, (1, 2, 3))
    volume = tf.square((volume_pred - volume_target) / (volume_pred + EPS))
    return tf.reduce_mean(-dice + lambda_volume * volume)


def weighted_cross_entropy(target, pred, weight):
    """BIFSeg's loss: the voxel-weighted cross-entropy sum(w * sum_k -Y'_k log P_k) / sum(w), per batch item,
    averaged over the batch. target, pred: (batch, z, y, x, classes); weight: (batch, z, y, x)."""
    ce = -tf.reduce_sum(target * tf.math.log(tf.clip_by_value(pred, EPS, 1.0)), -1)
    per_item = tf.reduce_sum(weight * ce, (1, 2, 3)) / (tf.reduce_sum(weight, (1, 2, 3)) + EPS)
    return tf.reduce_mean(per_item)
