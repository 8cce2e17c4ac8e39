"""The capstone's date translator, trained once and shipped inside the package (``data/date_translator.pt``),
so that the chapters before the capstone can show attention trained on real data. Nothing is downloaded.

Hand-written support module (like ``viz``): it loads what ``ci/pretrained.py`` trained with the capstone's
``train_date_translator`` and draws its attention maps.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from matplotlib.figure import Figure

from .date_translator import DateTranslator

CHECKPOINT = "date_translator.pt"  # in the package's data folder; written by `python ci/pretrained.py`


def checkpoint_path() -> Path:
    """Where the installed package keeps the trained translator."""
    return Path(str(resources.files("transformer18") / "data" / CHECKPOINT))


def date_translator() -> DateTranslator:
    """The capstone's date translator, trained once: ``train_date_translator(seed=0)`` with its defaults (the
    course's ``Transformer`` on the explicit path, Q17's recipe, stopped at 99.5% validation exact match), by
    ``ci/pretrained.py``. Loaded from the package with ``torch.load(weights_only=True)``; nothing is downloaded."""
    return DateTranslator.load(checkpoint_path())


def _shown(chars) -> list[str]:
    return ["␣" if c in " \u202f\u00a0" else c for c in chars]


def plot_attention(maps: dict, text: str, kind: str = "cross", layer: int = -1, head: int | None = None,
                   ax=None, title: str | None = None) -> Figure:
    """One attention map of :meth:`DateTranslator.attention_maps` as a labelled grid: ``kind`` is ``"cross"``,
    ``"encoder"`` or ``"decoder"``; ``head=None`` averages the heads. Rows are the positions that attend,
    columns the positions they read; white 0, black 1."""
    if kind not in ("cross", "encoder", "decoder"):
        raise ValueError(f"kind must be 'cross', 'encoder' or 'decoder', got {kind!r}")
    weights = maps[kind][layer]  # (heads, rows, columns)
    weights = weights.mean(dim=0) if head is None else weights[head]  # (rows, columns)
    written, read = list(maps["iso"]) + ["<eos>"], ["<bos>"] + list(maps["iso"])
    rows, columns = {"cross": (written, _shown(text)), "encoder": (_shown(text), _shown(text)),
                     "decoder": (written, read)}[kind]
    if ax is None:
        fig = Figure(figsize=(max(3.4, 0.24 * len(columns) + 1.4), max(2.8, 0.2 * len(rows) + 1.2)))
        ax = fig.add_subplot()
    ax.imshow(weights.double().numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel({"cross": "input character (encoder)", "encoder": "input character read",
                   "decoder": "output position read"}[kind], fontsize=8)
    ax.set_ylabel({"cross": "character being written", "encoder": "input character",
                   "decoder": "character being written"}[kind], fontsize=8)
    n_layers = maps[kind].shape[0]
    ax.set_title(title if title is not None else
                 f"{kind}, layer {layer % n_layers + 1}, {'mean of heads' if head is None else f'head {head + 1}'}",
                 fontsize=9)
    ax.figure.tight_layout()
    return ax.figure
