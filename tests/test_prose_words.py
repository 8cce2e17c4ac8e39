"""ci/prose_words.py counts the prose a reader meets open, and leaves out what is collapsed, hidden or not prose."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("prose_words", ROOT / "ci" / "prose_words.py")
prose_words = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prose_words)


def notebook(tmp_path: Path, *cells) -> Path:
    """A notebook of Markdown cells: each a string, or (string, tags)."""
    out = []
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        out.append({"cell_type": "markdown", "metadata": {"tags": tags} if tags else {},
                    "source": source.splitlines(keepends=True)})
    out.append({"cell_type": "code", "metadata": {}, "source": ["x = 'these words are code'\n"], "outputs": [],
                "execution_count": None})
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps({"cells": out, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


@pytest.mark.parametrize("text, words", [
    ("one two three", 3),
    ("# A title, then **bold** and *it*.", 6),
    ("see [the paper](https://arxiv.org/abs/1706.03762) now", 4),
    ("![a long alt text of a map](../figures/map.svg) shown", 1),
    ("[![Open In Colab](x.svg)](https://colab) badge", 1),
    ("inline `code(x, y)` and $\\sqrt{d_k}$ count once", 6),
    ("a {doc}`chapter <../q01/x>` link", 3),
    ("a — dash - and 3.5% too", 5),  # a bare dash holds no letter or digit
    ("**Transformer 是如何训练出来的？**", 9),  # 1 word + 8 Chinese characters
    ("<!-- a comment --> kept", 1),
])
def test_count_words(text, words):
    assert prose_words.count_words(prose_words.COMMENT.sub(" ", text)) == words


def test_code_math_and_directive_options_are_not_prose(tmp_path):
    path = notebook(tmp_path, "\n".join([
        "two words",
        "```python", "print('not prose at all')", "```",
        "$$", "a + b = c", "$$",
        "```{math}", "x = y", "```",
        "```{note}", ":class: tip", "three note words", "```",
    ]))
    assert prose_words.notebook_words(path) == (5, 0)


def test_dropdowns_are_collapsed_at_any_depth(tmp_path):
    path = notebook(tmp_path, "\n".join([
        "open",
        ":::{dropdown} Going deeper",  # the title shows on the closed block: open
        "hidden words here",
        "```{note}", "nested hidden", "```",
        ":::",
        "````{admonition} Details", ":class: dropdown", "also hidden", "````",
        "open again",
    ]))
    assert prose_words.notebook_words(path) == (6, 7)


def test_a_gated_solution_is_collapsed_across_cells(tmp_path):
    path = notebook(tmp_path,
                    "```{exercise-start}\n:label: e\n```\nexercise words\n```{exercise-end}\n```",
                    "```{solution-start} e\n:class: dropdown\n```\nthe answer",
                    "more of the answer",
                    "```{solution-end}\n```\nafter")
    assert prose_words.notebook_words(path) == (3, 6)


def test_removed_cells_do_not_count_and_a_hide_cell_tag_does_not_fold_markdown(tmp_path):
    path = notebook(tmp_path, "shown", ("still shown", ["hide-cell"]), ("never shown", ["remove-cell"]))
    assert prose_words.notebook_words(path) == (3, 0)


def test_max_fails_on_a_long_notebook(tmp_path, capsys):
    path = notebook(tmp_path, "word " * 30)
    assert prose_words.main([str(path), "--max", "30"]) == 0
    assert prose_words.main([str(path), "--max", "29"]) == 1
    assert "30 open words, more than 29" in capsys.readouterr().err


def test_every_notebook_of_the_toc_is_counted():
    paths = prose_words.toc_notebooks()
    assert len(paths) >= 22 and all(p.suffix == ".ipynb" for p in paths)
    assert all(prose_words.notebook_words(p)[0] > 500 for p in paths)


def test_no_notebook_shows_more_than_2000_words_of_open_prose():
    """The main path of every notebook reads in one sitting; details go into "Going deeper" dropdowns."""
    over = {p.relative_to(ROOT).as_posix(): n for p in prose_words.toc_notebooks()
            if (n := prose_words.notebook_words(p)[0]) > 2000}
    assert not over, over
