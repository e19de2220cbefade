"""The `train` config group: baseline training (paper section 2.4). TF-free."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from iunet_bench.schema import Float, Int, Schema, UserPath


class AugmentConfig(Schema):
    translate_voxels: Float = Field(3.0, ge=0, description="random translation, +- voxels, trilinear")
    rotate_degrees: Float = Field(10.0, ge=0, description="random rotation in the axial plane, +- degrees")
    noise_hu: Float = Field(3.0, ge=0, description="Gaussian noise, sigma drawn from [0, this] HU")
    hu_per_unit: Float = Field(
        200.0, gt=0, description="HU per unit of the normalised image (half the window width)"
    )


class TrainConfig(Schema):
    steps: Int = Field(300, ge=0, description="optimisation steps (the paper: 2000 at batch 8)")
    batch_size: Int = Field(4, ge=1, description="augmented volumes per step")
    lr: Float = Field(
        1e-3, gt=0, description="Adam learning rate (the paper: 1e-4; `experiment=paper` sets it)"
    )
    augment: AugmentConfig = AugmentConfig()
    cache_dir: UserPath = Field(
        Path("runs/cache/baseline"),
        description="where trained baselines are cached, keyed by data, model, train config, seed, precision "
        "and the code that trains them; must be a writable folder",
    )
