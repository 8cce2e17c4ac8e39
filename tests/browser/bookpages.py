"""What the browser tests look for on a built page, as functions that return the problems they find.

Kept apart from the tests so that tests/browser/test_detectors.py can prove each one fails on a page
that is broken on purpose.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'
SLIDER_BOX = ".widget-vbox.t18-precomputed-slider"  # precomputed_slider's VBox (widgets.build_precomputed_slider)


def toc_pages(root: Path = ROOT) -> list[tuple[str, Path]]:
    """(html path in the build, source file) for every page of _toc.yml, in order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    pages = []
    for entry in entries:
        source = next(p for p in (root / f"{entry}.ipynb", root / f"{entry}.md") if p.exists())
        pages.append((f"{entry}.html", source))
    return pages


def release_tag(root: Path = ROOT) -> str:
    """``v`` + pyproject.toml's version: the tag the notebooks' badges and install cells point at."""
    version = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    return f"v{version}"


def colab_url(source: Path, root: Path = ROOT) -> str:
    """The Colab link a notebook page must carry: the reader copy (colab/, the same folders as book/) at
    the release tag, in the repository of _config.yml."""
    config = yaml.safe_load((root / "_config.yml").read_text())["repository"]
    org_repo = config["url"].rstrip("/").removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{org_repo}/blob/{release_tag(root)}/colab/"
            f"{source.relative_to(root / 'book').as_posix()}")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free localhost port; yield its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler,
                                                                                 directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Visit:
    """One page load: its JavaScript errors, failed local requests and load time."""

    url: str
    errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    load_ms: float = 0.0


