"""Any interactive model as a refiner: the plug-in contract (numpy in, numpy out; no framework).

A plug-in is a class `Name` in an importable module, named by `interact.target="package.module:Name"`,
built once per job (per worker process) as `Name(**interact.options)`, with two methods and one optional:

    begin(self, image, spacing, initial) -> None       # once per case
    predict(self, prompts: Prompts, previous) -> mask  # once per round
    end(self) -> None                                  # optional, after each case

- `image`: float32, z-y-x, on the model grid (the harness's normalised intensities, in [-1, 1]);
  `spacing`: (z, y, x) in mm; `initial`: the round-0 prediction, uint8 0/1, or None when the job gives
  none (`interact.initial: none`: round 0 is an empty mask).
- `prompts`: a `Prompts` (below): the round, the case's clicks and box in native form, every scribbled
  voxel so far, and this round's `Interaction` as the robot produced it; `previous`: uint8 0/1, the
  prediction the user saw last.
- the mask returned: same shape as the image; bool, or integers 0/1, or floats in [0, 1] (probabilities:
  foreground where >= 0.5, as the harness's own networks are read). Anything else fails the case.

`PluginRefiner` adapts a plug-in to the harness's `Refiner` protocol. Every call of an instance runs on
one worker thread of its own and must return within `interact.timeout_s`; a call that raises, overruns
or returns a bad mask fails that case only (the job records it, naming the target, and goes on with the
next case). Python cannot kill a thread: a stuck call keeps its thread (a daemon thread, so it never holds
up the process's exit) and its instance, and the next case gets a fresh instance,
`Name(**interact.options)` again.
"""

from __future__ import annotations

import contextlib
import importlib
import queue
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from iunet_bench.data.case import Volume
from iunet_bench.interactive.base import CurrentPrediction, Refinement, ScribbleMemory
from iunet_bench.interactive.config import PluginInteract
from simulators.interaction import Click, Interaction, SliceBox


@dataclass(frozen=True)
class Prompts:
    """What a plug-in gets each round. With `interact.accumulate: false`, `clicks`, `box`, `add` and
    `remove` hold this round's prompts only."""

    round: int  # 1..R
    clicks: tuple[Click, ...]  # every click of the case so far, in the order given
    box: SliceBox | None  # the case's box prompt, if the protocol gave one
    add: np.ndarray  # bool z-y-x: every "add" voxel painted so far (scribbles and clicks)
    remove: np.ndarray  # bool: every "remove" voxel so far (a later stroke of the other polarity wins)
    new: Interaction  # this round's interaction exactly as the robot produced it


class PluginError(RuntimeError):
    """A plug-in that raised, overran `interact.timeout_s` or returned a bad mask: fails one case."""


def load_target(target: str) -> type:
    """The class `target` ("package.module:Name") names; ValueError saying what is wrong (the module does
    not import, has no such class, or the class lacks a callable `begin` or `predict`)."""
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raised while importing
        raise ValueError(
            f"{target!r}: module {module_name!r} does not import ({type(exc).__name__}: {exc}); "
            "is its folder on PYTHONPATH?"
        ) from None
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        what = "has no class" if cls is None else f"has {type(cls).__name__}, not a class,"
        raise ValueError(f"{target!r}: module {module_name!r} {what} named {name!r}")
    missing = [m for m in ("begin", "predict") if not callable(getattr(cls, m, None))]
    if missing:
        raise ValueError(
            f"{target!r}: class {name} has no method {' or '.join(missing)} (a plug-in needs "
            "begin(image, spacing, initial) and predict(prompts, previous))"
        )
    return cls


def check_mask(out: Any, shape: tuple[int, ...], target: str) -> np.ndarray:
    """A plug-in's output as a uint8 0/1 mask; PluginError naming `target` when it is not a mask of `shape`
    (bool, integers 0/1, or finite floats in [0, 1], thresholded at 0.5)."""
    bad = f"plug-in {target}: predict returned"
    if not isinstance(out, np.ndarray):
        raise PluginError(f"{bad} {type(out).__name__}, expected a numpy array of shape {shape}")
    if out.shape != tuple(shape):
        raise PluginError(f"{bad} shape {out.shape}, expected the image's {tuple(shape)}")
    if out.dtype == bool:
        return out.astype(np.uint8)
    if out.dtype.kind in "iu":
        if out.size and (out.min() < 0 or out.max() > 1):
            raise PluginError(f"{bad} integer values {np.unique(out)[:5].tolist()}, expected 0 and 1")
        return out.astype(np.uint8)
    if out.dtype.kind == "f":
        if not np.isfinite(out).all():
            raise PluginError(f"{bad} {int((~np.isfinite(out)).sum())} non-finite values (nan or inf)")
        if out.size and (out.min() < 0 or out.max() > 1):
            raise PluginError(
                f"{bad} values in [{out.min():.3g}, {out.max():.3g}], expected probabilities in [0, 1]"
            )
        return (out >= 0.5).astype(np.uint8)
    raise PluginError(f"{bad} dtype {out.dtype}, expected bool, integer 0/1 or float probabilities")


