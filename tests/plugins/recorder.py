"""A plug-in that keeps what it is given, for tests/test_plugin.py."""

from __future__ import annotations

import threading

import numpy as np


class Recorder:
    """A plug-in that keeps what it was given (class-level, so the test reads it after the session) and
    answers a probability map: the previous prediction with the prompts so far pasted in, as 0.2/0.9."""

    calls: list = []
    threads: set = set()  # the threads its methods ran on

    def __init__(self, scale: float = 1.0):
        self.scale = scale
        Recorder.threads.add(threading.get_ident())

    def begin(self, image, spacing, initial):
        Recorder.threads.add(threading.get_ident())
        Recorder.calls.append(("begin", image, spacing, initial))

    def predict(self, prompts, previous):
        Recorder.threads.add(threading.get_ident())
        Recorder.calls.append(("predict", prompts, previous))
        out = (previous.astype(bool) | prompts.add) & ~prompts.remove
        return np.where(out, 0.9, 0.2) * self.scale

    def end(self):
        Recorder.threads.add(threading.get_ident())
        Recorder.calls.append(("end",))
