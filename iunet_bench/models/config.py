"""The `model` config group, one schema per `model.name` (importable without TensorFlow, for validation
before any compute).

| `model.name` | schema | builder |
| --- | --- | --- |
| `iunet` | `UNetConfig` | `models.unet.build_unet` (the paper's figure 1) |
| `unet3d_cicek` | `CicekConfig` | `models.cicek.build_cicek` (Cicek et al. 2016) |
| `dilated_fcn` | `DilatedFCNConfig` | `models.dilated.build_dilated_fcn` (iFCN / P-Net, Wang et al. 2018) |
| `keras` | `KerasModelConfig` | `models.byo.load_user_model` (bring your own `.keras` file) |

Every schema offers `grid_misfit(grid)` (None when the z-y-x grid fits the network, else a message naming
`data.preprocess.grid`), `valid_groups()` (the `interact.trainable` vocabulary of the network it builds,
known before building) and `pretrained` (True when the network comes with weights of its own, so its
baseline needs no training unless asked). `models.build_model(grid, cfg)` builds any of them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from iunet_bench.core.schema import Int, Schema, UserPath, variants
from iunet_bench.models.names import byo_groups, dilated_layer_names, groups_of, unet_layer_names


class _Pooled(Schema):
    """What the two U-Nets share (no fields of its own: each keeps its keys in its own order): `depth`
    levels, each pooling (2 if in `pool_z_levels` else 1, 2, 2)."""

    @field_validator("pool_z_levels", check_fields=False)
    @classmethod
    def _distinct(cls, levels: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(levels)) != len(levels) or any(level < 0 for level in levels):
            raise ValueError("must be distinct levels >= 0")
        return levels

    @model_validator(mode="after")
    def _levels_exist(self):
        bad = [level for level in self.pool_z_levels if level >= self.depth]
        if bad:
            raise ValueError(
                f"model.pool_z_levels: {list(self.pool_z_levels)} must be levels in [0, {self.depth - 1}]"
            )
        return self

    def pooling(self) -> list[tuple[int, int, int]]:
        """The pooling factor (z, y, x) of each level."""
        return [(2 if level in self.pool_z_levels else 1, 2, 2) for level in range(self.depth)]

    def grid_misfit(self, grid) -> str | None:
        """None when every axis of the z-y-x `grid` is a multiple of the model's total pooling along it,
        else what does not fit (for `data.preprocess.grid` errors)."""
        total = [1, 1, 1]
        for p in self.pooling():
            total = [t * q for t, q in zip(total, p)]
        bad = [
            f"{'zyx'[i]}={n} (needs a multiple of {f})" for i, (n, f) in enumerate(zip(grid, total)) if n % f
        ]
        if not bad:
            return None
        return (
            f"data.preprocess.grid: {list(grid)} does not fit the model's pooling (model.depth={self.depth}, "
            f"model.pool_z_levels={list(self.pool_z_levels)}): {', '.join(bad)}"
        )

    def valid_groups(self) -> list[str]:
        """The `interact.trainable` names of the network this config builds (no TensorFlow needed)."""
        return groups_of(unet_layer_names(self))

    @property
    def pretrained(self) -> bool:
        return False


class UNetConfig(_Pooled):
    """iUnet: a 3D U-Net with same padding (paper figure 1)."""

    name: Literal["iunet"] = Field(
        "iunet", description="the architecture (the 3D U-Net of the paper's figure 1)"
    )
    base_filters: Int = Field(16, ge=1, description="filters at the top level; doubled per level")
    depth: Int = Field(
        3,
        ge=1,
        description="resolution levels above the bottleneck (groups `encoder.0..depth-1`, `decoder.0..depth-1`)",
    )
    norm: Literal["batch", "none"] = Field(
        "batch",
        description="normalisation after each convolution; BatchNorm statistics stay frozen while fine-tuning",
    )
    convs_per_level: Int = Field(2, ge=1, description="3x3x3 convolutions per block")
    pool_z_levels: tuple[Int, ...] = Field(
        (1, 2), description="levels whose pooling also halves z (the model grid is anisotropic)"
    )


class CicekConfig(_Pooled):
    """Cicek et al. 2016's 3D U-Net, with same padding and anisotropic pooling to fit our grids: per level
    two 3x3x3 convolutions + batch norm + ReLU, the second doubling the channels (32->64, 64->128,
    128->256, bottleneck 256->512 at full width), 2x2x2 max pooling, 2x2x2 up-convolutions keeping the
    channels of the level below, two convolutions per decoder level, a 1x1x1 2-class softmax `head`."""

    name: Literal["unet3d_cicek"] = Field(
        "unet3d_cicek",
        description="the architecture: unet3d_cicek = the 3D U-Net of Cicek et al. 2016 (paper experiment 1)",
    )
    base_filters: Int = Field(
        32,
        ge=1,
        description="unet3d_cicek: filters of the first convolution; each level's second convolution doubles "
        "its first, the next level starts where the previous ended (32: Cicek's 32->64, ..., bottleneck "
        "256->512; 16: half width)",
    )
    depth: Int = Field(
        3,
        ge=1,
        description="resolution levels above the bottleneck (groups `encoder.0..depth-1`, `decoder.0..depth-1`)",
    )
    norm: Literal["batch", "none"] = Field(
        "batch",
        description="normalisation after each convolution; BatchNorm statistics stay frozen while fine-tuning",
    )
    pool_z_levels: tuple[Int, ...] = Field(
        (1, 2), description="levels whose pooling also halves z (the model grid is anisotropic)"
    )

    convs_per_level: ClassVar[int] = 2  # Cicek's: not a key

    def filters(self, level: int) -> tuple[int, int]:
        """(first, second) convolution filters of an encoder level (level = depth: the bottleneck)."""
        first = self.base_filters * 2**level
        return first, 2 * first


class DilatedFCNConfig(Schema):
    """The dilated FCN of iFCN / DeepIGeoS' P-Net (Wang et al. 2018), 3D: blocks of 3x3x3 convolutions at
    full resolution with growing dilation, each block's output compressed by a 1x1x1 convolution, the
    compressed features concatenated (multi-scale), fused by a 1x1x1 convolution, then a 1x1x1 2-class
    softmax `head`. No pooling: any grid fits, but every activation is at full resolution (memory grows
    with grid voxels x `filters` x the number of convolutions)."""

    name: Literal["dilated_fcn"] = Field(
        "dilated_fcn",
        description="the architecture: dilated_fcn = the dilated FCN of iFCN / P-Net (paper experiment 1)",
    )
    filters: Int = Field(
        16,
        ge=1,
        description="dilated_fcn: channels of every 3x3x3 convolution (P-Net 3D: 16; the 2D P-Net: 64)",
    )
    dilations: tuple[Int, ...] = Field(
        (1, 2, 4, 8, 16),
        min_length=1,
        description="dilated_fcn: the dilation of each block's convolutions (groups `block.0..n-1`); a "
        "dilation beyond an axis' size sees only zero padding along it",
    )
    convs_per_block: tuple[Int, ...] = Field(
        (2, 2, 3, 3, 3),
        min_length=1,
        description="dilated_fcn: 3x3x3 convolutions of each block (`block.<i>.conv<j>`), one entry per "
        "dilation (P-Net: 2, 2, 3, 3, 3)",
    )
    compress: Int = Field(
        4,
        ge=1,
        description="dilated_fcn: channels each block's output is compressed to by a 1x1x1 convolution "
        "(`concat.<i>`) before the concatenation",
    )
    fuse_filters: Int = Field(
        16,
        ge=1,
        description="dilated_fcn: channels of the 1x1x1 convolution on the concatenation (`concat.fuse`), "
        "before the `head`",
    )
    norm: Literal["batch", "none"] = Field(
        "batch",
        description="normalisation after each convolution; BatchNorm statistics stay frozen while fine-tuning",
    )

    @field_validator("dilations", "convs_per_block")
    @classmethod
    def _positive(cls, values: tuple[int, ...]) -> tuple[int, ...]:
        if any(v < 1 for v in values):
            raise ValueError("must be integers >= 1")
        return values

    @model_validator(mode="after")
    def _one_per_block(self) -> DilatedFCNConfig:
        if len(self.dilations) != len(self.convs_per_block):
            raise ValueError(
                f"model.convs_per_block: {list(self.convs_per_block)} needs one entry per block of "
                f"model.dilations: {list(self.dilations)}"
            )
        return self

    def grid_misfit(self, grid) -> str | None:
        """No pooling: every grid fits."""
        return None

    def valid_groups(self) -> list[str]:
        return groups_of(dilated_layer_names(self))

    @property
    def pretrained(self) -> bool:
        return False


_GROUP_NAME = re.compile(r"^[A-Za-z_][\w.-]*$")


class KerasModelConfig(Schema):
    """Bring your own Keras 3 model: a `.keras` file whose input is (z, y, x, 1) = `data.preprocess.grid`
    and whose output is a 2-class softmax (z, y, x, 2) or a 1-channel sigmoid (z, y, x, 1), which is
    turned into [1 - p, p]. Its layer groups are named by `groups` (regular expressions over layer names);
    `all` is always there."""

    name: Literal["keras"] = Field(
        "keras", description="the architecture: keras = your own Keras 3 model from `model.path`"
    )
    path: UserPath = Field(
        description="keras: the `.keras` file (an existing file; input (z, y, x, 1) = data.preprocess.grid, "
        "output a 2-class softmax (z, y, x, 2) or a 1-channel sigmoid (z, y, x, 1))"
    )
    groups: dict[str, tuple[str, ...]] = Field(
        default_factory=dict,
        description="keras: layer groups for `interact.trainable`: name -> regular expressions matched "
        "(re.search) against the layer names, e.g. `'+model.groups.head=[\"^final_\"]'` on the command line or "
        "`{head: [^final_], bottleneck: [^mid]}` in YAML; `all` is always there; every group must match a "
        "layer with weights",
    )

    train_steps: Int = Field(
        0,
        ge=0,
        description="keras: baseline training steps on top of the file's weights (with the `train` keys but "
        "this count); 0 = the file's weights are the baseline as they are",
    )

    @field_validator("path", mode="before")
    @classmethod
    def _required(cls, path):
        if path in (None, ""):
            raise ValueError("model.path: required for model.name=keras: set model.path=FILE.keras")
        return path

    @field_validator("path")
    @classmethod
    def _a_keras_file(cls, path: Path) -> Path:
        path = Path(os.path.expanduser(str(path)))
        if path.suffix != ".keras":
            raise ValueError(f"model.path: {str(path)!r}: must be a Keras 3 `.keras` file")
        if not path.is_file():
            raise ValueError(f"model.path: {str(path)!r}: no such file")
        return path

    @field_validator("groups")
    @classmethod
    def _patterns(cls, groups: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        problems = []
        for name, patterns in groups.items():
            key = f"model.groups.{name}"
            if name == "all":
                problems.append(f"{key}: `all` is always every layer; name the group otherwise")
            elif not _GROUP_NAME.match(name):
                problems.append(f"{key}: a group name is letters, digits, `_`, `.`, `-`")
            elif not patterns:
                problems.append(f"{key}: empty; give one or more regular expressions over layer names")
            for i, pattern in enumerate(patterns):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    problems.append(f"{key}[{i}]: {pattern!r} is not a regular expression ({exc})")
        if problems:
            raise ValueError("\n".join(problems))
        return groups

    def grid_misfit(self, grid) -> str | None:
        """Checked when the file is loaded (its input shape against the grid)."""
        return None

    def valid_groups(self) -> list[str]:
        return byo_groups(self.groups)

    @property
    def pretrained(self) -> bool:
        """The file's weights are the baseline: trained further only for `model.train_steps` > 0."""
        return True


ModelConfig = variants(UNetConfig, CicekConfig, DilatedFCNConfig, KerasModelConfig, tag="name")
"""The `model` field's type: one of the schemas above, chosen by `model.name`."""

ModelSchema = UNetConfig | CicekConfig | DilatedFCNConfig | KerasModelConfig
"""Any of the schemas (for annotations)."""
