"""A CVPR 2025 challenge submission as a plug-in (`interact=cvpr25_container`): the challenge's `.npz` in,
a command run, `segs` out.

Where the format comes from: the challenge's evaluator, `CVPR25_iter_eval.py`, and its README and
`get_boxes.py` (github.com/JunMa11/CVPR-MedSegFMCompetition, read at commit 748e862), and the data set's
card (huggingface.co/datasets/junma/CVPR-BiomedSegFM). Written here from that reading, no code copied.
Each run the evaluator puts one case, `inputs/<case>.npz`, in a folder mounted at `/workspace/inputs`,
runs the submission (`docker container run ... -v $PWD/inputs/:/workspace/inputs/ -v
$PWD/outputs/:/workspace/outputs/ team:latest /bin/bash -c "sh predict.sh"`) and reads
`outputs/<case>.npz`. What the input holds, and what this module writes:

- `imgs`: uint8 (D, H, W) = z-y-x, intensities 0..255 (the CT window or MR percentiles, min-max scaled).
  The harness's image is already windowed/clipped linearly to [-1, 1], so it is mapped linearly to 0..255.
- `spacing`: three floats; the evaluator hands it unchanged to its surface-distance code together with
  the (D, H, W) arrays, i.e. in array order (z, y, x), which is what is written by default
  (`spacing_order: zyx`). The MedSAM-family preprocessing that makes such files stores SimpleITK's
  (x, y, z): `spacing_order: xyz` writes that order for a submission that expects it.
- `boxes` (only when the protocol gave a box): a list with one dict per class, `z_min`, `z_max`, `z_mid`,
  `z_mid_x_min`, `z_mid_y_min`, `z_mid_x_max`, `z_mid_y_max`, all ends inclusive, x the column (last axis),
  y the row (`SliceBox.as_challenge_dict`).
- `clicks`: a list with one dict per class, `{'fg': [[z, y, x], ...], 'bg': [...]}`. The evaluator's
  docstring says "[x, y, z]", but its code places each click with `np.argwhere` on the (D, H, W) error
  mask: array order, z first; the README's example (`[46, 336, 343]`) agrees. Written z-y-x.
- `clicks_order`: a list with one list per class of 'fg'/'bg' in the order the clicks were given.
- `prev_pred`: uint8 (D, H, W), the previous prediction with class values.
  `clicks`, `clicks_order` and `prev_pred` are absent from the box round (the evaluator's first run), as
  in the challenge; `boxes` stays in every later round.
- output: `segs`, (D, H, W), integer class values (0 background).

The harness runs one structure per session, so each file holds one class, label `class_value` (1 unless
set); the voxels where `segs == class_value` are the prediction.

Differences from the challenge's evaluator (docs/how-to/own-model.md says them too):
- time limit: the README sets 90 s per class for the whole docker run, the evaluator only warns when a
  case's six runs together take over 90 s x classes; here each run is stopped (its process group killed)
  after `timeout_s` x classes and fails the case.
- a run that exits non-zero, overruns, writes no output or an output without a `segs` of the image's
  shape fails the case (the evaluator scores a missing output as an empty mask, and would read the
  previous round's file, which it never deletes; here the output is deleted before each run).
- the robot is the harness's (`simulator=click_cvpr25` is the challenge's rule: the centre of the largest
  error component); its clicks can be jittered or wrong (other simulators), and a perfect prediction stops
  the session instead of adding a `None` to `clicks_order`.
- the volume is the harness's case on its model grid (cropped and resampled as `data` says), not the
  challenge's file.
"""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from iunet_bench.core.runtime import output_dir
from simulators.interaction import ADD, REMOVE, Click, SliceBox

LABELS = {ADD: "fg", REMOVE: "bg"}


