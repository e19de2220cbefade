"""Interactive room: weight maps, the eq. 3 loss, refiners. TensorFlow is imported lazily by the refiners."""

from iunet_bench.interactive.config import build_refiner, finetune_config_from, make_refiner

__all__ = ["build_refiner", "finetune_config_from", "make_refiner"]
