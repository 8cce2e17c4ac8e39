"""The browser checks catch what they are meant to catch: each runs once on a page broken on purpose."""

from __future__ import annotations

import re
import shutil

import pytest
from bookpages import (
    BUILD,
    ROOT,
    colab_problems,
    font_problems,
    image_problems,
    math_problems,
    release_tag,
    serve,
    slider_problems,
    solution_problems,
    toc_pages,
    visit,
    widget_problems,
)

HTML, SOURCE = next((html, source) for html, source in toc_pages() if source.suffix == ".ipynb")


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory):
    """A copy of the built book whose first notebook page is edited by each test."""
    copy = tmp_path_factory.mktemp("site") / "html"
    shutil.copytree(BUILD, copy)
    original = (copy / HTML).read_text(encoding="utf-8")
    with serve(copy) as url:
        yield copy, url, original


def break_page(site, edit) -> str:
    copy, url, original = site
    edited = edit(original)
    assert edited != original, "the edit must change the page"
    (copy / HTML).write_text(edited, encoding="utf-8")
    return url + HTML


def test_a_missing_widget_state_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: re.sub(
        r'<script type="application/vnd.jupyter.widget-state\+json">.*?</script>', "", html, flags=re.S))
    visit(page, url)
    problems = widget_problems(page)
    assert any("no embedded widget state" in p for p in problems)
    assert any("rendered blank" in p for p in problems)


def test_a_slider_whose_link_is_missing_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: html.replace('"model_name": "LinkModel"', '"model_name": "BoxModel"'))
    visit(page, url)
    assert any("shown state did not change" in p for p in slider_problems(page))


def test_a_javascript_error_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: html.replace("</body>",
                                                            "<script>throw new Error('t18 injected')</script></body>"))
    assert any("t18 injected" in error for error in visit(page, url).errors)


def test_a_failed_local_request_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: html.replace("</body>", '<img src="missing-t18.png"></body>'))
    assert any("missing-t18.png" in failure for failure in visit(page, url).failed)


def test_a_wrong_colab_link_is_caught(page, broken_site):
    reader_copy = "colab/" + SOURCE.relative_to(ROOT / "book").as_posix()
    wrong_path = reader_copy.replace(".ipynb", "_renamed.ipynb")
    url = break_page(broken_site, lambda html: html.replace(reader_copy, wrong_path))
    visit(page, url)
    problems = colab_problems(page, SOURCE)
    assert any("must both open" in p for p in problems)
    assert any("not a reader copy in the repository" in p for p in problems)


def test_a_launch_button_that_opens_the_book_notebook_is_caught(page, broken_site):
    """The theme's own button opens book/….ipynb on the branch: MyST shown raw, solutions run."""
    reader_copy = f"blob/{release_tag()}/colab/" + SOURCE.relative_to(ROOT / "book").as_posix()
    book_notebook = "blob/main/" + SOURCE.relative_to(ROOT).as_posix()

    def theme_default(html):  # only the header's button, not the badge in the text
        head, sep, rest = html.partition("dropdown-launch-buttons")
        return head + sep + rest.replace(reader_copy, book_notebook, 1)

    url = break_page(broken_site, theme_default)
    visit(page, url)
    assert any("must both open" in p for p in colab_problems(page, SOURCE))


def test_an_image_from_another_server_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: html.replace(
        "</article>", '<img src="https://colab.research.google.com/assets/colab-badge.svg" alt="x"></article>', 1))
    visit(page, url)
    assert any("loaded from another server" in p for p in image_problems(page, url.rsplit("/", 3)[0]))


def test_an_image_without_alt_text_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: re.sub(r'alt="Map of the Transformer[^"]*"', 'alt=""', html, count=1))
    visit(page, url)
    assert any("no alt text" in p for p in image_problems(page, url.rsplit("/", 3)[0]))


def test_a_plot_without_alt_text_is_caught(page, broken_site):
    # a cell's plot whose cell has no mystnb.image.alt gets myst-nb's default alt, the image's file name
    pixel = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
             "AAAABJRU5ErkJggg==")
    url = break_page(broken_site, lambda html: html.replace(
        "</article>", f'<div class="cell_output"><img alt="../../_images/0a1b.png" src="{pixel}"></div></article>', 1))
    visit(page, url)
    problems = image_problems(page, url.rsplit("/", 3)[0])
    assert any("no alt text" in p for p in problems) and not any("did not load" in p for p in problems)


def test_a_slider_state_without_alt_text_is_caught(page, broken_site):
    # the states' <img> tags live in the embedded widget state, as JSON strings: alt=\"…\"
    url = break_page(broken_site, lambda html: re.sub(r'alt=\\"[^"\\]+\\"', r'alt=\\"\\"', html))
    visit(page, url)
    assert any("no alt text" in p for p in image_problems(page, url.rsplit("/", 3)[0]))
    assert any("alt text does not say it" in p for p in slider_problems(page))


def test_a_slider_state_whose_alt_text_names_another_state_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: re.sub(r'( = )[^"\\=]+(\.\\")', r"\g<1>another state\g<2>", html))
    visit(page, url)
    assert any("alt text does not say it" in p for p in slider_problems(page))


def test_an_open_solution_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: html.replace("solution dropdown admonition", "solution admonition"))
    visit(page, url)
    assert any("open before it is clicked" in p for p in solution_problems(page))


def test_a_raw_markdown_table_is_caught(page, broken_site):
    url = break_page(broken_site, lambda html: html.replace("</article>", "<p>| a | b |\n|---|---|</p></article>", 1))
    visit(page, url)
    assert any("Markdown table was left as raw text" in p for p in math_problems(page))


def test_a_font_under_a_wrong_path_is_caught(page, broken_site):
    # Without widgets-paths.js the widget manager declares its Font Awesome files under the page's own
    # folder, the 404 that once reached CI; an @font-face added by hand covers a page without widgets.
    url = break_page(broken_site, lambda html: re.sub(r'<script src="[^"]*widgets-paths\.js[^"]*"></script>', "", html)
                     .replace("</head>", "<style>@font-face { font-family: t18-missing; src: url(nowhere/x.woff2); }</style></head>"))
    visit(page, url)
    problems = font_problems(page, broken_site[1])
    assert any("nowhere/x.woff2" in p for p in problems), problems
    if "widgets-paths.js" in broken_site[2]:
        assert any("@jupyter-widgets/" in p for p in problems), problems
