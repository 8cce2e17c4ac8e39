"""The reader copies under colab/ (ci/reader_notebooks.py): in sync with book/, no MyST left, every
exercise's stub and checker kept as code, every solution folded in Markdown and never a code cell."""

import importlib.util
import json
import re
import sys

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("reader_notebooks", ROOT / "ci" / "reader_notebooks.py")
reader = importlib.util.module_from_spec(spec)
sys.modules["reader_notebooks"] = reader  # its dataclasses look their module up there
spec.loader.exec_module(reader)

BOOK_NOTEBOOKS = reader.book_notebooks()


def source(cell) -> str:
    return "".join(cell["source"])


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def solutions_and_stubs(nb) -> tuple[list[str], list[str]]:
    """The book notebook's solution code cells, and its exercise stub code cells (between an exercise's
    start and its solution: some chapters close the exercise block before the stub), in order."""
    solutions, stubs, state = [], [], None
    for cell in nb["cells"]:
        text = source(cell)
        if cell["cell_type"] == "markdown":
            for marker in re.findall(r"\{(exercise-start|exercise-end|solution-start|solution-end)\}", text):
                state = {"exercise-start": "exercise", "exercise-end": state, "solution-start": "solution",
                         "solution-end": None}[marker]
        elif state == "solution":
            solutions.append(text)
        elif state == "exercise":
            stubs.append(text)
    return solutions, stubs


@pytest.fixture(scope="module")
def expected():
    return reader.expected_copies()


def test_every_reader_copy_is_in_sync(expected):
    assert reader.problems(expected) == [], "run python ci/reader_notebooks.py"
    assert len(expected) == len(BOOK_NOTEBOOKS) >= 20
    assert sorted(expected) == sorted((ROOT / "colab" / p.relative_to(ROOT / "book")) for p in BOOK_NOTEBOOKS)


def test_check_command_fails_and_names_the_file(expected, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reader, "COLAB", tmp_path / "colab")
    monkeypatch.setattr(reader, "expected_copies", lambda: {
        tmp_path / "colab" / path.relative_to(ROOT / "colab"): text for path, text in expected.items()})
    assert reader.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "missing: " in out and "q07-attention/attention.ipynb" in out
    assert reader.main([]) == 0 and reader.main(["--check"]) == 0
    copy = tmp_path / "colab" / "q07-attention" / "attention.ipynb"
    copy.write_text(copy.read_text(encoding="utf-8").replace("Solution", "Solutoin", 1), encoding="utf-8")
    capsys.readouterr()
    assert reader.main(["--check"]) == 1
    assert "stale: " in capsys.readouterr().out


def test_copies_are_written_like_the_book_and_are_valid_notebooks():
    import nbformat

    for book in BOOK_NOTEBOOKS:
        text = (ROOT / "colab" / book.relative_to(ROOT / "book")).read_text(encoding="utf-8")
        nb = json.loads(text)
        assert text == json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
        nbformat.validate(nbformat.from_dict(nb))


def test_check_notices_a_stale_copy(expected, tmp_path, monkeypatch):
    path, text = next(iter(expected.items()))
    monkeypatch.setattr(reader, "COLAB", tmp_path / "colab")
    moved = {tmp_path / "colab" / path.relative_to(ROOT / "colab"): t for path, t in expected.items()}
    for copy, copy_text in moved.items():
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(copy_text, encoding="utf-8")
    assert reader.problems(moved) == []
    first = next(iter(moved))
    first.write_text(text.replace("Exercise", "Exercice", 1), encoding="utf-8")
    (tmp_path / "colab" / "extra.ipynb").write_text("{}", encoding="utf-8")
    found = reader.problems(moved)
    assert any(p.startswith("stale:") for p in found) and any(p.startswith("extra:") for p in found)
    first.unlink()
    assert any(p.startswith("missing:") for p in reader.problems(moved))


