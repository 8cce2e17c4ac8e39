"""Widgets that work for every reader: live in a kernel, static or kernel-free in the published book.

Two kinds (DESIGN §4):

* :func:`interactive` — sliders wired to a plotting function. In a live kernel (Colab, Jupyter) they
  redraw the figure. While the book is built (``T18_BOOK_BUILD=1``) or without a kernel, it shows the
  figure at the default values and a one-line note, so no stale slider is ever published.
* :func:`precomputed_slider` — a slider over a few pre-rendered states. The states switch in the
  browser with ``jslink`` and no kernel, so it works in the published HTML page. It uses
  ``ipywidgets.Stack`` (ipywidgets 8) and falls back to a ``Tab`` where only ipywidgets 7 exists. Each
  state is an ``<img>`` with alt text in an ``HTML`` widget (``ipywidgets.Image`` has no alt).
"""

from __future__ import annotations

import base64
import html
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.figure import Figure

from .notebook import building_book
from .viz import figure_to_png, show

__all__ = ["Slider", "Choice", "Toggle", "Text", "interactive", "build_interactive", "precomputed_slider",
           "build_precomputed_slider", "live_kernel"]


@dataclass(frozen=True)
class Slider:
    """A numeric slider from ``min`` to ``max`` in steps of ``step``, starting at ``value``."""

    min: float
    max: float
    step: float = 1
    value: float | None = None

    def __post_init__(self):
        if not self.min < self.max:
            raise ValueError(f"Slider needs min < max, got min={self.min}, max={self.max}")
        if self.value is not None and not self.min <= self.value <= self.max:
            raise ValueError(f"Slider value {self.value} lies outside [{self.min}, {self.max}]")

    @property
    def default(self):
        return self.min if self.value is None else self.value

    def widget(self, name: str):
        import ipywidgets as W

        ints = all(float(v).is_integer() for v in (self.min, self.max, self.step, self.default))
        cls = W.IntSlider if ints else W.FloatSlider
        cast = int if ints else float
        return cls(min=cast(self.min), max=cast(self.max), step=cast(self.step), value=cast(self.default),
                   description=name, continuous_update=False)


@dataclass(frozen=True)
class Choice:
    """One of a few ``options`` (shown as a selection slider when ``slider`` is true, else a dropdown)."""

    options: Sequence[Any]
    value: Any = None
    slider: bool = True

    def __post_init__(self):
        if len(self.options) == 0:
            raise ValueError("Choice needs at least one option")
        if self.value is not None and self.value not in self.options:
            raise ValueError(f"Choice value {self.value!r} is not one of {list(self.options)!r}")

    @property
    def default(self):
        return self.options[0] if self.value is None else self.value

    def widget(self, name: str):
        import ipywidgets as W

        cls = W.SelectionSlider if self.slider else W.Dropdown
        return cls(options=list(self.options), value=self.default, description=name,
                   **({"continuous_update": False} if self.slider else {}))


@dataclass(frozen=True)
class Toggle:
    """A checkbox."""

    value: bool = False

    @property
    def default(self) -> bool:
        return self.value

    def widget(self, name: str):
        import ipywidgets as W

        return W.Checkbox(value=self.value, description=name)


@dataclass(frozen=True)
class Text:
    """A one-line text box starting at ``value``; the figure redraws when the reader presses Enter."""

    value: str = ""
    placeholder: str = ""

    def __post_init__(self):
        if not isinstance(self.value, str) or not isinstance(self.placeholder, str):
            raise ValueError("Text needs a str value and placeholder")

    @property
    def default(self) -> str:
        return self.value

    def widget(self, name: str):
        import ipywidgets as W

        return W.Text(value=self.value, placeholder=self.placeholder, description=name, continuous_update=False,
                      layout=W.Layout(width="28em"))


Control = Slider | Choice | Toggle | Text


def live_kernel() -> bool:
    """True in a running Jupyter kernel with ipywidgets, outside the book build."""
    if building_book():
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _note(controls: Mapping[str, Control]) -> str:
    at = ", ".join(f"{name} = {c.default}" for name, c in controls.items())
    names = ", ".join(controls)
    kind = "text box" if all(isinstance(c, Text) for c in controls.values()) else "sliders"
    return (f"*Static figure at {at}. The {kind} ({names}) {'works' if kind == 'text box' else 'move'} when you "
            "run this notebook in Colab or Jupyter.*")


def _validate(plot_fn: Callable[..., Figure], controls: Mapping[str, Control]) -> None:
    if not controls:
        raise ValueError("interactive needs at least one control")
    for name, control in controls.items():
        if not isinstance(control, (Slider, Choice, Toggle, Text)):
            raise ValueError(f"control {name!r} must be a Slider, Choice, Toggle or Text, got {type(control).__name__}")
    try:  # a live kernel would only show the TypeError inside the widget's output, on the first redraw
        inspect.signature(plot_fn).bind(**controls)
    except TypeError as error:
        raise ValueError(f"{getattr(plot_fn, '__name__', 'plot_fn')} cannot take the controls "
                         f"{', '.join(controls)} as keyword arguments: {error}") from None


