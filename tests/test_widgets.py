import types

import ipywidgets as W
import pytest
from IPython.display import Markdown

from transformer18 import viz, widgets

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def plot(n=3, scale=1.0, log=False):
    return viz.line_plot(list(range(n)), {"y": [scale * i for i in range(n)]}, logy=log)


def test_controls_know_their_defaults():
    assert widgets.Slider(1, 9).default == 1
    assert widgets.Slider(1, 9, value=4).default == 4
    assert widgets.Choice([2, 4, 8]).default == 2
    assert widgets.Choice([2, 4, 8], value=8).default == 8
    assert widgets.Toggle(True).default is True


def test_controls_build_the_right_widgets():
    assert isinstance(widgets.Slider(1, 9, value=4).widget("n"), W.IntSlider)
    slider = widgets.Slider(0.5, 2.0, 0.5, value=1.0).widget("scale")
    assert isinstance(slider, W.FloatSlider) and slider.value == 1.0
    assert isinstance(widgets.Choice([1, 2]).widget("h"), W.SelectionSlider)
    assert isinstance(widgets.Choice(["a", "b"], slider=False).widget("k"), W.Dropdown)
    assert isinstance(widgets.Toggle().widget("log"), W.Checkbox)


@pytest.mark.parametrize("make", [lambda: widgets.Slider(5, 1), lambda: widgets.Slider(1, 5, value=9),
                                  lambda: widgets.Choice([]), lambda: widgets.Choice([1, 2], value=3)])
def test_bad_controls_are_value_errors(make):
    with pytest.raises(ValueError):
        make()


def test_text_control_is_a_text_box_with_its_default():
    text = widgets.Text("21 novembre 2026", placeholder="a date")
    assert text.default == "21 novembre 2026"
    box = text.widget("date")
    assert isinstance(box, W.Text) and box.value == "21 novembre 2026" and box.continuous_update is False
    with pytest.raises(ValueError, match="str value"):
        widgets.Text(21)


def test_a_text_box_alone_gets_its_own_note(monkeypatch, displayed):
    monkeypatch.setenv("T18_BOOK_BUILD", "1")
    seen = []
    widgets.interactive(lambda date: seen.append(date) or plot(), date=widgets.Text("2026年11月21日"))
    assert seen == ["2026年11月21日"]
    note = displayed[-1][0].data
    assert "date = 2026年11月21日" in note and "text box (date) works" in note


def test_interactive_publishes_a_static_figure_while_building(monkeypatch, displayed):
    monkeypatch.setenv("T18_BOOK_BUILD", "1")
    assert not widgets.live_kernel()
    widgets.interactive(plot, n=widgets.Slider(2, 10, value=4), log=widgets.Toggle())
    (image, _), (note, _) = displayed
    assert image.data.startswith(PNG_MAGIC)
    assert isinstance(note, Markdown)
    assert "n = 4" in note.data and "log = False" in note.data and "Colab" in note.data


def test_interactive_static_figure_is_drawn_at_the_defaults(monkeypatch, displayed):
    monkeypatch.setenv("T18_BOOK_BUILD", "1")
    seen = []
    widgets.interactive(lambda **kw: seen.append(kw) or plot(), n=widgets.Slider(2, 10, value=7),
                        scale=widgets.Choice([0.5, 2.0], value=2.0))
    assert seen == [{"n": 7, "scale": 2.0}]


def test_interactive_in_a_kernel_builds_live_controls(monkeypatch, displayed):
    monkeypatch.setattr(widgets, "live_kernel", lambda: True)
    widgets.interactive(plot, n=widgets.Slider(2, 10, value=4))
    box, _ = displayed[-1]
    assert isinstance(box, W.VBox)
    assert box.children[0].children[0].value == 4


def test_build_interactive_wires_controls_to_an_output():
    box = widgets.build_interactive(plot, n=widgets.Slider(2, 10, value=4), log=widgets.Toggle())
    controls, output = box.children
    assert [c.description for c in controls.children] == ["n", "log"]
    assert isinstance(output, W.Output)


def test_interactive_rejects_bad_controls():
    with pytest.raises(ValueError, match="at least one control"):
        widgets.interactive(plot)
    with pytest.raises(ValueError, match="Slider, Choice, Toggle or Text"):
        widgets.interactive(plot, n=(1, 10))


def test_interactive_rejects_controls_the_function_does_not_take():
    def plot_text(text):
        return plot(len(text))

    with pytest.raises(ValueError, match="plot_text cannot take the controls date"):
        widgets.interactive(plot_text, date=widgets.Text("21 novembre 2026"))
    with pytest.raises(ValueError, match="cannot take the controls"):
        widgets.build_interactive(plot, n=widgets.Slider(2, 10), typo=widgets.Toggle())


def states(k=3):
    return {n: plot(n) for n in range(2, 2 + k)}


def test_precomputed_slider_links_a_slider_to_a_stack_of_images():
    box = widgets.build_precomputed_slider(states(), description="n", value=3)
    slider, stack = box.children
    assert isinstance(stack, W.Stack) and len(stack.children) == 3
    assert all(isinstance(im, W.Image) and bytes(im.value).startswith(PNG_MAGIC) for im in stack.children)
    assert slider.index == stack.selected_index == 1
    link = box.t18_link
    assert type(link).__name__ == "Link"  # jslink: runs in the browser, no kernel needed
    assert link.source == (slider, "index") and link.target == (stack, "selected_index")
    assert box.t18_start_png == bytes(stack.children[1].value)


def test_precomputed_slider_display_carries_a_static_png(displayed):
    widgets.precomputed_slider(states(), description="n")
    (bundle, kwargs), = displayed
    assert kwargs == {"raw": True}
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle


def test_precomputed_slider_accepts_png_bytes():
    pngs = {k: viz.figure_to_png(f) for k, f in states(2).items()}
    box = widgets.build_precomputed_slider(pngs)
    assert [bytes(im.value) for im in box.children[1].children] == list(pngs.values())


def test_precomputed_slider_falls_back_to_a_tab_on_ipywidgets_7(monkeypatch):
    fake = types.SimpleNamespace(**{name: getattr(W, name) for name in dir(W) if name != "Stack"})
    monkeypatch.setitem(__import__("sys").modules, "ipywidgets", fake)
    box = widgets.build_precomputed_slider(states(), value=4)
    slider, panel = box.children
    assert isinstance(panel, W.Tab) and panel.selected_index == 2
    assert panel.get_title(2) == "4"
    assert box.t18_link.target == (panel, "selected_index")


@pytest.mark.parametrize("bad, message", [({1: None, 2: None}, "Figure or PNG"), ({1: b"x", 2: b"y"}, "PNG"),
                                          ({}, "at least two")])
def test_precomputed_slider_rejects_bad_states(bad, message):
    with pytest.raises(ValueError, match=message):
        widgets.build_precomputed_slider(bad)


def test_precomputed_slider_rejects_an_unknown_start():
    with pytest.raises(ValueError, match="not one of the states"):
        widgets.build_precomputed_slider(states(), value=99)
