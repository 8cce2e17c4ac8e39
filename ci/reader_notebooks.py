"""Generate the reader copies of the book's notebooks: ``colab/`` mirrors ``book/``, one notebook each.

Colab renders Markdown, not MyST, and runs every code cell on *Run all*. A reader copy is the book's
notebook made for that:

- MyST roles become Markdown: ``{cite:p}``/``{cite:t}`` author–year text linked to the book's references
  page, ``{doc}`` a link to the published page (the book's URL is ``html.baseurl`` in ``_config.yml``).
- Directives become Markdown or HTML that Colab renders: an admonition a blockquote with a bold title, a
  dropdown a ``<details>`` block, an exercise a heading; label targets ``(name)=`` are dropped.
- Every solution (its prose and its code cells) becomes one Markdown cell holding a folded
  ``<details>`` block, so it is one click away and *Run all* never executes it. The exercise's stub cell
  and its checker call stay code cells: an untouched copy runs to the end, the checkers saying "not
  implemented yet".
- Cells tagged ``remove-cell`` are dropped; every other code cell is kept as it is (``hide-cell``, which
  folds a check in the book, leaves a plain code cell: it must run, and Colab has no folded code cell).
- An image of the book (``![alt](../figures/map-q11.svg)``, or a ``{figure}`` with ``:alt:`` and a caption) is
  linked at the published book's copy
  (``_images/``), since a copy opened in Colab has no ``book/figures/`` beside it.
- The badge uses Colab's own image (the book's relative image would not resolve in Colab) and a line
  under it says what the copy is and links the chapter's page.

An unknown directive or role stops the script with its name, so a new construct cannot reach readers
as raw MyST. ``python ci/reader_notebooks.py`` writes ``colab/``; ``--check`` exits 1 if any copy is
missing, stale or extra (CI runs it, like ``ci/export.py --check``). Since solutions do not run in a copy,
``--dependencies`` lists every cell the copy keeps that reads a name whose latest binding in the book is
a solution's (``tests/test_reader_notebooks.py`` requires there be none).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK, COLAB = ROOT / "book", ROOT / "colab"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)")
ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}
SPAN_DIRECTIVES = {"exercise-start", "exercise-end", "solution-start", "solution-end"}
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<args>.*)$")
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<body>[^`]*)`")
LABEL = re.compile(r"^\([\w.-]+\)=[ \t]*$")
# What must not survive in a reader copy (tests/test_reader_notebooks.py uses the same patterns).
MYST_LEFT = re.compile(r"^\s*(`{3,}|:{3,})\{|\{[\w:-]+\}`|^\([\w.-]+\)=\s*$|^:(label|class|name):", re.M)


class ReaderCopyError(ValueError):
    """A construct the generator does not know how to turn into Markdown."""


# ---------------------------------------------------------------- the book's metadata


def published_url(root: Path = ROOT) -> str:
    """The published book's base URL (``html.baseurl`` in ``_config.yml``), ending in a slash."""
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return config["html"]["baseurl"].rstrip("/") + "/"


