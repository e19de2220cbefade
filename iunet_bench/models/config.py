"""Model configuration, importable without TensorFlow (for validation before any compute)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UNetConfig:
    base_filters: int = 16
    depth: int = 3  # number of resolution levels above the bottleneck
    norm: str = "batch"  # batch | none
    convs_per_level: int = 2
    # pooling over z too? The model grid is anisotropic (24 z vs 64 y/x); pool z only at levels listed here.
    pool_z_levels: tuple[int, ...] = (1, 2)


NORMS = ("batch", "none")
