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


def _figure(width: float = 8, height: float = 4.5, panels: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, [fig.add_subplot(1, panels, i + 1) for i in range(panels)]


def _legend_and_save(fig, ax, path: Path) -> None:
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_band(path: Path, series: dict[str, tuple[list[float], list[float], list[float]]]) -> None:
    """Mean DSC per round with its 95% confidence band: {label: (mean, low, high)} per configuration."""
    from matplotlib.ticker import MaxNLocator

    fig, (ax,) = _figure()
    for i, (label, (mean, low, high)) in enumerate(series.items()):
        x = range(len(mean))
        (line,) = ax.plot(
            x, mean, ls=["-", "--", ":", "-."][i % 4], marker="osD^v<>"[i % 7], ms=4, lw=2, label=label
        )
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="round (0 = baseline)", ylabel="DSC (mean, 95% CI)")
    ax.grid(alpha=0.3)
    _legend_and_save(fig, ax, path)


def plot_effort(path: Path, series: dict[str, tuple[list[float], list[float]]]) -> None:
    """Mean DSC against the user's mean cumulative estimated minutes: {label: (minutes, dsc)} per round."""
    fig, (ax,) = _figure()
    for i, (label, (minutes, dsc)) in enumerate(series.items()):
        ax.plot(
            minutes, dsc, ls=["-", "--", ":", "-."][i % 4], marker="osD^v<>"[i % 7], ms=4, lw=2, label=label
        )
    ax.set(xlabel="user time, estimated minutes (time model: assumptions)", ylabel="DSC (mean)")
    ax.grid(alpha=0.3)
    _legend_and_save(fig, ax, path)


def plot_box(path: Path, finals: dict[str, list[float]], ylabel: str = "final DSC per case") -> None:
    """Box plots of per-case values, one box per configuration, every case as a dot (the paper's figure 4)."""
    import numpy as np

    fig, (ax,) = _figure(max(5.0, 1.2 * len(finals) + 2), 4.5)
    labels = list(finals)
    ax.boxplot([finals[k] for k in labels], showfliers=False)
    for i, k in enumerate(labels, start=1):
        jitter = np.linspace(-0.12, 0.12, len(finals[k])) if len(finals[k]) > 1 else [0.0]
        ax.scatter(np.full(len(finals[k]), i) + jitter, finals[k], s=10, alpha=0.6, color="k", zorder=3)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=20, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_pareto(
    path: Path,
    points: dict[str, tuple[float, float, float]],
    front: set[str],
    xlabels: tuple[str, str] = ("seconds per round (compute)", "user minutes per case (estimated)"),
) -> None:
    """Final DSC against two costs, {label: (cost 1, cost 2, final DSC)}; the Pareto front of each panel's
    cost against final DSC and AUC (`front`) drawn as filled, labelled markers, the others hollow."""
    fig, axes = _figure(11, 4.5, panels=2)
    for panel, ax in enumerate(axes):
        for label, p in points.items():
            on = label in front
            ax.scatter(
                p[panel],
                p[2],
                s=40,
                marker="o",
                facecolors="C3" if on else "none",
                edgecolors="C3" if on else "0.4",
            )
            ax.annotate(label, (p[panel], p[2]), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set(xlabel=xlabels[panel], ylabel="final DSC (mean)")
        ax.grid(alpha=0.3)
    axes[0].set_title("filled: on the Pareto front (cost, final DSC, AUC)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