def citations(bib: Path = BOOK / "references.bib") -> dict[str, tuple[str, str]]:
    """key → (authors as cited in the text, year), e.g. ("Vaswani et al.", "2017"), read with pybtex.

    One author is cited by surname, two as "A and B", more as "A et al."; works that would read alike
    (He et al., 2016, twice) get the years 2016a, 2016b, … in the order of their titles.
    """
    from pybtex.database import parse_file

    def plain(text: str) -> str:
        """A BibTeX field as plain text: LaTeX accents decoded (latexcodec comes with pybtex), braces gone."""
        if "\\" in text:
            import latexcodec  # noqa: F401 - registers the "latex" codec

            text = text.encode("utf-8").decode("latex")
        return text.replace("{", "").replace("}", "")

    cited, titles = {}, {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author") or entry.persons.get("editor") or []
        last = [plain(" ".join(p.prelast_names + p.last_names)) for p in people]
        if not last:
            raise ReaderCopyError(f"{bib.name}: {key} has no author")
        names = last[0] if len(last) == 1 else f"{last[0]} and {last[1]}" if len(last) == 2 else f"{last[0]} et al."
        cited[key], titles[key] = (names, entry.fields.get("year", "n.d.")), plain(entry.fields.get("title", key))
    alike: dict[tuple[str, str], list[str]] = {}
    for key, citation in cited.items():
        alike.setdefault(citation, []).append(key)
    for (names, year), keys in alike.items():
        if len(keys) > 1:
            for letter, key in zip("abcdefghijklmnopqrstuvwxyz", sorted(keys, key=lambda k: titles[k].lower())):
                cited[key] = (names, year + letter)
    return cited


def page_title(source: Path) -> str:
    """The first level-1 heading of a book page (.md or .ipynb)."""
    if source.suffix == ".ipynb":
        nb = json.loads(source.read_text(encoding="utf-8"))
        text = "".join(next(c for c in nb["cells"] if c["cell_type"] == "markdown")["source"])
    else:
        text = source.read_text(encoding="utf-8")
    match = re.search(r"^# (.+)$", text, re.M)
    return match.group(1).strip() if match else source.stem


@dataclass
class Context:
    """What a conversion needs to know about the notebook it converts."""

    notebook: Path
    base_url: str
    cites: dict[str, tuple[str, str]]

    @property
    def references_url(self) -> str:
        return self.base_url + "book/appendix/references.html"

    def page_url(self, target: str) -> tuple[str, Path]:
        """A ``{doc}`` target, relative to this notebook's folder → (published URL, source file)."""
        resolved = (self.notebook.parent / target).resolve()
        source = next((resolved.with_suffix(s) for s in (".ipynb", ".md") if resolved.with_suffix(s).exists()), None)
        if source is None:
            raise ReaderCopyError(f"{self.notebook.name}: {{doc}} target {target!r} does not exist")
        return self.base_url + source.relative_to(ROOT).with_suffix(".html").as_posix(), source


# ---------------------------------------------------------------- Markdown


def convert_roles(text: str, ctx: Context) -> str:
    def replace(match: re.Match) -> str:
        name, body = match.group("name"), match.group("body")
        if name in ("cite:p", "cite:t", "cite"):
            keys = [k.strip() for k in body.split(",") if k.strip()]
            missing = [k for k in keys if k not in ctx.cites]
            if missing:
                raise ReaderCopyError(f"{ctx.notebook.name}: unknown citation key(s) {missing}")
            if name == "cite:t":
                return "; ".join(f"[{ctx.cites[k][0]} ({ctx.cites[k][1]})]({ctx.references_url})" for k in keys)
            return "(" + "; ".join(f"[{ctx.cites[k][0]}, {ctx.cites[k][1]}]({ctx.references_url})" for k in keys) + ")"
        if name == "doc":
            explicit = re.fullmatch(r"(?P<text>.+?)\s*<(?P<target>[^>]+)>", body, re.S)
            target = explicit.group("target") if explicit else body
            url, source = ctx.page_url(target)
            return f"[{explicit.group('text') if explicit else page_title(source)}]({url})"
        raise ReaderCopyError(f"{ctx.notebook.name}: the role {{{name}}} has no Markdown form in ci/reader_notebooks.py")

    return ROLE.sub(replace, text)


def _directive_body(lines: list[str], start: int, fence: str) -> tuple[dict[str, str], list[str], int]:
    """Options and body of the directive whose opening fence is lines[start]; index after its close."""
    options, i = {}, start + 1
    while i < len(lines) and re.match(r"^:[\w-]+:", lines[i]):
        key, _, value = lines[i][1:].partition(":")
        options[key] = value.strip()
        i += 1
    body, depth = [], 0
    close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening and opening.group("fence")[0] == fence[0] and len(opening.group("fence")) == len(fence):
            depth += 1
        elif close.match(lines[i]):
            if depth == 0:
                return options, body, i + 1
            depth -= 1
        body.append(lines[i])
        i += 1
    raise ReaderCopyError(f"a {{directive}} opened with {fence} is never closed")


def convert_images(text: str, ctx: Context) -> str:
    """A Markdown image whose path is relative to the notebook → the published book's copy of the file.
    Sphinx copies every image of the book to ``_images/`` under its own name; Colab has no ``book/figures/``."""
    def replace(match: re.Match) -> str:
        src = match.group("src")
        if re.match(r"^[a-z][a-z0-9+.-]*:", src):  # a URL already
            return match.group(0)
        path = (ctx.notebook.parent / src).resolve()
        if not path.is_file():
            raise ReaderCopyError(f"{ctx.notebook.name}: the image {src!r} does not exist")
        return f"![{match.group('alt')}]({ctx.base_url}_images/{path.name})"

    return IMAGE.sub(replace, text)


def convert_markdown(text: str, ctx: Context) -> str:
    """MyST Markdown (without exercise/solution markers) → Markdown and HTML that Colab renders."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line)
        if LABEL.match(line):
            i += 1
            continue
        if not opening:
            out.append(line)
            i += 1
            continue
        name, args, fence = opening.group("name"), opening.group("args").strip(), opening.group("fence")
        options, body, i = _directive_body(lines, i, fence)
        inner = convert_markdown("\n".join(body), ctx).strip("\n")
        if name == "admonition" or name in ADMONITIONS:
            title = convert_roles(args, ctx) if name == "admonition" else (args or name.capitalize())
            quoted = [f"> {row}" if row else ">" for row in inner.split("\n")]
            out += [f"> **{title}**", ">", *quoted]
        elif name == "dropdown":
            out += [f"<details><summary>{convert_roles(args, ctx) or 'Details'}</summary>", "", inner, "", "</details>"]
        elif name in ("math",):
            out += ["$$", inner, "$$"]
        elif name == "figure":  # an image of the book with its alt text, the caption in italics below it
            if not options.get("alt"):
                raise ReaderCopyError(f"{ctx.notebook.name}: the figure {args!r} has no :alt: text")
            out += [f"![{options['alt']}]({args})", "", f"*{inner}*" if inner else ""]
        else:
            raise ReaderCopyError(f"{ctx.notebook.name}: the directive {{{name}}} has no Markdown form in "
                                  "ci/reader_notebooks.py")
    return convert_images(convert_roles("\n".join(out), ctx), ctx)


# ---------------------------------------------------------------- exercises and solutions


@dataclass
class Marker:
    name: str  # exercise-start, exercise-end, solution-start, solution-end
    args: str
    options: dict[str, str]


def split_markers(text: str) -> list[str | Marker]:
    """A Markdown cell as text pieces and the exercise/solution markers between them."""
    lines, pieces, text_lines, i = text.split("\n"), [], [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening and opening.group("name") in SPAN_DIRECTIVES:
            options, body, i = _directive_body(lines, i, opening.group("fence"))
            if any(row.strip() for row in body):
                raise ReaderCopyError(f"{{{opening.group('name')}}} must have no body")
            if text_lines:
                pieces.append("\n".join(text_lines))
                text_lines = []
            pieces.append(Marker(opening.group("name"), opening.group("args").strip(), options))
        else:
            text_lines.append(lines[i])
            i += 1
    if text_lines:
        pieces.append("\n".join(text_lines))
    return pieces


def exercise_heading(args: str) -> str:
    """``★★ · 15 min · Title`` → ``### Exercise · Title (★★ · 15 min)``."""
    parts = [p.strip() for p in args.split(" · ")]
    if len(parts) >= 3:
        return f"### Exercise · {' · '.join(parts[2:])} ({parts[0]} · {parts[1]})"
    return f"### Exercise · {args}"


def markdown_cell(cell_id: str, text: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {}, "source": text.strip("\n").splitlines(keepends=True)}


def fenced(code: str) -> str:
    fence = "```"
    while fence in code:
        fence += "`"
    return f"{fence}python\n{code.rstrip()}\n{fence}"


def reader_copy(path: Path, base_url: str | None = None, cites: dict | None = None) -> dict:
    """The reader copy of the book notebook at ``path``, as a notebook dict."""
    ctx = Context(path, base_url or published_url(), cites if cites is not None else citations())
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells: list[dict] = []
    solution: list[str] | None = None  # the solution being collected (Markdown pieces), or None
    solution_id = ""
    used_ids: set[str] = set()

    def new_id(base: str) -> str:
        candidate, n = base, 1
        while candidate in used_ids:
            candidate, n = f"{base}-{n}", n + 1
        used_ids.add(candidate)
        return candidate

    for index, cell in enumerate(nb["cells"]):
        if "remove-cell" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell["cell_type"] == "code":
            if solution is not None:
                solution.append(fenced("".join(cell["source"])))
            else:
                cells.append({**cell, "id": new_id(cell.get("id", f"cell-{index}")), "outputs": [],
                              "execution_count": None})
            continue
        text = "".join(cell["source"])
        pending: list[str] = []  # Markdown of this cell outside any solution
        for piece in split_markers(text):
            if isinstance(piece, str):
                converted = convert_markdown(piece, ctx).strip("\n")  # the blank lines around a marker
                if converted.strip():
                    (solution if solution is not None else pending).append(converted)
            elif piece.name == "exercise-start":
                pending.append(exercise_heading(convert_roles(piece.args, ctx)))
            elif piece.name == "solution-start":
                if solution is not None:
                    raise ReaderCopyError(f"{path.name}: a solution starts inside another")
                if any(p.strip() for p in pending):
                    cells.append(markdown_cell(new_id(cell.get("id", f"cell-{index}")), "\n\n".join(pending)))
                pending, solution, solution_id = [], [], cell.get("id", f"cell-{index}") + "-solution"
            elif piece.name == "solution-end":
                if solution is None:
                    raise ReaderCopyError(f"{path.name}: a solution ends that never started")
                body = "\n\n".join(p.strip("\n") for p in solution if p.strip())
                cells.append(markdown_cell(new_id(solution_id),
                                           f"<details><summary><b>Solution</b> (click to show)</summary>\n\n{body}\n\n</details>"))
                solution = None
        if any(p.strip() for p in pending):
            cells.append(markdown_cell(new_id(cell.get("id", f"cell-{index}")), "\n\n".join(pending)))
    if solution is not None:
        raise ReaderCopyError(f"{path.name}: a solution is never closed")
    _retitle(cells[0], path, ctx)
    for cell in cells:
        if cell["cell_type"] == "markdown" and MYST_LEFT.search("".join(cell["source"])):
            left = MYST_LEFT.search("".join(cell["source"])).group(0)
            raise ReaderCopyError(f"{path.name}: MyST left in a reader copy: {left!r}")
    metadata = {**nb["metadata"], "colab": {"provenance": [], "toc_visible": True}}
    return {"cells": cells, "metadata": metadata, "nbformat": nb["nbformat"], "nbformat_minor": nb["nbformat_minor"]}


def _retitle(cell: dict, path: Path, ctx: Context) -> None:
    """Colab's own badge image, and a line saying what this copy is, under the title cell's badge."""
    text = "".join(cell["source"])
    badge = re.search(r"\[!\[Open In Colab\]\(([^)]+)\)\]\(([^)]+)\)", text)
    if not badge:
        raise ReaderCopyError(f"{path.name}: the title cell has no Open In Colab badge")
    book = next(parent for parent in path.parents if parent.name == "book")
    page = ctx.base_url + "book/" + path.relative_to(book).with_suffix(".html").as_posix()
    note = (f"> The reader copy of [this chapter of the book]({page}): the same notebook, with every "
            "solution folded under **Solution** (click to open it). *Run all* runs the chapter and leaves the "
            "exercises to you: their checkers say \"not implemented yet\" until you write the code.")
    text = text[:badge.start()] + f"[![Open In Colab]({COLAB_BADGE})]({badge.group(2)})\n\n{note}" + text[badge.end():]
    cell["source"] = text.splitlines(keepends=True)


# ---------------------------------------------------------------- what later cells need from solutions


@dataclass
class Dependency:
    """A cell that a reader copy keeps but that reads a name whose latest binding is in a solution.

    In the reader copy the solution does not run, so the cell sees ``instead``: nothing (a NameError),
    the exercise's stub (which raises NotImplementedError when called) or an earlier cell's value.
    """

    notebook: Path
    cell: int  # index of the reading cell in the book notebook
    cell_id: str
    name: str
    solution_cell: int  # index of the solution cell that binds the name last
    instead: str

    def __str__(self) -> str:
        where = self.notebook.relative_to(ROOT).as_posix() if self.notebook.is_relative_to(ROOT) else self.notebook
        return (f"{where}: cell {self.cell} (id {self.cell_id}) reads `{self.name}`, last bound by the "
                f"solution in cell {self.solution_cell}; the reader copy gives it {self.instead}")


def cell_roles(nb: dict) -> list[str]:
    """Each cell's role in the reader copy: markdown, removed, stub (exercise code), solution or kept."""
    roles, state = [], None
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            roles.append("markdown")
            for piece in split_markers("".join(cell["source"])):
                if isinstance(piece, Marker):
                    state = {"exercise-start": "stub", "exercise-end": state if state == "solution" else None,
                             "solution-start": "solution", "solution-end": None}[piece.name]
        elif "remove-cell" in cell.get("metadata", {}).get("tags", []):
            roles.append("removed")
        else:
            roles.append(state or "kept")
    return roles


def _scope_reads(table) -> set[str]:
    """Global names read in nested scopes (function bodies, comprehensions, classes) of a symbol table."""
    names = set()
    for child in table.get_children():
        names |= {s.get_name() for s in child.get_symbols() if s.is_referenced() and s.is_global()}
        names |= _scope_reads(child)
    return names


def statement_reads_writes(source: str) -> list[tuple[set[str], set[str]]]:
    """(global names read before being bound, names bound) for each top-level statement of a code cell.

    IPython syntax (``%pip``) is turned into Python first. A name a statement both reads and binds counts
    as read only where Python evaluates the read first: the value of an assignment, an augmented
    assignment, the iterable of a ``for``, the context managers of a ``with``.
    """
    import ast
    import builtins
    import symtable

    from IPython.core.inputtransformer2 import TransformerManager

    python = TransformerManager().transform_cell(source)
    result = []
    for node in ast.parse(python).body:
        text = ast.get_source_segment(python, node)
        table = symtable.symtable(text, "cell", "exec")
        top = table.get_symbols()
        writes = {s.get_name() for s in top if s.is_assigned() or s.is_imported() or s.is_namespace()}
        reads = {s.get_name() for s in top if s.is_referenced()} | _scope_reads(table)
        first = {ast.Assign: lambda n: [n.value, *n.targets], ast.AugAssign: lambda n: [n.target, n.value],
                 ast.AnnAssign: lambda n: [n.value] if n.value else [], ast.For: lambda n: [n.iter],
                 ast.With: lambda n: [i.context_expr for i in n.items]}.get(type(node))
        both = reads & writes
        if both:
            early = set()
            for part in first(node) if first else []:
                early |= {n.id for n in ast.walk(part) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)}
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                early.add(node.target.id)
            reads = (reads - both) | (both & early)
        result.append((reads - set(dir(builtins)), writes))
    return result


