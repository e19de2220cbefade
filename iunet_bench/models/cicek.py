"""The 3D U-Net of Cicek et al. 2016 ("3D U-Net: learning dense volumetric segmentation from sparse
annotation"), the first baseline of the paper's experiment 1, with named layer groups like iUnet's.

Per encoder level two 3x3x3 convolutions, each followed by batch norm and ReLU, the second doubling the
channels (full width: 32->64, 64->128, 128->256, bottleneck 256->512); 2x2x2 max pooling; per decoder
level a 2x2x2 up-convolution (transposed, stride 2) keeping the channels of the level below, the skip
concatenated, two 3x3x3 convolutions with the channels of that level's encoder output; a 1x1x1 softmax
`head` with 2 classes (float32, as iUnet's). Departures from the paper, to run on our grids: `same`
padding (Cicek's convolutions are unpadded) and anisotropic pooling (levels not in `model.pool_z_levels`
pool y and x only), as iUnet does.

Layer names: `encoder.<i>.conv<j>` / `.bn<j>` / `.relu<j>` / `.pool`, `bottleneck.*`, `decoder.<i>.up`,
`decoder.<i>.concat`, `decoder.<i>.conv<j>` / `.bn<j>`, `head`: `models.groups` gives the U-Net vocabulary.
"""

from __future__ import annotations

import keras
from keras import layers

from iunet_bench.models.config import CicekConfig
from iunet_bench.models.unet import conv_block


def _block(x, filters: tuple[int, int], prefix: str, cfg: CicekConfig):
    return conv_block(x, filters, prefix, cfg.norm)


def build_cicek(input_shape: tuple[int, int, int], cfg: CicekConfig) -> keras.Model:
    """Build the network for a z-y-x grid; each grid axis must be divisible by its total pooling factor."""
    misfit = cfg.grid_misfit(input_shape)
    if misfit:
        raise ValueError(misfit)
    pools = cfg.pooling()
    inputs = keras.Input((*input_shape, 1), name="image")
    x = inputs
    skips = []
    for level in range(cfg.depth):
        x = _block(x, cfg.filters(level), f"encoder.{level}", cfg)
        skips.append(x)
        x = layers.MaxPooling3D(pools[level], name=f"encoder.{level}.pool")(x)
    x = _block(x, cfg.filters(cfg.depth), "bottleneck", cfg)
    for level in reversed(range(cfg.depth)):
        up = int(x.shape[-1])  # Cicek's up-convolution keeps the channels of the level below
        x = layers.Conv3DTranspose(up, pools[level], strides=pools[level], name=f"decoder.{level}.up")(x)
        x = layers.Concatenate(name=f"decoder.{level}.concat")([x, skips[level]])
        width = cfg.filters(level)[1]
        x = _block(x, (width, width), f"decoder.{level}", cfg)
    outputs = layers.Conv3D(2, 1, activation="softmax", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="unet3d_cicek")
