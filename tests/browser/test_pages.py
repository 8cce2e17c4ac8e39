"""Every page of the built book, in a real browser (headless Chromium), with no kernel and no network.

For each page in _toc.yml: no JavaScript error and no failed local request; math typeset; every widget
rendered; every pre-computed-states slider switches its state at every step; every image is the book's
own and loads; the badge and the launch button of a notebook page open its reader copy in Colab;
exercise solutions stay folded until clicked. A screenshot of each page and a table of load times are
written under _build/screenshots/.
"""

from __future__ import annotations

import pytest
from bookpages import (
    BUILD,
    SHOTS,
    colab_problems,
    font_problems,
    image_problems,
    math_problems,
    precomputed_slider_count,
    serve,
    slider_problems,
    solution_problems,
    toc_pages,
    visit,
    widget_problems,
)

PAGES = toc_pages()
LOAD_TIMES: dict[str, float] = {}
SLIDERS: dict[str, int] = {}


@pytest.fixture(scope="module")
def site():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(BUILD) as url:
        yield url
    lines = ["| page | load time (ms) | pre-computed sliders |", "|---|---|---|"]
    lines += [f"| {html} | {ms:.0f} | {SLIDERS.get(html, 0)} |" for html, ms in LOAD_TIMES.items()]
    (SHOTS / "load_times.md").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("html, source", PAGES, ids=[html for html, _ in PAGES])
def test_page_works_in_the_browser(page, site, html, source):
    result = visit(page, site + html)
    LOAD_TIMES[html] = result.load_ms
    SLIDERS[html] = precomputed_slider_count(page)
    page.screenshot(path=str(SHOTS / (html.replace("/", "_").removesuffix(".html") + ".png")), full_page=True)
    problems = (result.errors + result.failed + math_problems(page) + widget_problems(page)
                + slider_problems(page) + colab_problems(page, source) + solution_problems(page)
                + image_problems(page, site) + font_problems(page, site))
    assert not problems, f"{html}:\n- " + "\n- ".join(problems)


def test_the_book_has_kernel_free_sliders_and_folded_solutions(page, site):
    """The checks above must not pass vacuously: the book has sliders and solutions to check."""
    sliders = solutions = 0
    for html, source in PAGES:
        if source.suffix == ".ipynb":
            visit(page, site + html, settle_ms=800)
            sliders += precomputed_slider_count(page)
            solutions += page.locator("div.solution").count()
    notebooks = sum(1 for _, source in PAGES if source.suffix == ".ipynb")
    assert sliders >= 1 and solutions >= 2 * notebooks