def solution_dependencies(path: Path) -> list[Dependency]:
    """Every read, in a cell the reader copy keeps, of a name only a (skipped) solution binds last."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    last: dict[str, tuple[str, int]] = {}  # name → (role, cell index) of its latest binding in the book
    seen: dict[str, tuple[str, int]] = {}  # the same, without the solutions: what the reader copy has
    found = []
    for index, (cell, role) in enumerate(zip(nb["cells"], cell_roles(nb))):
        if role in ("markdown", "removed"):
            continue
        for reads, writes in statement_reads_writes("".join(cell["source"])):
            if role != "solution":
                for name in sorted(reads):
                    if name in last and last[name][0] == "solution":
                        before = seen.get(name)
                        instead = ("nothing (NameError)" if before is None else
                                   f"the stub of cell {before[1]}" if before[0] == "stub" else
                                   f"the older value of cell {before[1]}")
                        found.append(Dependency(path, index, cell.get("id", ""), name, last[name][1], instead))
            for name in writes:
                last[name] = (role, index)
                if role != "solution":
                    seen[name] = (role, index)
    return found


# ---------------------------------------------------------------- files


def book_notebooks() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def serialise(nb: dict) -> str:
    """A notebook as the book's notebooks are written (nbformat's layout): sorted keys, indent 1, UTF-8."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def expected_copies() -> dict[Path, str]:
    """Every reader copy's path under colab/ → its text."""
    base_url, cites = published_url(), citations()
    return {COLAB / p.relative_to(BOOK): serialise(reader_copy(p, base_url, cites)) for p in book_notebooks()}


