"""A picture of one round, like figure 2 of the paper: CT slice, reference contour, prediction, scribbles.

Colours: reference = green contour; prediction = translucent red with a red contour; "add" scribbles =
yellow; "remove" scribbles = blue. Uses matplotlib's object API with the Agg canvas (no pyplot, no
global figure state), so it is safe in headless and parallel jobs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulators.interaction import Interaction

ADD_RGBA = (1.0, 0.9, 0.0, 1.0)
REMOVE_RGBA = (0.1, 0.45, 1.0, 1.0)
PREDICTION_RGBA = (1.0, 0.15, 0.1, 0.35)


def pick_slice(reference: np.ndarray, prediction: np.ndarray, interaction: Interaction | None) -> int:
    """The axial slice with the most scribble voxels; without scribbles the one with the most error;
    without error the one with the most reference (ties: the lowest index)."""
    for mask in (
        None if interaction is None else interaction.scribbles,
        reference.astype(bool) ^ prediction.astype(bool),
        reference.astype(bool),
    ):
        if mask is not None and mask.any():
            return int(np.argmax(mask.sum(axis=(1, 2))))
    return reference.shape[0] // 2


def _overlay(mask: np.ndarray, rgba: tuple[float, float, float, float]) -> np.ndarray:
    out = np.zeros((*mask.shape, 4))
    out[mask] = rgba
    return out


def save_round_png(
    path,
    image: np.ndarray,
    reference: np.ndarray,
    prediction: np.ndarray,
    interaction: Interaction | None,
    z: int | None = None,
    title: str = "",
) -> int:
    """Save the axial slice `z` (None = `pick_slice`) of one round as a PNG at `path`; returns z.

    `image` is the CT on the model grid (any range; shown with its 1st-99th percentile window),
    `reference` and `prediction` 0/1 masks, `interaction` the round's scribbles (None for round 0).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    reference, prediction = np.asarray(reference).astype(bool), np.asarray(prediction).astype(bool)
    if z is None:
        z = pick_slice(reference, prediction, interaction)
    if not 0 <= z < image.shape[0]:
        raise ValueError(f"save_round_png: slice z={z} is outside 0..{image.shape[0] - 1}")
    fig = Figure(figsize=(4.2, 4.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    lo, hi = np.percentile(image, [1, 99]) if image.size else (0.0, 1.0)
    ax.imshow(image[z], cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
    ax.imshow(_overlay(prediction[z], PREDICTION_RGBA), interpolation="nearest")
    for mask, colour in ((prediction[z], PREDICTION_RGBA[:3]), (reference[z], (0.1, 0.85, 0.2))):
        if mask.any() and not mask.all():
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)
    if interaction is not None:
        ax.imshow(_overlay(interaction.add[z], ADD_RGBA), interpolation="nearest")
        ax.imshow(_overlay(interaction.remove[z], REMOVE_RGBA), interpolation="nearest")
    ax.set_axis_off()
    ax.legend(
        handles=[
            Line2D([], [], color=(0.1, 0.85, 0.2), label="reference"),
            Patch(color=PREDICTION_RGBA, label="prediction"),
            Patch(color=ADD_RGBA, label="add"),
            Patch(color=REMOVE_RGBA, label="remove"),
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=4,
        fontsize=7,
        frameon=False,
    )
    if interaction is not None:
        e = interaction.effort
        title = f"{title}\n" if title else ""
        title += f"z={z}  strokes {e.strokes}  clicks {e.clicks}  {e.length_mm:.0f} mm  ~{e.seconds:.0f} s"
    else:
        title = f"{title}  z={z}".strip()
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return z
