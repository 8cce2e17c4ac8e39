"""Count the words of prose a reader meets in each notebook of the book, open and collapsed.

Open prose is what the page shows without a click: the Markdown cells' text. Not counted as open:
- cells tagged ``remove-cell`` (never shown: not counted at all). A Markdown cell tagged ``hide-cell`` is
  open: myst-nb folds only code cells by tag (Markdown folds with ``{dropdown}``);
- the body of a directive that renders collapsed: ``{dropdown}``, or any directive with ``:class: dropdown``
  (admonitions, ``{solution}``), including a gated ``{solution-start}`` ... ``{solution-end}`` that spans cells;
- the title of a ``{dropdown}`` or ``{admonition}`` counts as open: it shows on the collapsed block;
- code (fenced blocks, ``{code-block}``/``{code-cell}``), display math (``$$`` and ``{math}``), directive
  options (``:label: ...``), HTML comments and raw HTML tags. Inline code and inline math count one word each.
A word is a whitespace-separated run that holds a letter or a digit, after Markdown links are reduced to
their text and images dropped (alt text is read out, not shown). Chinese characters (the chapters'
subtitles) count one word each.

Usage: python ci/prose_words.py [NOTEBOOK ...] [--max N]
  Prints a table (open, collapsed) for the given notebooks, default every notebook of the toc; with --max,
  exits 1 if a notebook's open prose exceeds N words.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

REMOVED_TAGS = {"remove-cell", "remove_cell"}  # myst-nb drops these cells; it folds only code cells
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})\s*(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}")
NOT_PROSE = {"code-block", "code-cell", "code", "math", "raw", "glue:figure"}
OPTION = re.compile(r"^:[\w-]+:")
IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
ROLE = re.compile(r"\{[\w:-]+\}`([^`]*)`")
INLINE_CODE = re.compile(r"`[^`]+`")
INLINE_MATH = re.compile(r"\$[^$]+\$")
TAG = re.compile(r"<[^>]+>")
COMMENT = re.compile(r"<!--.*?-->", re.S)
CJK = re.compile(r"[\u3400-\u9fff]")
WORD = re.compile(r"[^\W_]", re.UNICODE)


def count_words(text: str) -> int:
    """Words of one run of Markdown prose (no fences inside)."""
    text = ROLE.sub(lambda m: m.group(1) if not m.group(0).startswith(("{math}", "{eq}")) else " x ", text)
    text = IMAGE.sub(" ", text)  # an image's alt text is read out, not shown
    text = LINK.sub(r"\1", text)
    text = INLINE_MATH.sub(" x ", text)
    text = INLINE_CODE.sub(" x ", text)
    text = TAG.sub(" ", text)
    words = 0
    for token in text.split():
        cjk = len(CJK.findall(token))
        words += cjk if cjk else bool(WORD.search(token))
    return words


def split_prose(source: str, collapsed: bool = False) -> tuple[int, int, bool]:
    """(open words, collapsed words, whether a gated collapsed block is still open at the end) of one cell.

    ``collapsed`` says whether the cell starts inside a gated collapsed block (``solution-start``)."""
    open_words = hidden_words = 0
    stack: list[tuple[str, bool, bool]] = []  # (closing fence, collapsed, prose) of the enclosing directives
    gated = collapsed
    lines = COMMENT.sub(" ", source).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        match = FENCE.match(line)
        if stack and match and line == stack[-1][0]:  # the innermost block closes
            stack.pop()
            i += 1
            continue
        if match:
            fence, info = match["fence"], match["info"]
            directive = DIRECTIVE.match(info)
            name = directive["name"] if directive else ""
            prose = bool(directive) and name not in NOT_PROSE
            j, options = i + 1, []
            while prose and j < len(lines) and OPTION.match(lines[j].strip()):
                options.append(lines[j].strip())
                j += 1
            dropdown = name == "dropdown" or any(o.replace(" ", "") == ":class:dropdown" for o in options)
            if name in ("solution-start", "exercise-start"):  # gated: the body runs on to the -end directive
                gated = gated or dropdown
                i = _skip_to(lines, fence, j)
                continue
            if name in ("solution-end", "exercise-end"):
                gated = False
                i = _skip_to(lines, fence, j)
                continue
            title = count_words(info[directive.end():]) if name in ("dropdown", "admonition") else 0
            if stack and stack[-1][1] or gated:  # a title shows when what holds it is open
                hidden_words += title
            else:
                open_words += title
            stack.append((fence, dropdown or (stack[-1][1] if stack else False), prose))
            i = j
            continue
        if line.startswith("$$"):  # display math to the closing $$
            i = i + 1 if line.count("$$") >= 2 and len(line) > 2 else _skip_math(lines, i + 1)
            continue
        in_code = bool(stack) and not stack[-1][2]
        if not in_code and not OPTION.match(line):
            words = count_words(line)
            if gated or (stack and stack[-1][1]):
                hidden_words += words
            else:
                open_words += words
        i += 1
    return open_words, hidden_words, gated


def _skip_to(lines: list[str], fence: str, i: int) -> int:
    """The index after the line that closes ``fence`` (a one-line directive closes on its next fence)."""
    while i < len(lines):
        if lines[i].strip() == fence:
            return i + 1
        i += 1
    return i


def _skip_math(lines: list[str], i: int) -> int:
    while i < len(lines) and "$$" not in lines[i]:
        i += 1
    return i + 1


def notebook_words(path: Path) -> tuple[int, int]:
    """(open, collapsed) words of prose of one notebook."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    open_words = hidden_words = 0
    gated = False
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"])
        shown, hidden, gated_after = split_prose(source, gated)
        if REMOVED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            shown = hidden = 0
        open_words, hidden_words, gated = open_words + shown, hidden_words + hidden, gated_after
    return open_words, hidden_words


def toc_notebooks() -> list[Path]:
    """Every notebook the book's table of contents names, in its order."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--max", type=int, default=None, help="fail if a notebook's open prose exceeds this")
    args = parser.parse_args(argv)
    paths = args.notebooks or toc_notebooks()
    rows = [(p, *notebook_words(p)) for p in paths]
    print("| notebook | open words | collapsed words |\n|---|---:|---:|")
    for path, shown, hidden in rows:
        name = path.resolve().relative_to(ROOT) if path.resolve().is_relative_to(ROOT) else path
        print(f"| {name} | {shown:,} | {hidden:,} |")
    print(f"| **total** | **{sum(r[1] for r in rows):,}** | **{sum(r[2] for r in rows):,}** |")
    over = [(p, n) for p, n, _ in rows if args.max is not None and n > args.max]
    for path, n in over:
        print(f"{path}: {n:,} open words, more than {args.max:,}", file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