@pytest.fixture(params=BOOK_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def book_path(request):
    return request.param


@pytest.fixture
def pair(book_path):
    return load(book_path), load(ROOT / "colab" / book_path.relative_to(ROOT / "book"))


def test_no_myst_is_left(pair):
    """No directive fence, role, label target or directive option in any Markdown cell. (Code cells are
    the book's own, unchanged: their f-strings may hold "{name}`", which is Python, not MyST.)"""
    _, copy = pair
    for cell in copy["cells"]:
        if cell["cell_type"] == "markdown":
            text = source(cell)
            assert not reader.MYST_LEFT.search(text), reader.MYST_LEFT.search(text).group(0)
            assert not re.search(r"^\s*(`{3,}|:{3,})\{", text, re.M), "a directive fence"
            assert not re.search(r"\{[\w:-]+\}`", text), "a role"
            assert not re.search(r"^\([\w.-]+\)=", text, re.M), "a label target"
            assert not re.search(r"^:(label|class|name|open):", text, re.M), "a directive option"
            assert "{cite" not in text and "{doc}" not in text and "{admonition}" not in text


def test_exercise_stubs_stay_code_and_solutions_are_folded(pair):
    book, copy = pair
    solutions, stubs = solutions_and_stubs(book)
    code = [source(c) for c in copy["cells"] if c["cell_type"] == "code"]
    markdown = "\n".join(source(c) for c in copy["cells"] if c["cell_type"] == "markdown")
    assert stubs and solutions
    positions = [code.index(stub) for stub in stubs]  # every stub, as a code cell, in the book's order
    assert positions == sorted(positions)
    for stub in stubs:
        assert "raise NotImplementedError" in stub and re.search(r"^check_\w+\(", stub, re.M)
    blocks = re.findall(r"<details><summary><b>Solution</b>.*?\n</details>", markdown, re.S)
    for solution in solutions:
        assert not any(solution.strip() in cell for cell in code), "a solution is in a code cell: Run all would run it"
        assert any(f"```python\n{solution.rstrip()}\n```" in block for block in blocks), (
            "every solution's code sits in a folded <details> block")
    assert markdown.count("<details><summary><b>Solution</b>") == sum(
        source(c).count("{solution-start}") for c in book["cells"])


def test_code_is_kept_and_removed_cells_are_gone(pair):
    book, copy = pair
    kept = [source(c) for c in book["cells"] if c["cell_type"] == "code"
            and "remove-cell" not in c["metadata"].get("tags", [])]
    solutions, _ = solutions_and_stubs(book)
    assert [source(c) for c in copy["cells"] if c["cell_type"] == "code"] == [k for k in kept if k not in solutions]
    assert not any(source(c).startswith("#| default_exp") for c in copy["cells"])
    removed = [source(c) for c in book["cells"] if "remove-cell" in c["metadata"].get("tags", [])]
    assert removed, "every chapter has its remove-cell export target"
    everything = "\n".join(source(c) for c in copy["cells"])
    assert not any(r.strip() in everything for r in removed), "a remove-cell cell's content is in the copy"
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in copy["cells"] if c["cell_type"] == "code")
    assert len({c["id"] for c in copy["cells"]}) == len(copy["cells"]), "cell ids are unique"


def test_the_badge_opens_the_copy_itself_with_colabs_image(pair, book_path):
    book, copy = pair
    first = source(copy["cells"][0])
    badge = re.search(r"\[!\[Open In Colab\]\(([^)]+)\)\]\(([^)]+)\)", first)
    assert badge.group(1) == reader.COLAB_BADGE
    assert badge.group(2) == re.search(r"\]\((https://colab[^)]+)\)", source(book["cells"][0])).group(1)
    assert badge.group(2).startswith("https://colab.research.google.com/github/")
    assert badge.group(2).endswith("/colab/" + book_path.relative_to(ROOT / "book").as_posix())
    page = reader.published_url() + book_path.relative_to(ROOT).with_suffix(".html").as_posix()
    assert "reader copy" in first and f"]({page})" in first


