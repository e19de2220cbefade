"""The dilated FCN of iFCN / DeepIGeoS' P-Net (Wang et al., TPAMI 2018; 3D), the paper's iFCN baseline of
experiment 1, with named layer groups for interactive fine-tuning.

Everything runs at full resolution (no pooling, so any grid fits):

- blocks `block.<i>` (i = 0..len(model.dilations)-1): `model.convs_per_block[i]` 3x3x3 convolutions with
  dilation `model.dilations[i]` (P-Net: 1, 2, 4, 8, 16 with 2, 2, 3, 3, 3 convolutions), `model.filters`
  channels each, each followed by batch norm (`block.<i>.bn<j>`, with `model.norm: batch`) and ReLU;
  layers `block.<i>.conv<j>`;
- multi-scale fusion `concat`: each block's output compressed by a 1x1x1 convolution + ReLU to
  `model.compress` channels (`concat.<i>`), the compressed features concatenated (`concat.join`, no
  weights), then a 1x1x1 convolution + ReLU with `model.fuse_filters` channels (`concat.fuse`);
- `head`: the 1x1x1 2-class softmax classifier (float32, as iUnet's).

Group vocabulary (`models.groups`): blocks `head`, `concat`, `block`, `all`; levels `block.<i>`; single
layers `block.<i>.conv<j>`, `block.<i>.bn<j>`, `concat.<i>`, `concat.fuse`.

Departures from P-Net: no dropout in the fusion block. Memory: every activation is at full resolution:
about grid voxels x `filters` x 4 bytes per tensor, three tensors (conv, norm, ReLU) per convolution; on
24x64x64 with 16 filters and 13 convolutions about 0.25 GB per volume for a training step (forward and
backward), 8 times that for a batch of 8, and linear in `filters` (64, the 2D P-Net's, quadruples it).
"""

from __future__ import annotations

import keras
from keras import layers

from iunet_bench.models.config import DilatedFCNConfig


def build_dilated_fcn(input_shape: tuple[int, int, int], cfg: DilatedFCNConfig) -> keras.Model:
    """Build the network for a z-y-x grid (any grid: no pooling)."""
    inputs = keras.Input((*input_shape, 1), name="image")
    x = inputs
    features = []
    for i, (dilation, convs) in enumerate(zip(cfg.dilations, cfg.convs_per_block)):
        for j in range(convs):
            x = layers.Conv3D(
                cfg.filters,
                3,
                padding="same",
                dilation_rate=dilation,
                use_bias=cfg.norm == "none",
                name=f"block.{i}.conv{j}",
            )(x)
            if cfg.norm == "batch":
                x = layers.BatchNormalization(momentum=0.9, name=f"block.{i}.bn{j}")(x)
            x = layers.Activation("relu", name=f"block.{i}.relu{j}")(x)
        features.append(x)
    compressed = [
        layers.Conv3D(cfg.compress, 1, activation="relu", name=f"concat.{i}")(f)
        for i, f in enumerate(features)
    ]
    x = layers.Concatenate(name="concat.join")(compressed) if len(compressed) > 1 else compressed[0]
    x = layers.Conv3D(cfg.fuse_filters, 1, activation="relu", name="concat.fuse")(x)
    outputs = layers.Conv3D(2, 1, activation="softmax", name="head", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="dilated_fcn")
