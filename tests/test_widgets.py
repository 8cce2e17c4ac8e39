import base64
import re
import sys
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


ALT = "A straight line rising from the origin, n points long."


def shown_png(state) -> bytes:
    """The PNG bytes an HTML state widget shows (its <img>'s data URI)."""
    match = re.fullmatch(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]+" style="max-width:100%">',
                         state.value)
    assert match, state.value[:120]
    return base64.b64decode(match[1])


def test_precomputed_slider_links_a_slider_to_a_stack_of_images_with_alt_text():
    box = widgets.build_precomputed_slider(states(), description="n", value=3, alt=ALT)
    slider, stack = box.children
    assert isinstance(stack, W.Stack) and len(stack.children) == 3
    assert all(isinstance(im, W.HTML) and shown_png(im).startswith(PNG_MAGIC) for im in stack.children)
    assert slider.index == stack.selected_index == 1
    link = box.t18_link
    assert type(link).__name__ == "Link"  # jslink: runs in the browser, no kernel needed
    assert link.source == (slider, "index") and link.target == (stack, "selected_index")
    assert box.t18_start_png == shown_png(stack.children[1])
    assert "t18-precomputed-slider" in box._dom_classes  # what the browser tests find the sliders by
    alts = [re.search(r'alt="([^"]+)"', im.value)[1] for im in stack.children]
    assert alts == [f"{ALT} Shown: n = {n}." for n in (2, 3, 4)]  # every state says which it is


def test_alt_text_is_escaped_for_html():
    box = widgets.build_precomputed_slider(states(2), description='"d" <k>', alt='Weights of "query" <q> & keys.')
    value = box.children[1].children[0].value
    assert 'alt="Weights of &quot;query&quot; &lt;q&gt; &amp; keys. Shown: &quot;d&quot; &lt;k&gt; = 2."' in value


@pytest.mark.parametrize("alt", ["", "a plot", None, ["five", "words", "in", "a", "list"]])
def test_precomputed_slider_needs_alt_text_in_words(alt, displayed):
    with pytest.raises(ValueError, match="alt must say in words"):
        widgets.build_precomputed_slider(states(), alt=alt)
    with pytest.raises(ValueError, match="alt must say in words"):
        widgets.precomputed_slider(states(), alt=alt)
    with pytest.raises(TypeError):
        widgets.precomputed_slider(states())  # keyword-only and required: no slider without alt text


def test_precomputed_slider_display_carries_a_static_png(displayed):
    widgets.precomputed_slider(states(), description="n", alt=ALT)
    (bundle, kwargs), = displayed
    assert kwargs == {"raw": True}
    assert "application/vnd.jupyter.widget-view+json" in bundle and "image/png" in bundle


def test_precomputed_slider_without_ipywidgets_shows_the_start_with_alt_text(monkeypatch, displayed):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets raises ImportError
    widgets.precomputed_slider(states(), description="n", value=3, alt=ALT)
    (bundle, kwargs), = displayed
    assert kwargs == {"raw": True} and set(bundle) == {"image/png", "text/html"}
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    assert f'alt="{ALT} Shown: n = 3."' in bundle["text/html"]


def test_precomputed_slider_accepts_png_bytes():
    pngs = {k: viz.figure_to_png(f) for k, f in states(2).items()}
    box = widgets.build_precomputed_slider(pngs, alt=ALT)
    assert [shown_png(im) for im in box.children[1].children] == list(pngs.values())


def test_precomputed_slider_falls_back_to_a_tab_on_ipywidgets_7(monkeypatch):
    fake = types.SimpleNamespace(**{name: getattr(W, name) for name in dir(W) if name != "Stack"})
    monkeypatch.setitem(sys.modules, "ipywidgets", fake)
    box = widgets.build_precomputed_slider(states(), value=4, alt=ALT)
    slider, panel = box.children
    assert isinstance(panel, W.Tab) and panel.selected_index == 2
    assert panel.get_title(2) == "4"
    assert box.t18_link.target == (panel, "selected_index")
    assert all(isinstance(im, W.HTML) and 'alt="' in im.value for im in panel.children)


@pytest.mark.parametrize("bad, message", [({1: None, 2: None}, "Figure or PNG"), ({1: b"x", 2: b"y"}, "PNG"),
                                          ({}, "at least two")])
def test_precomputed_slider_rejects_bad_states(bad, message):
    with pytest.raises(ValueError, match=message):
        widgets.build_precomputed_slider(bad, alt=ALT)


def test_precomputed_slider_rejects_an_unknown_start():
    with pytest.raises(ValueError, match="not one of the states"):
        widgets.build_precomputed_slider(states(), value=99, alt=ALT)
