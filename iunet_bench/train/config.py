"""The `train` config group: baseline training (paper section 2.4). TF-free."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from iunet_bench.core.schema import Float, Int, Schema, UserPath


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
    validation_cases: Int = Field(
        0,
        ge=0,
        description="training cases set aside (the last of the training split) to measure a validation DSC; "
        "0 = none (every training case trains)",
    )
    validate_every: Int = Field(
        50,
        ge=1,
        description="steps between validation DSCs (shown on the progress bar, logged as train_val_dsc)",
    )
    early_stop: Int | None = Field(
        None,
        ge=1,
        description="stop after this many validations without a better validation DSC and keep the best "
        "weights (needs validation_cases); null = train every step",
    )
    checkpoint_every: Int = Field(
        100,
        ge=0,
        description="save weights, optimiser state and the random stream every this many steps next to the "
        "cache entry (`<key>.partial`), so an interrupted training resumes from there with the same result; "
        "0 = never",
    )
    augment: AugmentConfig = AugmentConfig()
    cache_dir: UserPath = Field(
        Path("runs/cache/baseline"),
        description="where trained baselines are cached, keyed by data, model, train config, seed, precision "
        "and the code that trains them; must be a writable folder",
    )

    @model_validator(mode="after")
    def _early_stop_needs_validation(self) -> TrainConfig:
        if self.early_stop is not None and self.validation_cases == 0:
            raise ValueError(
                f"train.early_stop: {self.early_stop} needs a validation DSC: set train.validation_cases >= 1"
            )
        return self
