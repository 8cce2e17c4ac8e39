"""IPython start-up file of the kernels ci/test-colab.sh runs the reader notebooks in (never in Colab).

A live widget draws its figure when it is built, which nbval checks like any output: a traceback that an
``ipywidgets.Output`` shows (it swallows the exception) still reaches the kernel's iopub channel as an
``error`` message, and nbval fails the cell on it. What nbval cannot do is move a control. So here every
:func:`transformer18.widgets.interactive` moves each of its controls once, as a reader would (a slider to
its ends, a choice to its first and last options, a checkbox to the other state, a text box to its
placeholder): every redraw path runs in the kernel, and one that breaks fails its cell.

Set T18_MOVE_CONTROLS=0 to leave the controls where they start.
"""

import os


def _moves(control):
    """The values a reader would try, other than the control's current one."""
    import ipywidgets as W

    if isinstance(control, W.Checkbox):
        return [("value", not control.value)]
    if isinstance(control, (W.IntSlider, W.FloatSlider)):
        return [("value", v) for v in dict.fromkeys((control.max, control.min)) if v != control.value]
    if isinstance(control, (W.SelectionSlider, W.Dropdown)):
        last = len(control.options) - 1
        return [("index", i) for i in dict.fromkeys((last, 0)) if i != control.index]
    if isinstance(control, W.Text):
        return [("value", control.placeholder)] if control.placeholder not in ("", control.value) else []
    raise TypeError(f"no moves for a {type(control).__name__}")


if os.environ.get("T18_MOVE_CONTROLS", "1") != "0":
    from transformer18 import widgets as _widgets

    _build_interactive = _widgets.build_interactive

    def _build_and_move(plot_fn, **controls):
        box = _build_interactive(plot_fn, **controls)
        for control in box.children[0].children:
            for name, value in _moves(control):
                setattr(control, name, value)  # the redraw runs now; its traceback fails the cell
        return box

    _widgets.build_interactive = _build_and_move
