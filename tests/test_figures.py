"""The book's own drawings (book/figures/*.svg): well formed, self-describing, within the page's width, each
shown by a chapter with alt text; at least 18 explanatory diagrams besides the architecture maps."""

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "book" / "figures"
ICONS = {"colab-badge.svg", "favicon.svg"}
DRAWINGS = sorted(p for p in FIGURES.glob("*.svg") if p.name not in ICONS)
SVG = "{http://www.w3.org/2000/svg}"


def markdown_of_the_book() -> str:
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "book").rglob("*.md")]
    for path in (ROOT / "book").rglob("*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return "\n".join(texts)


BOOK = markdown_of_the_book()


@pytest.mark.parametrize("path", DRAWINGS, ids=lambda p: p.name)
def test_a_drawing_is_well_formed_describes_itself_and_fits_the_page(path):
    root = ET.fromstring(path.read_text(encoding="utf-8"))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "title desc"
    assert root.find(f"{SVG}title").text.strip() and len(root.find(f"{SVG}desc").text.split()) >= 8
    width = float(root.get("width"))
    assert width <= 640, "at most 640 px wide: the page's text column"
    for node in root.iter(f"{SVG}text"):
        size = node.get("font-size")
        assert size is None or float(size) >= 10, f"{path.name}: text below 10 px"
    assert not root.findall(f".//{SVG}image"), "no embedded images: the drawing is its own source"


@pytest.mark.parametrize("path", DRAWINGS, ids=lambda p: p.name)
def test_every_drawing_is_shown_with_alt_text(path):
    image = re.search(rf"!\[(?P<alt>[^\]]+)\]\([./]*figures/{re.escape(path.name)}\)", BOOK)
    figure = re.search(rf":::\{{figure\}} [./]*figures/{re.escape(path.name)}\n:alt: (?P<alt>\S.+)\n", BOOK)
    found = image or figure
    assert found and len(found["alt"].split()) >= 5, f"{path.name} is not shown with alt text"


def test_at_least_18_explanatory_diagrams_besides_the_maps():
    diagrams = [p for p in DRAWINGS if not p.name.startswith("map")]
    assert len(diagrams) >= 18, [p.name for p in diagrams]
