"""Pure plotting functions: each takes data and returns a matplotlib ``Figure`` (nothing is shown).

Chapters compose these; widgets render them (live in a kernel, as static images in the book).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib_fontja
from matplotlib import font_manager
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["line_plot", "bar_plot", "stacked_bar_plot", "heatmap", "figure_to_png", "show"]

# DejaVu Sans (matplotlib's default) has Latin, Greek and Cyrillic but no Chinese characters; the capstone
# writes dates in Chinese. Register IPAex Gothic (shipped by matplotlib-fontja, so it is there on every
# machine and in Colab) as the fallback for glyphs DejaVu lacks; DejaVu stays the font of everything else.
font_manager.fontManager.addfont(str(Path(matplotlib_fontja.__file__).parent / "fonts" / "ipaexg.ttf"))
matplotlib.rcParams["font.sans-serif"] = ["DejaVu Sans", "IPAexGothic"] + [
    name for name in matplotlib.rcParams["font.sans-serif"] if name not in ("DejaVu Sans", "IPAexGothic")
]
matplotlib.rcParams["font.family"] = ["DejaVu Sans", "IPAexGothic"]  # importing matplotlib_fontja had set
# IPAexGothic alone, which lacks subscripts and superscripts (log₁₀, Qᵀ); with two families matplotlib draws each
# glyph from the first that has it

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _new(figsize=(6.4, 3.6)) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _finish(fig: Figure, ax: Axes, *, logy: bool, legend: bool, **labels: str) -> Figure:
    """The common last steps of a plot: a log y axis if asked, the labels and title, a frameless legend."""
    if logy:
        ax.set_yscale("log")
    ax.set(**labels)
    if legend:
        ax.legend(frameon=False)
    return fig


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    logx: bool = False,
    logy: bool = False,
    markers: bool = True,
    figsize=(6.4, 3.6),
) -> Figure:
    """One line per entry of ``series`` (label -> y values), all over the same ``x``."""
    fig, ax = _new(figsize)
    for i, (label, y) in enumerate(series.items()):
        if len(y) != len(x):
            raise ValueError(f"series {label!r} has {len(y)} values for {len(x)} x positions")
        ax.plot(x, y, marker="o" if markers else None, ms=4, label=label, color=PALETTE[i % len(PALETTE)])
    if logx:
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(x), [f"{v:g}" for v in x])
        ax.minorticks_off()
    ax.grid(True, alpha=0.3)
    return _finish(fig, ax, logy=logy, legend=len(series) > 1, xlabel=xlabel, ylabel=ylabel, title=title)


def bar_plot(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    ylabel: str = "",
    title: str = "",
    logy: bool = False,
    annotate: bool = True,
    figsize=(6.4, 3.6),
) -> Figure:
    """Grouped bars: one group per entry of ``groups``, one bar per entry of ``series`` in each group."""
    fig, ax = _new(figsize)
    n = len(series)
    width = 0.8 / max(n, 1)
    for i, (label, values) in enumerate(series.items()):
        if len(values) != len(groups):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(groups)} groups")
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, values, width, label=label, color=PALETTE[i % len(PALETTE)])
        if annotate:
            ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8, padding=2)
    ax.set_xticks(range(len(groups)), groups)
    ax.margins(y=0.15)
    return _finish(fig, ax, logy=logy, legend=n > 1, ylabel=ylabel, title=title)


def stacked_bar_plot(
    groups: Sequence[str],
    parts: Mapping[str, Sequence[float]],
    *,
    ylabel: str = "",
    title: str = "",
    totals_fmt: str = "{:,.0f}",
    figsize=(6.4, 3.6),
) -> Figure:
    """Stacked bars: each group's bar is split into ``parts`` (label -> one value per group)."""
    fig, ax = _new(figsize)
    bottoms = [0.0] * len(groups)
    for i, (label, values) in enumerate(parts.items()):
        if len(values) != len(groups):
            raise ValueError(f"part {label!r} has {len(values)} values for {len(groups)} groups")
        ax.bar(range(len(groups)), values, 0.6, bottom=bottoms, label=label, color=PALETTE[i % len(PALETTE)])
        bottoms = [b + v for b, v in zip(bottoms, values)]
    for g, total in enumerate(bottoms):
        ax.annotate(totals_fmt.format(total), (g, total), ha="center", va="bottom", fontsize=8,
                    xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(groups)), groups)
    ax.set(ylabel=ylabel, title=title)
    ax.margins(y=0.12)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def heatmap(
    matrix,
    *,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str = "",
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
    figsize=(4.8, 4.0),
) -> Figure:
    """A 2-D array (rows = y, columns = x) as an image with optional tick labels and a colour bar."""
    import numpy as np

    data = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {tuple(data.shape)}")
    fig, ax = _new(figsize)
    im = ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    if x_labels is not None:
        ax.set_xticks(range(len(x_labels)), x_labels, rotation=90 if len(x_labels) > 12 else 0)
    if y_labels is not None:
        ax.set_yticks(range(len(y_labels)), y_labels)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if colorbar:
        fig.colorbar(im, ax=ax, shrink=0.85)
    return fig


def figure_to_png(fig: Figure, dpi: int = 90) -> bytes:
    """Render a figure to PNG bytes (used for static figures and precomputed widget states)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def show(fig: Figure, dpi: int = 90) -> None:
    """Display a figure as a PNG in a notebook (works without pyplot's inline backend)."""
    from IPython.display import Image, display

    display(Image(figure_to_png(fig, dpi=dpi)))
