"""The pre-computed slider on ipywidgets 7, which Colab ships (7.7.1).

The book is built with ipywidgets 8, so its pages cannot show what an ipywidgets-7 front end does with
``widgets.build_precomputed_slider`` (a ``Tab`` there, not a ``Stack``). Here the Colab-like environment
of ci/test-colab.sh (ipywidgets 7.7.1) builds a slider from this checkout's ``src/``, and ipywidgets 7's
own HTML manager (@jupyter-widgets/html-manager 0.20, fetched from npm and checked against its pinned
integrity) draws it in Chromium with no kernel. Colab's front end is its own code and cannot be run
here; this is the closest stand-in: ipywidgets 7's models and views.

ci/test.sh sets ``T18_REQUIRE_IPYWIDGETS7=1`` (it has just made the Colab-like environment), so there
a missing environment fails the test instead of skipping it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from bookpages import ROOT, serve, visit

sys.path.insert(0, str(ROOT / "ci"))
from web_assets import integrity  # noqa: E402

HTML_MANAGER_7 = "@jupyter-widgets/html-manager@0.20.9"
HTML_MANAGER_7_INTEGRITY = ("sha512-GzwmQB5VFGPu+QsJJxYyLOvHdAtnXrOHG0zfFzSD32wu0ZYBG72p2EERP3av9EqE6NlSe570muudhKw"
                            "HtsJH9w==")
CACHE = Path(os.environ.get("T18_CACHE", Path.home() / ".cache" / "transformer18"))
ALT = "One bar whose height is the state's k, on a small plot."
LABELS = ["k=1", "k=2", "k=3"]

BUILD_SLIDER = f"""
import json, sys
import ipywidgets, matplotlib
matplotlib.use("Agg")
from matplotlib.figure import Figure
from ipywidgets.embed import embed_data
from transformer18 import widgets

def state(k):
    fig = Figure(figsize=(2, 2))
    ax = fig.add_subplot()
    ax.bar([0], [k])
    ax.set_ylim(0, 4)
    return fig

box = widgets.build_precomputed_slider({{f"k={{k}}": state(k) for k in (1, 2, 3)}}, description="k",
                                       value="k=2", alt={ALT!r})
data = embed_data(views=[box])
json.dump({{"ipywidgets": ipywidgets.__version__, "module": widgets.__file__, "state": data["manager_state"],
           "view": data["view_specs"][0]}}, sys.stdout)
"""

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>ipywidgets 7 slider</title><link rel="icon" href="data:,">
<script src="require.js"></script>
<script src="embed-amd.js"></script>
</head><body>
<script type="application/vnd.jupyter.widget-state+json">{state}</script>
<script type="application/vnd.jupyter.widget-view+json">{view}</script>
</body></html>
"""


def colab_python() -> Path | None:
    """The Colab-like environment's interpreter, if ci/test-colab.sh has made it."""
    for venv in sorted(CACHE.glob("venv-colab-*")):
        if (venv / ".t18-complete").exists() and (venv / "bin" / "python").exists():
            return venv / "bin" / "python"
    return None


def html_manager_7(folder: Path) -> Path:
    """embed-amd.js of ipywidgets 7's HTML manager, from its npm tarball (cached, integrity-checked)."""
    target = folder / "embed-amd.js"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    listing = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(folder), HTML_MANAGER_7],
                             check=True, capture_output=True, text=True).stdout
    tarball = folder / listing.strip().splitlines()[-1]
    assert integrity(tarball) == HTML_MANAGER_7_INTEGRITY, f"{HTML_MANAGER_7} does not match its pinned integrity"
    with tarfile.open(tarball) as archive:
        target.write_bytes(archive.extractfile("package/dist/embed-amd.js").read())
    tarball.unlink()
    return target


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    python = colab_python()
    if python is None:
        message = f"no Colab-like environment under {CACHE} (bash ci/test-colab.sh colab makes it)"
        if os.environ.get("T18_REQUIRE_IPYWIDGETS7"):
            pytest.fail(message)
        pytest.skip(message)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "MPLBACKEND": "Agg"}
    built = json.loads(subprocess.run([str(python), "-c", BUILD_SLIDER], check=True, capture_output=True,
                                      text=True, env=env, cwd=tmp_path_factory.mktemp("cwd")).stdout)
    assert built["ipywidgets"].startswith("7."), built["ipywidgets"]
    assert Path(built["module"]).resolve() == (ROOT / "src" / "transformer18" / "widgets.py").resolve()
    folder = tmp_path_factory.mktemp("ipywidgets7")
    (folder / "embed-amd.js").write_bytes(html_manager_7(CACHE / "html-manager-0.20.9").read_bytes())
    (folder / "require.js").write_bytes((ROOT / "_web_assets" / "widgets" / "require.js").read_bytes())
    (folder / "index.html").write_text(PAGE.format(state=json.dumps(built["state"]), view=json.dumps(built["view"])),
                                       encoding="utf-8")
    with serve(folder) as url:
        yield url + "index.html"


def test_the_slider_moves_and_every_state_has_its_alt_text_on_ipywidgets_7(page, site):
    result = visit(page, site, settle_ms=2000)
    assert not result.errors and not result.failed, result.errors + result.failed
    box = page.locator(".t18-precomputed-slider")
    assert box.count() == 1 and box.locator(".widget-tab").count() == 1  # ipywidgets 7: a Tab, not a Stack
    handle = box.locator(".ui-slider-handle, .noUi-handle").first

    def shown() -> tuple[str, list]:
        images = box.evaluate("""b => [...b.querySelectorAll('img')].filter(i => i.offsetParent !== null)
            .map(i => [i.getAttribute('alt'), i.naturalWidth > 0, i.src])""")
        return box.locator(".widget-readout").first.inner_text(), images

    label, images = shown()
    assert label == "k=2" and len(images) == 1
    handle.focus()
    handle.press("Home")
    seen = []
    for step in range(len(LABELS)):
        if step:
            handle.press("ArrowRight")
        page.wait_for_timeout(300)
        label, images = shown()
        assert len(images) == 1, f"{len(images)} images shown at {label}"
        (alt, loaded, src), = images
        assert alt == f"{ALT} Shown: k = {label}." and loaded and src.startswith("data:image/png;base64,")
        seen.append((label, src))
    assert [label for label, _ in seen] == LABELS
    assert len({src for _, src in seen}) == len(LABELS), "the slider moved but the shown figure did not change"