def build_interactive(plot_fn: Callable[..., Figure], **controls: Control):
    """The live widget of :func:`interactive` (a ``VBox`` of controls above the redrawn figure)."""
    _validate(plot_fn, controls)
    import ipywidgets as W

    inputs = {name: c.widget(name) for name, c in controls.items()}
    out = W.interactive_output(lambda **values: show(plot_fn(**values)), inputs)
    return W.VBox([W.HBox(list(inputs.values()), layout=W.Layout(flex_flow="row wrap")), out])


def interactive(plot_fn: Callable[..., Figure], **controls: Control) -> None:
    """Show ``plot_fn(**values) -> Figure`` with one widget per control.

    In a live kernel the controls redraw the figure. While the book is built, or with no kernel, it
    shows the figure at the controls' defaults and a note saying where the sliders live.
    """
    _validate(plot_fn, controls)
    from IPython.display import Markdown, display

    if live_kernel():
        display(build_interactive(plot_fn, **controls))
    else:
        show(plot_fn(**{name: c.default for name, c in controls.items()}))
        display(Markdown(_note(controls)))


def _png(state: Figure | bytes, dpi: int) -> bytes:
    if isinstance(state, Figure):
        return figure_to_png(state, dpi=dpi)
    if isinstance(state, (bytes, bytearray)) and bytes(state[:8]) == b"\x89PNG\r\n\x1a\n":
        return bytes(state)
    raise ValueError(f"a state must be a matplotlib Figure or PNG bytes, got {type(state).__name__}")


def _states(states: Mapping[Any, Figure | bytes], value: Any, dpi: int) -> tuple[list, list[bytes], int]:
    labels = list(states)
    if len(labels) < 2:
        raise ValueError("precomputed_slider needs at least two states")
    if value is not None and value not in states:
        raise ValueError(f"value {value!r} is not one of the states {labels!r}")
    start = labels.index(value) if value is not None else 0
    return labels, [_png(states[label], dpi) for label in labels], start


def _state_alt(alt: str, description: str, label: Any) -> str:
    """One state's alt text: what every state shows, then which state this is."""
    return f"{alt.rstrip()} Shown: {description or 'state'} = {label}."


def _img(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` as a data URI, with its alt text (a widget ``Image`` has no alt)."""
    data = base64.b64encode(png).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}" style="max-width:100%">'


def _check_alt(alt: Any) -> None:
    if not isinstance(alt, str) or len(alt.split()) < 5:
        raise ValueError(f"alt must say in words (five or more) what every state's figure shows, got {alt!r}")


def build_precomputed_slider(states: Mapping[Any, Figure | bytes], description: str = "", value: Any = None,
                             dpi: int = 80, *, alt: str):
    """The widget of :func:`precomputed_slider`: a ``VBox`` of a ``SelectionSlider`` and a ``Stack``.

    Each state is an ``HTML`` widget holding an ``<img>`` with alt text (``alt`` plus the state's label),
    so a screen reader can say what every state shows; ``ipywidgets.Image`` has no alt attribute.
    """
    _check_alt(alt)
    labels, pngs, start = _states(states, value, dpi)
    import ipywidgets as W

    images = [W.HTML(value=_img(png, _state_alt(alt, description, label))) for label, png in zip(labels, pngs)]
    if hasattr(W, "Stack"):  # ipywidgets >= 8
        panel = W.Stack(images, selected_index=start)
    else:  # ipywidgets 7 (some Colab runtimes): a Tab also has a selected_index to link to
        panel = W.Tab(children=images)
        for i, label in enumerate(labels):
            panel.set_title(i, str(label))
        panel.selected_index = start
    slider = W.SelectionSlider(options=[(str(label), i) for i, label in enumerate(labels)], value=start,
                               description=description, continuous_update=True,
                               style={"description_width": "initial"}, layout=W.Layout(width="28em"))
    link = W.jslink((slider, "index"), (panel, "selected_index"))
    box = W.VBox([slider, panel])
    box.add_class("t18-precomputed-slider")  # what the browser tests look for
    box.t18_link, box.t18_start_png = link, pngs[start]  # keep the link alive; the static fallback
    return box


def precomputed_slider(states: Mapping[Any, Figure | bytes], description: str = "", value: Any = None,
                       dpi: int = 80, *, alt: str) -> None:
    """Show a slider over pre-rendered ``states`` (label -> Figure or PNG) that needs no kernel to move.

    The slider's ``index`` is linked in the browser (``jslink``) to the ``selected_index`` of a
    ``Stack`` of images, so the published page switches states by itself. ``alt`` says in words what
    every state's figure shows (the figures differ, so not one state's numbers); each image's alt text is
    ``alt`` followed by its state's label. The display also carries the starting state as a plain PNG
    for viewers without a widget manager; without ipywidgets only that image is shown, with its alt
    text in an HTML version beside the PNG.
    """
    from IPython.display import display

    _check_alt(alt)
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        labels, pngs, start = _states(states, value, dpi)
        display({"image/png": base64.b64encode(pngs[start]).decode("ascii"),
                 "text/html": _img(pngs[start], _state_alt(alt, description, labels[start]))}, raw=True)
        return
    box = build_precomputed_slider(states, description, value, dpi, alt=alt)
    if hasattr(box, "_repr_mimebundle_"):  # ipywidgets 8: add the static PNG to the same output
        bundle = dict(box._repr_mimebundle_())
        bundle["image/png"] = base64.b64encode(box.t18_start_png).decode("ascii")
        display(bundle, raw=True)
    else:  # pragma: no cover - ipywidgets 7 widgets display themselves
        display(box)
