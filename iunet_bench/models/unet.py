"""3D U-Net (iUnet, paper figure 1) with named layer groups for interactive fine-tuning.

Every layer's name starts with its group: `encoder.<level>.*`, `bottleneck.*`, `decoder.<level>.*`, `head`.
Levels count from the top (0 = full resolution). Tensors are channels-last (batch, z, y, x, channels); the
output is a 2-class softmax (background, foreground), so the loss can average over classes as in eq. 2/4.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from iunet_bench.models.config import UNetConfig


def conv_block(x, filters: Sequence[int], prefix: str, norm: str):
    """3x3x3 convolutions with these output channels, each followed by batch norm (norm="batch") and ReLU;
    layers `<prefix>.conv<j>`, `<prefix>.bn<j>`, `<prefix>.relu<j>` (the U-Nets' shared block)."""
    for j, f in enumerate(filters):
        x = layers.Conv3D(f, 3, padding="same", use_bias=norm == "none", name=f"{prefix}.conv{j}")(x)
        if norm == "batch":
            x = layers.BatchNormalization(momentum=0.9, name=f"{prefix}.bn{j}")(x)
        x = layers.Activation("relu", name=f"{prefix}.relu{j}")(x)
    return x


def _conv_block(x, filters: int, prefix: str, cfg: UNetConfig):
    return conv_block(x, [filters] * cfg.convs_per_level, prefix, cfg.norm)


def build_unet(input_shape: tuple[int, int, int], cfg: UNetConfig) -> keras.Model:
    """Build the network for a z-y-x grid; each grid axis must be divisible by its total pooling factor."""
    misfit = cfg.grid_misfit(input_shape)
    if misfit:
        raise ValueError(misfit)
    pools = cfg.pooling()
    inputs = keras.Input((*input_shape, 1), name="image")
    x = inputs
    skips = []
    for level in range(cfg.depth):
        x = _conv_block(x, cfg.base_filters * 2**level, f"encoder.{level}", cfg)
        skips.append(x)
        x = layers.MaxPooling3D(pools[level], name=f"encoder.{level}.pool")(x)
    x = _conv_block(x, cfg.base_filters * 2**cfg.depth, "bottleneck", cfg)
    for level in reversed(range(cfg.depth)):
        filters = cfg.base_filters * 2**level
        x = layers.Conv3DTranspose(filters, pools[level], strides=pools[level], name=f"decoder.{level}.up")(x)
        x = layers.Concatenate(name=f"decoder.{level}.concat")([x, skips[level]])
        x = _conv_block(x, filters, f"decoder.{level}", cfg)
    outputs = layers.Conv3D(2, 1, activation="softmax", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="iunet")
