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
def pair(request):
    book = request.param
    return load(book), load(ROOT / "colab" / book.relative_to(ROOT / "book"))


def test_no_myst_is_left(pair):
    _, copy = pair
    for cell in copy["cells"]:
        if cell["cell_type"] == "markdown":
            text = source(cell)
            assert not reader.MYST_LEFT.search(text), reader.MYST_LEFT.search(text).group(0)
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
        assert solution not in code, "a solution is a code cell: Run all would execute it"
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
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in copy["cells"] if c["cell_type"] == "code")
    assert len({c["id"] for c in copy["cells"]}) == len(copy["cells"]), "cell ids are unique"


def test_the_badge_opens_the_copy_itself_with_colabs_image(pair):
    book, copy = pair
    first = source(copy["cells"][0])
    badge = re.search(r"\[!\[Open In Colab\]\(([^)]+)\)\]\(([^)]+)\)", first)
    assert badge.group(1) == reader.COLAB_BADGE
    assert badge.group(2) == re.search(r"\]\((https://colab[^)]+)\)", source(book["cells"][0])).group(1)
    assert "/colab/" in badge.group(2) and "reader copy" in first


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
    path = folder / "x.ipynb"
    path.write_text(json.dumps(nb))
    return path


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
