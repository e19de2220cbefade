"""What every refiner shares (numpy only): the scribbles it has been given during one case's session."""

from __future__ import annotations

import numpy as np

from simulators.interaction import Interaction


class ScribbleMemory:
    """The constraints of the current round.

    accumulate=True: the union of every round's scribbles since `start` (a later stroke of the other
    polarity on the same voxel wins); False: this round's scribbles only.
    """

    def __init__(self, shape: tuple[int, ...], accumulate: bool):
        self.accumulate = accumulate
        self.add = np.zeros(shape, bool)
        self.remove = np.zeros(shape, bool)

    def update(self, interaction: Interaction) -> Interaction:
        if self.accumulate:
            self.add = (self.add | interaction.add) & ~interaction.remove
            self.remove = (self.remove | interaction.remove) & ~interaction.add
        else:
            self.add, self.remove = interaction.add.copy(), interaction.remove.copy()
        return Interaction(self.add, self.remove)
