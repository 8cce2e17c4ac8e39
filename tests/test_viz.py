import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from transformer18 import viz

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_line_plot_draws_one_line_per_series():
    fig = viz.line_plot([1, 2, 4], {"a": [1, 2, 3], "b": [3, 2, 1]}, logx=True, logy=True, title="t")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_title() == "t"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]


def test_bar_plot_groups_bars():
    fig = viz.bar_plot(["x", "y", "z"], {"a": [1, 2, 3], "b": [4, 5, 6]})
    assert len(fig.axes[0].patches) == 6


def test_stacked_bar_plot_stacks_parts():
    fig = viz.stacked_bar_plot(["x", "y"], {"p": [1, 2], "q": [3, 4]})
    tops = sorted(round(p.get_y() + p.get_height(), 6) for p in fig.axes[0].patches)
    assert tops == [1, 2, 4, 6]


def test_heatmap_accepts_tensors_and_arrays():
    fig = viz.heatmap(torch.eye(3), x_labels=list("abc"), y_labels=list("abc"))
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), np.eye(3))
    assert isinstance(viz.heatmap(np.ones((2, 5)), colorbar=False), Figure)


@pytest.mark.parametrize(
    "call",
    [
        lambda: viz.line_plot([1, 2], {"a": [1]}),
        lambda: viz.bar_plot(["x"], {"a": [1, 2]}),
        lambda: viz.stacked_bar_plot(["x", "y"], {"a": [1]}),
        lambda: viz.heatmap(torch.ones(2, 2, 2)),
    ],
)
def test_mismatched_data_is_a_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_figure_to_png_and_show(displayed):
    fig = viz.line_plot([0, 1], {"a": [0, 1]})
    assert viz.figure_to_png(fig).startswith(PNG_MAGIC)
    viz.show(fig)
    (image, _), = displayed
    assert image.data.startswith(PNG_MAGIC)


def test_chinese_characters_render_without_missing_glyphs():
    """The capstone's zh_CN dates and the chapters' subscripts: every character has a glyph (DejaVu Sans, then
    IPAex Gothic); importing matplotlib_fontja alone sets IPAex Gothic, which has no ₁₀ or ᵀ."""
    import warnings

    fig = Figure()
    fig.add_subplot().set_title("2026年11月21日星期六 · 21 ноября 2026 г. · sábado · log₁₀ · QKᵀ · x₁ · ␣")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing from font")
        assert viz.figure_to_png(fig).startswith(b"\x89PNG")