def problems(expected: dict[Path, str]) -> list[str]:
    """What differs between colab/ and the expected copies: missing, stale and extra files."""
    def name(path: Path) -> str:
        return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)

    found = []
    for path, text in expected.items():
        if not path.exists():
            found.append(f"missing: {name(path)}")
        elif path.read_text(encoding="utf-8") != text:
            found.append(f"stale: {name(path)}")
    for path in sorted(COLAB.rglob("*.ipynb")) if COLAB.exists() else []:
        if path not in expected:
            found.append(f"extra: {name(path)} (its book notebook is gone)")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or --check) the reader copies under colab/.")
    parser.add_argument("--check", action="store_true", help="fail if colab/ differs from what would be written")
    parser.add_argument("--dependencies", action="store_true",
                        help="list (and fail on) kept cells that read a name only a solution binds")
    args = parser.parse_args(argv)
    if args.dependencies:
        found = [str(d) for path in book_notebooks() for d in solution_dependencies(path)]
        print("\n".join(found) if found else "no kept cell reads a name that only a solution binds")
        return 1 if found else 0
    expected = expected_copies()
    if args.check:
        found = problems(expected)
        if found:
            print("colab/ is out of sync with book/; run python ci/reader_notebooks.py:\n  " + "\n  ".join(found))
            return 1
        print(f"colab/: {len(expected)} reader copies in sync with book/")
        return 0
    for path in sorted(COLAB.rglob("*.ipynb")) if COLAB.exists() else []:
        if path not in expected:
            path.unlink()
    for path, text in expected.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    print(f"colab/: wrote {len(expected)} reader copies")
    return 0


if __name__ == "__main__":
    sys.exit(main())
