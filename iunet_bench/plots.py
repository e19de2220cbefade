"""Curve plots (matplotlib's object API: no pyplot, no global figure state, safe in parallel jobs), drawn by
the job (its run's curves) and the report (a sweep's). Slice pictures of a round are `simulators.render`'s."""

from __future__ import annotations

from pathlib import Path


def plot_curves(
    path: Path,
    series: dict[str, list[float]],
    background: dict[str, list[float]] | None = None,
    ylim: tuple[float, float] | None = None,
) -> None:
    """DSC-per-round curves, one labelled line per series, optional thin grey ones behind (e.g. per case)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for curve in (background or {}).values():
        ax.plot(range(len(curve)), curve, color="0.75", lw=1)
    styles = ["-", "--", ":", "-."]
    for i, (label, curve) in enumerate(series.items()):  # styles and markers keep overlapping curves visible
        ax.plot(range(len(curve)), curve, ls=styles[i % 4], marker="osD^v<>"[i % 7], ms=4, lw=2, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round (0 = baseline)")
    ax.set_ylabel("DSC")
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
