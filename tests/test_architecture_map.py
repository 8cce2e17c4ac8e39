"""ci/architecture_map.py: the map is current, every label fits its box in the widest common font, no two parts
overlap, every chapter highlights real parts, and every chapter opens with its own map."""

import importlib.util
import itertools
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from matplotlib.font_manager import FontProperties, findfont
from PIL import ImageFont

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("architecture_map", ROOT / "ci" / "architecture_map.py")
amap = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = amap  # dataclasses look their module up
spec.loader.exec_module(amap)

# DejaVu Sans Bold: the fallback of "sans-serif" on most Linux systems, and wider than Helvetica or Arial.
BOLD = findfont(FontProperties(family="DejaVu Sans", weight="bold"), fallback_to_default=False)
SVG = "{http://www.w3.org/2000/svg}"


def width(text: str, size: float) -> float:
    return ImageFont.truetype(BOLD, size=round(size * 4)).getlength(text) / 4  # at 4× size, for resolution


def test_the_committed_maps_are_what_the_script_draws():
    assert amap.main(["--check"]) == 0


@pytest.mark.parametrize("box", amap.BOXES, ids=lambda b: b.id)
def test_every_label_and_badge_fits_in_bold(box):
    label = max(width(line, amap.TEXT_SIZE) for line in box.label.split("\n"))
    badge = width(box.badge, amap.BADGE_SIZE) if box.badge else 0
    if box.kind in ("box", "frame"):
        assert 10 + label + 10 + badge + 8 <= box.w, f"{box.id}: {label:.0f} + {badge:.0f} px in {box.w} px"
    elif box.kind == "add":  # the label's lines start right of the ⊕ and end before the column's edge
        start = box.x + box.w / 2 + amap.ADD_R + 8
        second = width(box.label.split("\n")[1] + " ", amap.TEXT_SIZE) + badge
        assert start + max(label, second) <= box.x + box.w + (amap.COL_W - box.w) / 2
    else:
        assert label <= box.w


def test_parts_lie_on_the_canvas_and_do_not_overlap():
    for box in amap.BOXES:
        assert 0 <= box.x and box.x + box.w <= amap.WIDTH and 0 <= box.y and box.y + box.h <= amap.HEIGHT
    parts = [b for b in amap.BOXES if b.kind != "frame"]
    for a, b in itertools.combinations(parts, 2):
        apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
        assert apart, f"{a.id} and {b.id} overlap"
    for frame in (b for b in amap.BOXES if b.kind == "frame"):
        inside = [b.id for b in parts if frame.x < b.x and b.x + b.w < frame.x + frame.w
                  and frame.y < b.y and b.y + b.h < frame.y + frame.h]
        assert inside and all(i.startswith(frame.id[:3]) for i in inside), (frame.id, inside)


def test_every_question_has_a_map_that_highlights_real_parts():
    assert list(amap.CHAPTERS) == [f"q{n:02d}" for n in range(1, 19)]
    for chapter, (parts, words) in amap.CHAPTERS.items():
        assert parts and set(parts) <= set(amap.PARTS) | set(amap.EXTRA_PARTS), chapter
        assert words and not words.endswith(".")
    for box in amap.BOXES:
        for q in box.questions:  # a box labelled with a question is highlighted in that question's map
            assert box.id in amap.CHAPTERS[f"q{q:02d}"][0] or q in (10, 12, 13), (box.id, q)


@pytest.mark.parametrize("chapter", [None, *amap.CHAPTERS])
def test_the_svg_is_well_formed_and_describes_itself(chapter):
    root = ET.fromstring(amap.svg(chapter))
    assert root.get("role") == "img" and root.get("aria-labelledby") == "title desc"
    assert root.find(f"{SVG}title").text.startswith("The Transformer")
    assert root.find(f"{SVG}desc").text == amap.alt_text(chapter)
    lit = [e for e in root.iter() if e.get("fill") == amap.ACCENT_FILL]
    assert bool(lit) == (chapter is not None), "a chapter's map highlights its parts; the plain map none"


QUESTION_NOTEBOOKS = sorted(p for p in (ROOT / "book").glob("q*/*.ipynb"))


@pytest.mark.parametrize("path", QUESTION_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_chapter_opens_with_its_own_map(path):
    chapter = path.parent.name[:3]
    first = "".join(json.loads(path.read_text(encoding="utf-8"))["cells"][0]["source"])
    image = re.search(r"!\[(?P<alt>[^\]]+)\]\(\.\./figures/map-(?P<q>q\d\d)\.svg\)", first)
    assert image and image["q"] == chapter, "the first cell shows ../figures/map-qNN.svg of this chapter, after the short answer"
    assert image["alt"] == amap.short_alt(chapter)
    # the answer first (it fits the first screen; the 700-px map would push it below), then the map
    assert first.index("[![Open In Colab]") < first.index("The short answer") < image.start()