def test_no_kept_cell_needs_what_only_a_solution_defines(book_path):
    """Solutions do not run in a copy: no later cell may read a name whose latest binding is a solution's."""
    assert [str(d) for d in reader.solution_dependencies(book_path)] == []


def test_solution_blocks_render_as_markdown_inside_details(pair):
    """Colab renders CommonMark with HTML: the blank lines around the body let its Markdown (prose, the
    fenced code) render inside the <details> block instead of as raw text."""
    from markdown_it import MarkdownIt

    _, copy = pair
    md = MarkdownIt("commonmark")
    for cell in copy["cells"]:
        text = source(cell)
        if text.startswith("<details><summary><b>Solution</b>"):
            html = md.render(text)
            assert html.startswith("<details>") and html.rstrip().endswith("</details>")
            assert '<pre><code class="language-python">' in html and "```" not in html


def test_citations_and_links_point_at_the_published_book():
    base = reader.published_url()
    copy = load(ROOT / "colab" / "q11-scaled-dot-product" / "scaled_dot_product.ipynb")
    text = "\n".join(source(c) for c in copy["cells"])
    assert f"[Vaswani et al. (2017)]({base}book/appendix/references.html)" in text
    assert f"({base}book/notation.html)" in text


def _tiny(tmp_path, markdown: str):
    nb = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": [
        "# Q1 · T?\n\n**问**\n\n[![Open In Colab](../figures/colab-badge.svg)](https://colab.research.google.com/x)\n"]},
        {"cell_type": "markdown", "id": "b", "metadata": {}, "source": [markdown]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    folder = tmp_path / "book" / "q01-x"
    folder.mkdir(parents=True)
    (tmp_path / "book" / "figures").mkdir()
    (tmp_path / "book" / "figures" / "colab-badge.svg").write_text("<svg/>")  # the badge's book image
    path = folder / "x.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_a_book_image_is_linked_at_the_published_copy_and_a_missing_one_stops_the_generator(tmp_path):
    copy = reader.reader_copy(_tiny(tmp_path, "![A map](../figures/colab-badge.svg) and ![web](https://x/y.png)\n"),
                              "https://b/", {})
    text = "\n".join(source(c) for c in copy["cells"])
    assert "![A map](https://b/_images/colab-badge.svg)" in text and "![web](https://x/y.png)" in text
    with pytest.raises(reader.ReaderCopyError, match="the image '../figures/none.svg' does not exist"):
        reader.reader_copy(_tiny(tmp_path / "2", "![gone](../figures/none.svg)\n"), "https://b/", {})


def test_a_figure_becomes_an_image_with_its_alt_text_and_an_italic_caption(tmp_path):
    figure = ":::{figure} ../figures/colab-badge.svg\n:alt: A badge\n:width: 300px\n\nThe caption.\n:::\n"
    copy = reader.reader_copy(_tiny(tmp_path, figure), "https://b/", {})
    text = "\n".join(source(c) for c in copy["cells"])
    assert "![A badge](https://b/_images/colab-badge.svg)\n\n*The caption.*" in text
    with pytest.raises(reader.ReaderCopyError, match="no :alt: text"):
        reader.reader_copy(_tiny(tmp_path / "2", ":::{figure} ../figures/colab-badge.svg\n\nCaption.\n:::\n"),
                           "https://b/", {})


def test_every_chapter_map_in_a_reader_copy_is_the_published_copy_of_a_book_figure():
    base = reader.published_url()
    for path in sorted((ROOT / "colab").glob("q*/*.ipynb")):
        text = source(load(path)["cells"][0])
        images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", text)
        maps = [url for url in images if "map-" in url]
        assert maps == [f"{base}_images/map-{path.parent.name[:3]}.svg"], path
        assert (ROOT / "book" / "figures" / maps[0].rsplit("/", 1)[1]).is_file()


def test_an_unknown_directive_or_role_stops_the_generator(tmp_path):
    with pytest.raises(reader.ReaderCopyError, match="glossary"):
        reader.reader_copy(_tiny(tmp_path, "```{glossary}\nterm\n```\n"), "https://b/", {})
    with pytest.raises(reader.ReaderCopyError, match="numref"):
        reader.reader_copy(_tiny(tmp_path / "2", "See {numref}`fig-1`.\n"), "https://b/", {})


def test_admonitions_and_dropdowns_become_markdown(tmp_path):
    text = ("```{admonition} Paper vs practice\n:class: note\nThe paper says $x$.\n```\n\n"
            ":::{dropdown} Going deeper\nMore.\n:::\n")
    copy = reader.reader_copy(_tiny(tmp_path, text), "https://b/", {})
    out = source(copy["cells"][1])
    assert out.startswith("> **Paper vs practice**\n>\n> The paper says $x$.")
    assert "<details><summary>Going deeper</summary>\n\nMore.\n\n</details>" in out


def test_nested_and_colon_fenced_directives(tmp_path):
    text = ("::::{dropdown} Going deeper\n:::{note}\nInner.\n:::\n```{tip} Careful\nTip.\n```\nAfter.\n::::\n\n"
            "````{admonition} Outer\n:class: warning\n```{admonition} Inner\nDeep {cite:t}`k1,k2`.\n```\n````\n"
            "(a-label)=\n## Heading\n")
    cites = {"k1": ("Ho", "2020"), "k2": ("Li and Wu", "2021")}
    copy = reader.reader_copy(_tiny(tmp_path, text), "https://b/", cites)
    out = source(copy["cells"][1])
    assert out.startswith("<details><summary>Going deeper</summary>\n\n> **Note**\n>\n> Inner.\n> **Careful**")
    assert "After.\n\n</details>" in out
    assert ("> **Outer**\n>\n> > **Inner**\n> >\n> > Deep [Ho (2020)](https://b/book/appendix/references.html); "
            "[Li and Wu (2021)](https://b/book/appendix/references.html).") in out
    assert "(a-label)=" not in out and "## Heading" in out and not reader.MYST_LEFT.search(out)


def test_citations_read_the_bibliography():
    cites = reader.citations()
    assert cites["vaswani2017attention"] == ("Vaswani et al.", "2017")
    assert cites["hochreiter1997long"] == ("Hochreiter and Schmidhuber", "1997")
    assert cites["he2016deep"] == ("He et al.", "2016a") and cites["he2016identity"] == ("He et al.", "2016b")
    copy = load(ROOT / "colab" / "q01-why-transformer" / "why_transformer.ipynb")
    text = "\n".join(source(c) for c in copy["cells"])
    refs = reader.published_url() + "book/appendix/references.html"
    assert f"([Hochreiter and Schmidhuber, 1997]({refs}); [Cho et al., 2014]({refs}))" in text


def test_the_dependency_check_finds_what_a_skipped_solution_leaves_undefined(tmp_path):
    def md(text):
        return {"cell_type": "markdown", "metadata": {}, "source": text}

    def code(text):
        return {"cell_type": "code", "metadata": {}, "source": text, "outputs": [], "execution_count": None}

    cells = [md("```{exercise-start} ★ · 5 min · T\n:label: t\n```\nWrite f."),
             code("def f(x):\n    raise NotImplementedError\n\n\ncheck_f(f)"),
             md("```{exercise-end}\n```\n```{solution-start} t\n:class: dropdown\n```"),
             code("def f(x):\n    return x\n\n\ncheck_f(f)\nresult, model = f(2), 3"),
             md("```{solution-end}\n```"),
             code("%pip install nothing\nprint(f(1), result)\nmodel = model + 1\nfor i in range(2):\n    i = i + 1\n"
                  "result = 0\nprint(result)")]
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    found = {(d.cell, d.name, d.solution_cell): d.instead for d in reader.solution_dependencies(path)}
    assert found == {(5, "f", 3): "the stub of cell 1", (5, "result", 3): "nothing (NameError)",
                     (5, "model", 3): "nothing (NameError)"}