class _Worker:
    """One daemon thread that makes every call of one plug-in instance, in order: a plug-in sees one thread
    throughout, as libraries with per-thread state (PyTorch's grad mode, a CUDA context) expect."""

    def __init__(self, target: str, timeout_s: float):
        self.target, self.timeout_s = target, timeout_s
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=f"plug-in {target}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            fn, args, answer, done = self.calls.get()
            try:
                answer.append((True, fn(*args)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, named there
                answer.append((False, exc))
            done.set()

    def call(self, fn, args: tuple, what: str):
        """`fn(*args)` on the worker's thread: its result; PluginError naming the target when it raised;
        TimeoutError when it did not return within `timeout_s` (the thread is then left running it: Python
        cannot stop a thread)."""
        answer: list = []
        done = threading.Event()
        self.calls.put((fn, args, answer, done))
        done.wait(self.timeout_s)
        if not answer:
            raise TimeoutError(
                f"plug-in {self.target}: {what} did not return within interact.timeout_s={self.timeout_s:g} s "
                "(its thread is left running: Python cannot stop a thread; the next case gets a new instance)"
            )
        ok, value = answer[0]
        if not ok:
            raise PluginError(
                f"plug-in {self.target}: {what} raised {type(value).__name__}: {value}"
            ) from value
        return value


class PluginRefiner(CurrentPrediction):
    """A plug-in (see the module docstring) as a `Refiner`: `start` -> `begin`, `refine` -> `predict` with
    the case's prompts so far, its output checked (`check_mask`)."""

    def __init__(self, cfg: PluginInteract):
        self.cfg = cfg
        self.name = f"plugin {cfg.target}"
        self.cls = load_target(cfg.target)
        self.plugin = self.worker = None
        self.open = False  # a case begun and not ended

    def _run(self, what: str, fn, *args):
        try:
            return self.worker.call(fn, args, what)
        except TimeoutError:
            self.plugin = self.worker = None  # its thread may still use them: never again
            self.open = False
            raise

    def start(self, volume: Volume, initial_prediction: np.ndarray) -> None:
        with contextlib.suppress(PluginError, TimeoutError):
            self.finish()  # a case that failed before its session ended (its failure is already recorded)
        if self.plugin is None:
            self.worker = _Worker(self.cfg.target, self.cfg.timeout_s)
            self.plugin = self._run("__init__", lambda: self.cls(**self.cfg.options))
        self.shape = volume.image.shape
        self.prediction = initial_prediction.astype(np.uint8)
        self.memory = ScribbleMemory(self.shape, self.cfg.accumulate)
        self.clicks: list[Click] = []
        self.box: SliceBox | None = None
        self.round = 0
        initial = None if self.cfg.initial == "none" else self.prediction.copy()
        self.open = True
        self._run(
            "begin", self.plugin.begin, volume.image.copy(), tuple(float(s) for s in volume.spacing), initial
        )

    def refine(self, interaction: Interaction) -> Refinement:
        self.round += 1
        so_far = self.memory.update(interaction)
        if self.cfg.accumulate:
            self.clicks += interaction.clicks
            self.box = interaction.box if interaction.box is not None else self.box
        else:
            self.clicks, self.box = list(interaction.clicks), interaction.box
        prompts = Prompts(
            self.round, tuple(self.clicks), self.box, so_far.add.copy(), so_far.remove.copy(), interaction
        )
        out = self._run("predict", self.plugin.predict, prompts, self.prediction.copy())
        self.prediction = check_mask(out, self.shape, self.cfg.target)
        return Refinement(self.prediction)

    def finish(self) -> None:
        """The plug-in's `end`, if it has one, once per case begun (the session calls this after its last
        round; `start` calls it for a case that failed before)."""
        was_open, self.open = self.open, False
        if was_open and self.plugin is not None and callable(getattr(self.plugin, "end", None)):
            self._run("end", self.plugin.end)