class ContainerError(RuntimeError):
    """The command failed, overran, or left no usable `segs`: fails one case."""


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The harness's [-1, 1] image as the challenge's 0..255 uint8 (linear, clipped)."""
    scaled = np.rint((np.clip(image, -1.0, 1.0) + 1.0) * 127.5)
    return scaled.astype(np.uint8)


def challenge_input(
    imgs: np.ndarray,
    spacing: tuple[float, float, float],
    box: SliceBox | None,
    clicks: tuple[Click, ...],
    previous: np.ndarray | None,
    class_value: int = 1,
    spacing_order: str = "zyx",
) -> dict[str, np.ndarray]:
    """The arrays of one case's input file, for one class (see the module docstring). `previous` is the
    prediction so far (0/1) or None in the box round (then no `clicks`, `clicks_order`, `prev_pred`)."""
    out = {
        "imgs": imgs,
        "spacing": np.asarray(spacing if spacing_order == "zyx" else spacing[::-1], np.float64),
    }
    if box is not None:
        out["boxes"] = _objects([{k: int(v) for k, v in box.as_challenge_dict().items()}])
    if previous is not None:
        per_class: dict[str, list[list[int]]] = {"fg": [], "bg": []}
        order = []
        for click in clicks:
            kind = LABELS[click.label]
            per_class[kind].append([int(c) for c in click.zyx])
            order.append(kind)
        out["clicks"] = _objects([per_class])
        out["clicks_order"] = _objects([order])
        out["prev_pred"] = (previous.astype(bool) * np.uint8(class_value)).astype(np.uint8)
    return out


def _objects(items: list) -> np.ndarray:
    """A 1-D object array of `items` (what np.savez makes of a list of dicts or lists, saved pickled)."""
    arr = np.empty(len(items), object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr


def read_segs(path: Path, shape: tuple[int, ...], class_value: int, command: str) -> np.ndarray:
    """The 0/1 mask `segs == class_value` of the output file; ContainerError naming the file and the command
    when it is missing, unreadable, or has no `segs` of `shape`."""
    said = f"command {command!r}"
    if not path.is_file():
        raise ContainerError(f"{said} wrote no {path} (expected the challenge's output, key 'segs')")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "segs" not in f.files:
                raise ContainerError(f"{said}: {path} has no key 'segs' (keys: {sorted(f.files)})")
            segs = f["segs"]
    except ContainerError:
        raise
    except Exception as exc:  # a truncated or non-npz file
        raise ContainerError(f"{said}: {path} is no readable .npz ({type(exc).__name__}: {exc})") from None
    if segs.shape != tuple(shape):
        raise ContainerError(
            f"{said}: {path} 'segs' has shape {segs.shape}, expected the image's {tuple(shape)}"
        )
    if segs.dtype.kind not in "iub":
        raise ContainerError(f"{said}: {path} 'segs' has dtype {segs.dtype}, expected integer class values")
    return (segs == class_value).astype(np.uint8)


class Cvpr25Container:
    """The plug-in: one file per round in `<workdir>/inputs/`, `command` run in `workdir` (so a script
    reading `inputs/` and writing `outputs/`, as a submission's `predict.sh` does in `/workspace`, works
    as is; `{workdir}` in the command is replaced by the folder, for `docker run -v {workdir}/inputs:...`),
    its stdout and stderr appended to `<workdir>/logs/<case>.log`."""

    _serial = itertools.count()

    def __init__(
        self,
        command: str,
        workdir: str | None = None,
        timeout_s: float = 90.0,
        class_value: int = 1,
        spacing_order: str = "zyx",
    ):
        self.workdir = (
            Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="cvpr25_", dir=output_dir()))
        )
        self.command = command.replace("{workdir}", shlex.quote(str(self.workdir.resolve())))
        self.timeout_s, self.class_value, self.spacing_order = timeout_s, class_value, spacing_order
        for sub in ("inputs", "outputs", "logs"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)

    def begin(self, image: np.ndarray, spacing, initial) -> None:
        self.imgs = to_uint8(image)
        self.spacing = tuple(float(s) for s in spacing)
        self.case = f"case{os.getpid()}_{next(self._serial):04d}"
        self.inputs = self.workdir / "inputs" / f"{self.case}.npz"
        self.outputs = self.workdir / "outputs" / f"{self.case}.npz"
        self.log = self.workdir / "logs" / f"{self.case}.log"

    def predict(self, prompts, previous: np.ndarray) -> np.ndarray:
        if not prompts.new.clicks and prompts.new.box is None:
            raise ContainerError(
                f"command {self.command!r}: round {prompts.round} gave no click and no box (scribbles?); the "
                "challenge's file carries only those (use a click robot, e.g. protocol=cvpr25)"
            )
        box_round = not prompts.clicks  # the challenge's first run: the box alone
        arrays = challenge_input(
            self.imgs,
            self.spacing,
            prompts.box,
            prompts.clicks,
            None if box_round else previous,
            self.class_value,
            self.spacing_order,
        )
        for stale in self.workdir.joinpath("inputs").glob("*.npz"):
            stale.unlink()  # one case at a time, as the evaluator gives them (the last one stays, to look at)
        self.outputs.unlink(missing_ok=True)
        np.savez_compressed(self.inputs, **arrays)
        self._run(prompts.round, classes=1)
        return read_segs(self.outputs, self.imgs.shape, self.class_value, self.command)

    def _run(self, round_: int, classes: int) -> None:
        limit = self.timeout_s * classes
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(f"--- round {round_}: {self.command}\n")
            log.flush()
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                self.command,
                shell=True,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout stops the command's children too
            )
            try:
                code = proc.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise ContainerError(
                    f"command {self.command!r} did not finish within {limit:g} s (timeout_s x {classes} "
                    f"class{'es' if classes > 1 else ''}), round {round_}; its output: {self.log}"
                ) from None
            log.write(f"--- exit {code} after {time.perf_counter() - t0:.2f} s\n")
        if code != 0:
            raise ContainerError(
                f"command {self.command!r} exited with status {code} in round {round_} on {self.inputs}; "
                f"its output: {self.log}{_tail(self.log)}"
            )


def _tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").splitlines()
    body = [t for t in text if not t.startswith("--- ")][-lines:]
    return ("; last lines: " + " | ".join(body)) if body else ""
