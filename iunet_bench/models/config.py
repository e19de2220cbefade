"""The `model` config group (importable without TensorFlow, for validation before any compute)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from iunet_bench.schema import Int, Schema


class UNetConfig(Schema):
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

    @field_validator("pool_z_levels")
    @classmethod
    def _distinct(cls, levels: tuple[int, ...]) -> tuple[int, ...]:
        if len(set(levels)) != len(levels) or any(level < 0 for level in levels):
            raise ValueError("must be distinct levels >= 0")
        return levels

    @model_validator(mode="after")
    def _levels_exist(self) -> UNetConfig:
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


ModelConfig = UNetConfig
