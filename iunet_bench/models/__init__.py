"""Models room (TensorFlow/Keras). `build_model(grid, cfg)` builds the network of any `model` config
(importing TensorFlow only when called); `models.config` holds the schemas (no TensorFlow), `models.groups`
names layers, `models.split` splits a network at its frozen frontier, `python -m iunet_bench.models
summary OVERRIDES...` prints a configured network's groups, parameters and multiply-adds.

May import: core, simulators, data.
(`models.__main__`, a command line that composes the job's configuration, ranks with the job.)

| `model.name` | builder |
| --- | --- |
| `iunet` | `models.unet.build_unet` |
| `unet3d_cicek` | `models.cicek.build_cicek` |
| `dilated_fcn` | `models.dilated.build_dilated_fcn` |
| `keras` | `models.byo.load_user_model` |
"""

from __future__ import annotations


def build_model(grid, cfg):
    """The Keras model of the `model` config `cfg` on the z-y-x `grid` (`data.preprocess.grid`): input
    (batch, *grid, 1), output a float32 2-class softmax (batch, *grid, 2), layers named in groups."""
    from iunet_bench.models.config import CicekConfig, DilatedFCNConfig, KerasModelConfig, UNetConfig

    grid = tuple(int(n) for n in grid)
    if isinstance(cfg, UNetConfig):
        from iunet_bench.models.unet import build_unet

        return build_unet(grid, cfg)
    if isinstance(cfg, CicekConfig):
        from iunet_bench.models.cicek import build_cicek

        return build_cicek(grid, cfg)
    if isinstance(cfg, DilatedFCNConfig):
        from iunet_bench.models.dilated import build_dilated_fcn

        return build_dilated_fcn(grid, cfg)
    if isinstance(cfg, KerasModelConfig):
        from iunet_bench.models.byo import load_user_model

        return load_user_model(grid, cfg)
    raise TypeError(f"no builder for model config {type(cfg).__name__}")


__all__ = ["build_model"]
