"""Interactive room: weight maps, the eq. 3 loss, refiners. TensorFlow is imported lazily by the refiners.

`build_refiner(config, model)` makes the refiner of a validated `interact` schema (see `config.py`); every
refiner follows the `Refiner` protocol of `base.py`.

May import: core, simulators, data, models, train.
"""

from __future__ import annotations

from iunet_bench.interactive.base import Refinement, Refiner
from iunet_bench.interactive.config import (
    ContainerInteract,
    PasteInteract,
    PluginInteract,
    RandomWalkerInteract,
)


def build_refiner(config, model) -> Refiner:
    """The refiner for a validated `interact` config: built once per job, then `start` per case and
    `refine` per round. `model` (the baseline) is only read: learning refiners tune their own copy; the
    non-learning ones and a plug-in take None."""
    if isinstance(config, PasteInteract):
        from iunet_bench.interactive.classic import PasteRefiner

        return PasteRefiner(config)
    if isinstance(config, ContainerInteract):  # a plug-in: one path for validation, timeouts and faults
        from iunet_bench.interactive.plugin import PluginRefiner

        refiner = PluginRefiner(config.as_plugin())
        refiner.name = f"cvpr25_container {config.command}"
        return refiner
    if isinstance(config, PluginInteract):
        from iunet_bench.interactive.plugin import PluginRefiner

        return PluginRefiner(config)
    if isinstance(config, RandomWalkerInteract):
        from iunet_bench.interactive.classic import RandomWalkerRefiner

        return RandomWalkerRefiner(config)
    from iunet_bench.interactive.refiner import make_refiner

    return make_refiner(model, config)


__all__ = ["Refinement", "Refiner", "build_refiner"]
