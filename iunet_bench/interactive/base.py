"""What every refiner shares (numpy only): its interface, its result, and the scribbles it has been given
during one case's session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from iunet_bench.data.case import Volume
from simulators.interaction import Interaction


@dataclass(frozen=True)
class Refinement:
    """What a refiner returns for one round."""

    prediction: np.ndarray  # uint8 0/1 on the volume's grid: what the user sees next
    losses: tuple[float, ...] = ()  # fine-tuning loss per step of this round (learning methods only)
    # the network's own output, when `prediction` has the scribbles pasted over it (None: they are the same)
    network: np.ndarray | None = None

    @property
    def own(self) -> np.ndarray:
        """The method's own output, before any pasting: what agreement with the scribbles is measured on."""
        return self.prediction if self.network is None else self.network


class Refiner(Protocol):
    """Turns a robot's interactions into predictions, one case at a time.

    `start` begins a case (learning refiners restore the baseline weights and optimizer state, so no case
    leaks into another); `refine` takes one round's interaction and returns the new prediction with what
    the round reports; an optional `finish()` is called after a case's last round (a plug-in's `end`);
    an optional `accept(prediction)` is called when the user undoes a round (`session.undo`) and keeps
    another prediction, which the refiner's next round then starts from (`CurrentPrediction`).
    Built once per job by `iunet_bench.interactive.build_refiner`.
    """

    name: str

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None: ...

    def refine(self, interaction: Interaction) -> Refinement: ...


class CurrentPrediction:
    """For refiners whose next round starts from the prediction the user saw last (`self.prediction`):
    when the user undoes a round (`session.undo`), the prediction kept instead becomes that start. A
    learning refiner keeps its fine-tuned weights: its next round fits them to the kept prediction and
    every scribble so far."""

    prediction: np.ndarray

    def accept(self, prediction: np.ndarray) -> None:
        self.prediction = prediction.astype(np.uint8)


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
