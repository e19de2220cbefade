from iunet_bench.models.groups import group_names, layers_in_groups, trainable_variables
from iunet_bench.models.unet import UNetConfig, build_unet

__all__ = ["UNetConfig", "build_unet", "group_names", "layers_in_groups", "trainable_variables"]
