"""Browser fixtures: the built book served on localhost, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil

import pytest
from bookpages import BUILD, CHROMIUM_ARGS


def chromium_path() -> str:
    path = os.environ.get("T18_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.exit("the browser tests need Chromium: apt-get install chromium (or set T18_CHROMIUM)", 2)
    return path


@pytest.fixture(scope="session")
def browser():
    if not (BUILD / "index.html").exists():
        pytest.exit("the browser tests need the built book: run `bash ci/build.sh` first", 2)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()