def visit(page, url: str, settle_ms: int = 1500) -> Visit:
    """Open ``url`` in ``page`` and record what went wrong. External requests are not counted (CI has
    no internet); a failed local request, an uncaught exception or a console error is."""
    result = Visit(url)
    local = url.split("/", 3)[:3]
    origin = "/".join(local)

    def on_console(message):
        if message.type != "error":
            return
        source = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and not source.startswith(origin):
            return  # an external resource (the Colab badge image): not reachable here, not ours
        result.errors.append(f"console: {message.text} ({source})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: result.errors.append(f"exception: {error}"))
    page.on("requestfailed", lambda r: r.url.startswith(origin) and result.failed.append(f"{r.url}: {r.failure}"))
    page.on("response", lambda r: r.url.startswith(origin) and r.status >= 400
            and result.failed.append(f"{r.url}: HTTP {r.status}"))
    page.goto(url, wait_until="load")
    page.wait_for_timeout(settle_ms)
    # Fonts and lazy images are requested only when something on screen needs them: scroll through the
    # page and wait for its fonts, so that a wrong font path (widget icons) is requested, and caught.
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.evaluate("() => document.fonts.ready.then(() => document.fonts.size)")
    page.wait_for_timeout(300)
    page.evaluate("window.scrollTo(0, 0)")
    result.load_ms = page.evaluate("() => { const n = performance.getEntriesByType('navigation')[0];"
                                   " return n.loadEventEnd - n.startTime; }")
    return result


def math_problems(page) -> list[str]:
    """Math must be typeset by MathJax (containers present where there is math, no raw $$ left), and
    Markdown outputs must be rendered (no raw table rows)."""
    problems = []
    has_math = page.locator(".math").count() > 0
    if has_math and page.locator("mjx-container").count() == 0:
        problems.append("the page has math but MathJax rendered none of it")
    text = page.evaluate("""() => { const copy = document.querySelector('article').cloneNode(true);
        copy.querySelectorAll('pre, code, .highlight').forEach(e => e.remove());  // source code may hold $$ or |---|
        return copy.textContent; }""")
    if "$$" in text:
        problems.append("raw $$ left in the page text")
    if "|---|" in text or "| --- |" in text:
        problems.append("a Markdown table was left as raw text (an output not rendered as Markdown)")
    if page.locator("mjx-merror").count():
        problems.append(f"{page.locator('mjx-merror').count()} MathJax errors in the page")
    return problems


def widget_problems(page) -> list[str]:
    """Every widget output must render into something visible (not a blank area)."""
    views = page.locator(WIDGET_VIEW).count()
    if views == 0:
        return []
    problems = []
    if page.locator('script[type="application/vnd.jupyter.widget-state+json"]').count() == 0:
        problems.append("widget views but no embedded widget state")
    rendered = page.evaluate(f"""() => [...document.querySelectorAll('{WIDGET_VIEW}')].map(s => {{
        const box = s.parentElement.querySelector('.jupyter-widgets');
        return box ? box.getBoundingClientRect().height : 0; }})""")
    blank = sum(1 for height in rendered if height < 20)
    if blank:
        problems.append(f"{blank} of {views} widget areas rendered blank")
    return problems


def slider_problems(page) -> list[str]:
    """Every pre-computed-states slider (a SelectionSlider above a Stack of images) must drive its
    figure with no kernel: from its first state (Home) to its last, each step right shows a new image,
    and that image's alt text names the state the readout shows (``… Shown: <description> = <label>.``).
    (Moving one step right from where it starts proves nothing for a slider that starts at its last
    state, as Q3's, Q13's and Q15's do: they show the deepest or fullest case first.)"""
    problems = []
    boxes = page.locator(SLIDER_BOX)
    for i in range(boxes.count()):
        box = boxes.nth(i)
        handle = box.locator(".noUi-handle").first
        readout = box.locator(".widget-readout").first

        def shown() -> tuple[str, str]:
            """The readout and a digest of the shown image's bytes (a view re-rendered for the same
            image may get a new URL, so the URL itself cannot tell two states apart); a problem if the
            image's alt text does not name the readout's state."""
            image = box.locator(".widget-html img").first
            digest, alt = image.evaluate("""async img => { const bytes = await (await fetch(img.src)).arrayBuffer();
                const hash = await crypto.subtle.digest('SHA-256', bytes);
                return [[...new Uint8Array(hash)].map(b => b.toString(16).padStart(2, '0')).join(''),
                        img.getAttribute('alt') || '']; }""")
            label = readout.inner_text()
            if len(alt.split()) < 8 or not alt.endswith(f" = {label}."):
                problems.append(f"slider {i} at {label!r} shows an image whose alt text does not say it: {alt!r}")
            return label, digest

        n_states = int(float(handle.get_attribute("aria-valuemax"))) - int(float(handle.get_attribute("aria-valuemin"))) + 1
        handle.focus()
        handle.press("Home")
        page.wait_for_timeout(200)
        label, image = shown()
        seen = {label}
        for _ in range(n_states - 1):
            handle.press("ArrowRight")
            page.wait_for_timeout(200)
            previous = image
            label, image = shown()
            if label in seen:
                problems.append(f"slider {i} did not move right of {label!r}")
                break
            if image == previous:  # (two states far apart may show the same figure: Q5's two e's)
                problems.append(f"slider {i} moved to {label!r} but the shown state did not change")
            seen.add(label)
    return problems


def precomputed_slider_count(page) -> int:
    return page.locator(SLIDER_BOX).count()


def colab_problems(page, source: Path, root: Path = ROOT) -> list[str]:
    """Every Colab link of a notebook page (the badge and the header's launch button) opens the
    notebook's reader copy at the release tag, and that copy exists in the repository."""
    if source.suffix != ".ipynb":
        return []
    expected = colab_url(source, root)
    links = page.eval_on_selector_all("a[href^='https://colab.research.google.com/github/']",
                                      "links => links.map(a => a.href)")
    launch = page.eval_on_selector_all(".dropdown-launch-buttons a[href*='colab.research.google.com']",
                                       "links => links.map(a => a.href)")
    problems = []
    if links.count(expected) < 2 or launch != [expected]:
        problems.append(f"the badge and the launch button must both open {expected}; found {links}")
    for link in set(links):
        path = link.split("/blob/", 1)[1].split("/", 1)[1]
        if not path.startswith("colab/") or not (root / path).is_file():
            problems.append(f"{link} points at {path}, which is not a reader copy in the repository")
    return problems


def image_problems(page, origin: str) -> list[str]:
    """Every image of the page is served by the book itself (none from another server: the published
    page must work offline and load nothing from third parties) and loads; every image (figures, maps,
    plots a cell outputs, whose alt text comes from ``mystnb.image.alt`` cell metadata, and the shown
    state of each pre-computed slider, whose alt text is ``precomputed_slider``'s ``alt``) has alt text
    that says what it shows, not its file name."""
    images = page.eval_on_selector_all("article img", """imgs => imgs.map(i => ({src: i.currentSrc || i.src,
        ok: i.complete && i.naturalWidth > 0, alt: i.getAttribute("alt") || ""}))""")
    problems = []
    for image in images:
        src = image["src"]
        if not src.startswith((origin, "data:")):  # the sliders' states are data: URIs
            problems.append(f"an image is loaded from another server: {src}")
        elif not image["ok"]:
            problems.append(f"an image did not load: {src[:80]}")
        alt = image["alt"].strip()
        if not alt or alt.endswith((".svg", ".png")) or "_images/" in alt:
            problems.append(f"an image has no alt text: {src[:80]}")  # a figure's or a plot's alt says what it shows
    return problems


def font_problems(page, origin: str) -> list[str]:
    """Every font file the page's style sheets declare (``@font-face``) is served by the book.

    A browser fetches a font only when a glyph needs it, and a 404 on it may come after the page looks
    settled, so watching requests catches a wrong font path only now and then (the widget manager's
    Font Awesome files were asked for under ``<page>/@jupyter-widgets/``). Fetching every declared URL
    catches it on every run."""
    urls = page.evaluate("""() => {
        const urls = new Set();
        for (const sheet of document.styleSheets) {
            let rules;
            try { rules = sheet.cssRules; } catch (e) { continue; }  // another origin's sheet
            const base = sheet.href || document.baseURI;
            for (const rule of rules) {
                if (!(rule instanceof CSSFontFaceRule)) continue;
                const src = rule.style.getPropertyValue('src');
                for (const m of src.matchAll(/url\\(\\s*["']?([^"')]+)["']?\\s*\\)/g)) {
                    if (!m[1].startsWith('data:')) urls.add(new URL(m[1], base).href.split('#')[0]);
                }
            }
        }
        return [...urls];
    }""")
    problems = []
    for url in urls:
        if not url.startswith(origin):
            problems.append(f"a font is loaded from another server: {url}")
            continue
        status = page.evaluate("u => fetch(u, {method: 'HEAD'}).then(r => r.status, () => 0)", url)
        if status != 200:
            problems.append(f"a declared font does not load (HTTP {status}): {url}")
    return problems


def solution_problems(page) -> list[str]:
    """Exercise solutions are folded until their title is clicked."""
    problems = []
    solutions = page.locator("div.solution")
    for i in range(solutions.count()):
        solution = solutions.nth(i)
        body = solution.locator(":scope > :not(.admonition-title)").first
        if body.is_visible():
            problems.append(f"solution {i} is open before it is clicked")
            continue
        # The title holds a link back to the exercise, so click sphinx-togglebutton's own button
        # ("Click to show"), as a reader does, not the middle of the title.
        solution.locator(".toggle-button").first.click()
        page.wait_for_timeout(200)
        if not body.is_visible():
            problems.append(f"solution {i} does not open when clicked")
    return problems
