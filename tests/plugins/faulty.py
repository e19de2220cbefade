"""Plug-ins that misbehave on purpose (tests/test_plugin.py): on the `case`-th case begun in this process
(0: the first), `predict` misbehaves as `mode` says; on every other case it pastes the prompts into the
previous prediction, as a well-behaved plug-in would. The count is per process and per mode, so it
outlives an instance abandoned after a timeout."""

from __future__ import annotations

import time

import numpy as np

BEGUN: dict[str, int] = {}


class Faulty:
    def __init__(self, mode: str = "raise", case: int = 0, seconds: float = 60.0):
        self.mode, self.case, self.seconds = mode, case, seconds

    def begin(self, image, spacing, initial):
        n = BEGUN.get(self.mode, 0)
        BEGUN[self.mode] = n + 1
        self.bad, self.shape = n == self.case, image.shape

    def predict(self, prompts, previous):
        if self.bad:
            if self.mode == "raise":
                raise RuntimeError("deliberate fault")
            if self.mode == "shape":
                return np.zeros(self.shape[1:], bool)
            if self.mode == "values":
                return np.full(self.shape, 2, np.int64)
            if self.mode == "slow":
                time.sleep(self.seconds)
        return (previous.astype(bool) | prompts.add) & ~prompts.remove


class NoPredict:
    def begin(self, image, spacing, initial):
        pass

    predict = None  # not callable
