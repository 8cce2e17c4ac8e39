"""The architecture map: the Transformer of Vaswani et al. (2017, Figure 1), drawn once as SVG, with every
box labelled by the question that builds it; one variant per chapter with that chapter's part highlighted.

    python ci/architecture_map.py           # writes book/figures/map.svg and book/figures/map-qNN.svg
    python ci/architecture_map.py --check   # fails if a committed file differs from what this writes

Every chapter's first cell shows its variant (``![alt](../figures/map-qNN.svg)``, the alt text from
``alt_text``); tests/test_architecture_map.py checks the drawing (every box's text fits, the highlights name
real parts) and that each chapter shows its own map.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"

WIDTH, HEIGHT = 620, 700
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
TEXT_SIZE, BADGE_SIZE = 12.5, 10.5


@dataclass(frozen=True)
class Box:
    """A part of the model: a rounded box at (x, y) of size (w, h), its label and the questions that build it."""

    id: str
    label: str
    x: float
    y: float
    w: float
    h: float
    questions: tuple[int, ...] = ()
    kind: str = "box"  # box, frame (a stack's outline), text (no outline), add (the ⊕ of the positions)

    @property
    def badge(self) -> str:
        return " ".join(f"Q{q}" for q in self.questions)


# Two columns, encoder left and decoder right, read from the bottom up as in the paper's Figure 1.
ENC_X, DEC_X, COL_W = 20, 320, 280
BOX_W, BOX_H = 256, 30
ADD_R = 10  # the radius of the ⊕ where the positions are added


def _col(x: float, w: float = BOX_W) -> float:
    return x + (COL_W - w) / 2


BOXES: tuple[Box, ...] = (
    # encoder column
    Box("src", "Source tokens", _col(ENC_X), 646, BOX_W, 26, (), "text"),
    Box("src_embed", "Input embedding", _col(ENC_X), 596, BOX_W, BOX_H, (5,)),
    Box("src_pe", "Positional\nencoding", _col(ENC_X), 548, BOX_W, 28, (6,), "add"),
    Box("encoder", "Encoder × N", ENC_X, 250, COL_W, 282, (3,), "frame"),
    Box("enc_attn", "Multi-head self-attention", _col(ENC_X), 464, BOX_W, BOX_H, (10, 12)),
    Box("enc_norm1", "Add & Norm", _col(ENC_X), 414, BOX_W, BOX_H, (14, 15)),
    Box("enc_ffn", "Feed-forward network", _col(ENC_X), 344, BOX_W, BOX_H, (16,)),
    Box("enc_norm2", "Add & Norm", _col(ENC_X), 294, BOX_W, BOX_H, (14, 15)),
    # decoder column
    Box("tgt", "Target tokens, shifted right", _col(DEC_X), 646, BOX_W, 26, (), "text"),
    Box("tgt_embed", "Output embedding", _col(DEC_X), 596, BOX_W, BOX_H, (5,)),
    Box("tgt_pe", "Positional\nencoding", _col(DEC_X), 548, BOX_W, 28, (6,), "add"),
    Box("decoder", "Decoder × N", DEC_X, 100, COL_W, 432, (4,), "frame"),
    Box("dec_self", "Masked self-attention", _col(DEC_X), 464, BOX_W, BOX_H, (10, 13)),
    Box("dec_norm1", "Add & Norm", _col(DEC_X), 414, BOX_W, BOX_H, (14, 15)),
    Box("dec_cross", "Cross-attention", _col(DEC_X), 344, BOX_W, BOX_H, (9, 12)),
    Box("dec_norm2", "Add & Norm", _col(DEC_X), 294, BOX_W, BOX_H, (14, 15)),
    Box("dec_ffn", "Feed-forward network", _col(DEC_X), 224, BOX_W, BOX_H, (16,)),
    Box("dec_norm3", "Add & Norm", _col(DEC_X), 144, BOX_W, BOX_H, (14, 15)),
    Box("generator", "Linear + softmax", _col(DEC_X), 52, BOX_W, BOX_H, (17,)),
    Box("probs", "Next-token probabilities", _col(DEC_X), 10, BOX_W, 26, (), "text"),
)
PARTS = {box.id: box for box in BOXES}
ATTENTION = ("enc_attn", "dec_self", "dec_cross")
NORMS = ("enc_norm1", "enc_norm2", "dec_norm1", "dec_norm2", "dec_norm3")
ALL = tuple(PARTS)

# Each chapter's part of the model: the file suffix, what it highlights, and how the alt text names it.
CHAPTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "q01": (ATTENTION, "the attention layers, which replace recurrence"),
    "q02": (ALL, "the whole architecture"),
    "q03": (("encoder", "enc_attn", "enc_norm1", "enc_ffn", "enc_norm2"), "the encoder stack"),
    "q04": (("decoder", "dec_self", "dec_norm1", "dec_cross", "dec_norm2", "dec_ffn", "dec_norm3", "generator",
             "probs"), "the decoder stack and its output"),
    "q05": (("src_embed", "tgt_embed"), "the input and output embeddings"),
    "q06": (("src_pe", "tgt_pe"), "the positional encodings added to the embeddings"),
    "q07": (ATTENTION, "the three attention layers"),
    "q08": (ATTENTION, "the three attention layers, where queries, keys and values are projected"),
    "q09": (("dec_cross", "memory"), "the decoder's cross-attention and the encoder output it reads"),
    "q10": (("enc_attn", "dec_self"), "the two self-attention layers"),
    "q11": (ATTENTION, "the three attention layers, each computing scaled dot-product attention"),
    "q12": (ATTENTION, "the three multi-head attention layers"),
    "q13": (ATTENTION, "the three attention layers, where the padding and causal masks apply"),
    "q14": (NORMS + ("residual",), "the residual connections and their Add & Norm steps"),
    "q15": (NORMS, "the Add & Norm steps"),
    "q16": (("enc_ffn", "dec_ffn"), "the two position-wise feed-forward networks"),
    "q17": (("tgt", "generator", "probs"), "the shifted target and the output probabilities that training compares"),
    "q18": (ALL, "the whole architecture"),
}
EXTRA_PARTS = ("memory", "residual")  # lines, not boxes, that a chapter may highlight

INK, MUTED, LINE = "#1f2937", "#4b5563", "#6b7280"
FILL, FRAME_FILL, ACCENT, ACCENT_FILL, ACCENT_LINE = "#f3f4f6", "#fafafa", "#b45309", "#fde68a", "#d97706"


def _rect(box: Box, lit: bool) -> list[str]:
    stroke, fill, width = (ACCENT_LINE, ACCENT_FILL, 2.2) if lit else (LINE, FILL, 1.0)
    if box.kind == "frame":
        fill = "#fff7e0" if lit else FRAME_FILL
        return [f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="12" fill="{fill}" '
                f'stroke="{stroke}" stroke-width="{width}" stroke-dasharray="6 4"/>',
                f'<text x="{box.x + 10}" y="{box.y + 18}" font-size="{TEXT_SIZE}" fill="{INK}" '
                f'font-weight="{"bold" if lit else "normal"}">{escape(box.label)}</text>',
                _badge(box, box.x + box.w - 10, box.y + 18, lit)]
    if box.kind == "text":
        return [f'<text x="{box.x + box.w / 2}" y="{box.y + box.h / 2 + 4}" text-anchor="middle" '
                f'font-size="{TEXT_SIZE}" fill="{INK}" font-weight="{"bold" if lit else "normal"}" '
                f'font-style="italic">{escape(box.label)}</text>']
    if box.kind == "add":
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
        first, second = box.label.split("\n")
        weight = "bold" if lit else "normal"
        return [f'<circle cx="{cx}" cy="{cy}" r="{ADD_R}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>',
                f'<path d="M{cx - 6},{cy} h12 M{cx},{cy - 6} v12" stroke="{INK}" stroke-width="1.4"/>',
                f'<text x="{cx + ADD_R + 8}" y="{cy - 2}" font-size="{TEXT_SIZE}" fill="{INK}" '
                f'font-weight="{weight}">{escape(first)}</text>',
                f'<text x="{cx + ADD_R + 8}" y="{cy + TEXT_SIZE + 1}" font-size="{TEXT_SIZE}" fill="{INK}" '
                f'font-weight="{weight}">{escape(second)} <tspan font-size="{BADGE_SIZE}" font-weight="bold" '
                f'fill="{ACCENT if lit else MUTED}">{box.badge}</tspan></text>']
    return [f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"/>',
            f'<text x="{box.x + 10}" y="{box.y + box.h / 2 + 4.5}" font-size="{TEXT_SIZE}" fill="{INK}" '
            f'font-weight="{"bold" if lit else "normal"}">{escape(box.label)}</text>',
            _badge(box, box.x + box.w - 8, box.y + box.h / 2 + 4, lit)]


def _badge(box: Box, right: float, baseline: float, lit: bool) -> str:
    return (f'<text x="{right}" y="{baseline}" text-anchor="end" font-size="{BADGE_SIZE}" '
            f'fill="{ACCENT if lit else MUTED}" font-weight="bold">{box.badge}</text>')


def _arrow(x1: float, y1: float, x2: float, y2: float, lit: bool = False) -> str:
    color = ACCENT_LINE if lit else LINE
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="{2.2 if lit else 1.3}" '
            f'marker-end="url(#{"head-lit" if lit else "head"})"/>')


def _up(a: str, b: str) -> str:
    """An arrow from the top of box ``a`` to the bottom of box ``b`` (the data flows up)."""
    lower, upper = PARTS[a], PARTS[b]
    x = upper.x + upper.w / 2
    y1 = lower.y + (lower.h / 2 - ADD_R if lower.kind == "add" else 0)
    y2 = upper.y + (upper.h / 2 + ADD_R if upper.kind == "add" else upper.h)
    return _arrow(x, y1, x, y2)


def _residual(sub: str, norm: str, side: float, lit: bool) -> str:
    """The skip around sub-layer ``sub``: from below it, up its left side, into its Add & Norm."""
    s, n = PARTS[sub], PARTS[norm]
    x0, y0 = s.x + s.w / 2, s.y + s.h + 12
    color, width = (ACCENT_LINE, 2.2) if lit else (LINE, 1.1)
    return (f'<path d="M{x0},{y0} H{side} V{n.y + n.h / 2} H{n.x}" fill="none" stroke="{color}" '
            f'stroke-width="{width}" marker-end="url(#{"head-lit" if lit else "head"})"/>')


def svg(chapter: str | None = None) -> str:
    """The map as an SVG document; with ``chapter`` ("q11"), that chapter's parts highlighted."""
    lit = set(CHAPTERS[chapter][0]) if chapter else set()
    title = "The Transformer" + (f": where Q{int(chapter[1:])} sits" if chapter else "")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
           f'height="{HEIGHT}" role="img" aria-labelledby="title desc" font-family="{FONT}">',
           f'<title id="title">{escape(title)}</title>',
           f'<desc id="desc">{escape(alt_text(chapter))}</desc>',
           '<defs>',
           f'<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
           f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{LINE}"/></marker>',
           f'<marker id="head-lit" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" '
           f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{ACCENT_LINE}"/></marker>',
           '</defs>',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>']
    for box in BOXES:  # frames first, so the boxes sit on them
        if box.kind == "frame":
            out += _rect(box, box.id in lit)
    # the flow, bottom to top
    for a, b in (("src", "src_embed"), ("src_embed", "src_pe"), ("src_pe", "enc_attn"), ("enc_attn", "enc_norm1"),
                 ("enc_norm1", "enc_ffn"), ("enc_ffn", "enc_norm2"),
                 ("tgt", "tgt_embed"), ("tgt_embed", "tgt_pe"), ("tgt_pe", "dec_self"), ("dec_self", "dec_norm1"),
                 ("dec_norm1", "dec_cross"), ("dec_cross", "dec_norm2"), ("dec_norm2", "dec_ffn"),
                 ("dec_ffn", "dec_norm3"), ("dec_norm3", "generator"), ("generator", "probs")):
        out.append(_up(a, b))
    for sub, norm, column in (("enc_attn", "enc_norm1", ENC_X), ("enc_ffn", "enc_norm2", ENC_X),
                              ("dec_self", "dec_norm1", DEC_X), ("dec_cross", "dec_norm2", DEC_X),
                              ("dec_ffn", "dec_norm3", DEC_X)):
        out.append(_residual(sub, norm, column + 6, "residual" in lit))
    # the encoder's output (the memory) feeds every decoder layer's cross-attention as keys and values
    enc, cross = PARTS["encoder"], PARTS["dec_cross"]
    mem_lit = "memory" in lit
    color, width = (ACCENT_LINE, 2.2) if mem_lit else (LINE, 1.3)
    top = enc.y - 22
    start = enc.x + enc.w * 0.72  # right of the frame's label, left of its badge
    out.append(f'<path d="M{start},{PARTS["enc_norm2"].y} V{top} H{DEC_X - 14} '
               f'V{cross.y + cross.h / 2} H{cross.x}" fill="none" stroke="{color}" stroke-width="{width}" '
               f'marker-end="url(#{"head-lit" if mem_lit else "head"})"/>')
    out.append(f'<text x="{start - 40}" y="{top - 8}" font-size="{BADGE_SIZE}" '
               f'fill="{ACCENT if mem_lit else MUTED}" font-weight="{"bold" if mem_lit else "normal"}">'
               f'memory (keys, values)</text>')
    for box in BOXES:
        if box.kind != "frame":
            out += _rect(box, box.id in lit)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def alt_text(chapter: str | None = None) -> str:
    """What the map shows, in words, for the image's alt text and the SVG's description."""
    base = ("The Transformer, read from the bottom up: source tokens pass through the input embedding and the "
            "positional encoding into N encoder layers (multi-head self-attention and a feed-forward network, "
            "each followed by Add & Norm); target tokens, shifted right, pass through the output embedding and "
            "positional encoding into N decoder layers (masked self-attention, cross-attention over the encoder's "
            "output, a feed-forward network, each followed by Add & Norm), then a linear layer and softmax give "
            "the next token's probabilities. Each part is labelled with the question that builds it.")
    if chapter is None:
        return base
    return f"{base} Highlighted for Q{int(chapter[1:])}: {CHAPTERS[chapter][1]}."


def short_alt(chapter: str) -> str:
    """The alt text of a chapter's map in its first cell (the SVG's own description says more)."""
    return (f"Map of the Transformer, encoder on the left and decoder on the right, with Q{int(chapter[1:])}'s "
            f"part highlighted: {CHAPTERS[chapter][1]}")


def files() -> dict[Path, str]:
    """Every file this script writes, with its content."""
    out = {FIGURES / "map.svg": svg()}
    for chapter in CHAPTERS:
        out[FIGURES / f"map-{chapter}.svg"] = svg(chapter)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed map differs")
    args = parser.parse_args(argv)
    stale = []
    for path, content in files().items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != content:
                stale.append(path.relative_to(ROOT))
        else:
            path.write_text(content, encoding="utf-8")
    if stale:
        print("stale maps (run python ci/architecture_map.py): " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    print(f"architecture map: {len(files())} files {'match' if args.check else 'written'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
